# Two commands do everything on a fresh clone (see README.md):
#   make run    set up, then run `chatd --port 5000`
#   make test   set up, then run the whole test suite (lint, types, unit, end to end)
PYTHON ?= python3
# Python caches each module it compiles (__pycache__), unless PYTHONDONTWRITEBYTECODE is set,
# as it is on some machines (this one): then every chatd, chatc and test worker compiled
# every module it imports (rich, prompt_toolkit, pytest, chatd...) from source again, the
# greater part of a chatd start's 0.5 s. The cache is written on first import.
export PYTHONDONTWRITEBYTECODE :=
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 5000

.PHONY: run test lint unit e2e bench system-deps clean

run: $(VENV)/.installed
	@$(BIN)/chatd --port $(PORT)

# Tests run in pytest-xdist workers, three for every two CPUs (JOBS=0 runs them one after
# another): much of a test's time is spent waiting on sockets, terminals and browsers,
# during which another can use the CPU (on 2 CPUs shared with other work, 3 workers were
# as quick as 2 or quicker, 4 no quicker than 3). Each test starts its own chatd,
# redis-server, nc, tmux and browser context on ports it asks the kernel for, so any two
# may run at once; worksteal evens out the long ones.
JOBS ?= $(shell $(PYTHON) -c 'import os; print(len(os.sched_getaffinity(0)) * 3 // 2 or 1)')
XDIST = -n $(JOBS) --dist worksteal

# mypy runs beside the tests rather than before them: a cold run is ~12 s of one CPU,
# and the tests leave CPU over while they wait on sockets, terminals and browsers. Its
# report follows theirs; either failing fails `make test`.
test: $(VENV)/.installed-test system-deps
	$(BIN)/ruff check .
	@$(BIN)/mypy > $(VENV)/mypy.log 2>&1 & mypy=$$!; \
	echo "$(BIN)/mypy (beside the tests; its report follows theirs)"; \
	$(BIN)/pytest $(XDIST); tests=$$?; \
	wait $$mypy; types=$$?; cat $(VENV)/mypy.log; \
	[ $$tests -eq 0 ] && [ $$types -eq 0 ]

# Static checks: ruff, then mypy --strict over chatd, chatc, bench and tests.
lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/mypy

# Pure parts with an injected clock, no network socket (tests/unit/conftest.py).
unit: $(VENV)/.installed-test
	$(BIN)/pytest tests/unit

# Real chatd processes, clients, nc, terminals and Chromium on loopback.
e2e: $(VENV)/.installed-test system-deps
	$(BIN)/pytest $(XDIST) tests/e2e

bench: $(VENV)/.installed-test
	$(BIN)/python -m bench

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is needed; run with PYTHON=python3.11")'
	@echo "setting up $(VENV) (the first run only)"
	@$(PYTHON) -m venv $(VENV)
	@# -qq: pip's errors still show; its notices (a machine's own index settings) do not
	@$(BIN)/pip install -qq --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@$(BIN)/pip install -qq -e .
	@touch $@

# chatd and the test tools in one pip run (a second run would build chatd again); it
# leaves chatd installed for `make run` too. --no-compile: Python compiles a module when
# it is first imported, and many of the tools' never are (mypy's sources beside its
# compiled modules): 6 s less.
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	@echo "setting up the test tools in $(VENV) (the first run only)"
	@$(BIN)/pip install -qq --no-compile -e '.[test]'
	@touch $(VENV)/.installed $@

# Debian packages the tests drive for real: nc, tmux, openssl, redis-server, chromium,
# systemd-analyze, ss.
system-deps:
	@scripts/system-deps.sh

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
