# Two commands do everything on a fresh clone (see README.md):
#   make run    set up, then run `chatd --port 5000`
#   make test   set up, then run the whole test suite (lint, types, unit, end to end)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 5000

.PHONY: run test lint unit e2e bench system-deps clean

run: $(VENV)/.installed
	@$(BIN)/chatd --port $(PORT)

test: $(VENV)/.installed-test system-deps
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

bench: $(VENV)/.installed-test
	$(BIN)/python -m bench

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is needed; run with PYTHON=python3.11")'
	@echo "setting up $(VENV) (the first run only)"
	@$(PYTHON) -m venv $(VENV)
	@# -qq: pip's errors still show; its notices (a machine's own index settings) do not
	@$(BIN)/pip install -qq --upgrade pip
	@$(BIN)/pip install -qq -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	@echo "setting up the test tools in $(VENV) (the first run only)"
	@$(BIN)/pip install -qq -e '.[test]'
	@touch $@

# Debian packages the tests drive for real: nc, tmux, openssl, redis-server, chromium,
# systemd-analyze.
system-deps:
	@scripts/system-deps.sh

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
