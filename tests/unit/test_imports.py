"""The import graph of chatd and chatc has no cycle (ISSUE 24 item 5).

A cycle makes a module's meaning depend on who was imported first, and hides which
layer builds on which: the shells share chatd.net, and neither imports the other. The
graph is read from the source with `ast`: every import a module can run, at its top or
inside a function (a lazy import is still an edge); only imports under
`if TYPE_CHECKING:` are left out, since they never run.
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


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING"))


def _imports(tree: ast.AST, known: dict[str, Path], here: str) -> set[str]:
    """The modules of `known` that `tree` imports where it can run."""
    found: set[str] = set()
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if _type_checking_only(node):
            todo.extend(cast_if(node).orelse)
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package of `here`
                package = here.split(".")[: len(here.split(".")) - node.level]
                base = ".".join(package + ([base] if base else []))
            for alias in node.names:  # a submodule, or a name of the module `base`
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
        todo.extend(ast.iter_child_nodes(node))
    return {name for name in found if name in known and name != here}


def cast_if(node: ast.AST) -> ast.If:
    assert isinstance(node, ast.If)
    return node


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
                     "def f():\n    import b\n")
    assert _imports(tree, {"a": ROOT, "b": ROOT}, "here") == {"b"}


def test_chatd_and_chatc_import_no_module_in_a_cycle() -> None:
    edges = graph()
    assert "chatd.net" in edges["chatd.web"] and "chatd.server" not in edges["chatd.web"]
    cycle = find_cycle(edges)
    assert cycle is None, " -> ".join(cycle or ())


@pytest.mark.parametrize("name", sorted(n for n in modules() if not n.endswith("__main__")))
def test_every_module_imports(name: str) -> None:
    importlib.import_module(name)
