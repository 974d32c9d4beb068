"""The import graph of chatd and chatc has no cycle (ISSUE 24 item 5).

A cycle makes a module's meaning depend on who was imported first, and hides which
layer builds on which: the shells share chatd.net, neither imports the other, and
chatd.service starts both. The graph is read from the source with `ast`: every import
in a module, at its top, inside a function (a lazy import is still an edge) or under
`if TYPE_CHECKING:` (a cycle of types is a tangle too, even if it never runs).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("chatd", "chatc")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {_module_name(path): path
            for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def _imports(tree: ast.AST, known: dict[str, Path], here: str) -> set[str]:
    """The modules of `known` that `tree` imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package of `here`
                package = here.split(".")[: len(here.split(".")) - node.level]
                base = ".".join(package + ([base] if base else []))
            for alias in node.names:  # a submodule, or a name of the module `base`
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {name for name in found if name in known and name != here}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: _imports(ast.parse(path.read_text()), known, name)
            for name, path in known.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path that ends where it starts; None if there is none."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(name: str) -> list[str] | None:
        if name in on_path:
            return [*path[path.index(name):], name]
        if name in done:
            return None
        path.append(name)
        on_path.add(name)
        for target in sorted(edges.get(name, ())):
            cycle = visit(target)
            if cycle is not None:
                return cycle
        path.pop()
        on_path.discard(name)
        done.add(name)
        return None

    for name in sorted(edges):
        cycle = visit(name)
        if cycle is not None:
            return cycle
    return None


def test_the_walk_finds_a_cycle_when_there_is_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a\n"
                     "def f():\n    from b import c, d\n")
    known = {"a": ROOT, "b": ROOT, "b.c": ROOT}
    assert _imports(tree, known, "here") == {"a", "b", "b.c"}


def test_chatd_and_chatc_import_no_module_in_a_cycle() -> None:
    edges = graph()
    assert "chatd.net" in edges["chatd.web"] and "chatd.web" not in edges["chatd.server"]
    cycle = find_cycle(edges)
    assert cycle is None, " -> ".join(cycle or ())


@pytest.mark.parametrize("name", sorted(n for n in modules() if not n.endswith("__main__")))
def test_every_module_imports(name: str) -> None:
    importlib.import_module(name)
