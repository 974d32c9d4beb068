"""Unit tests of the shape of chatd.protocol: one module per concern behind one import."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import pkgutil
import typing
from types import ModuleType
from typing import Any

import pytest

from chatd import protocol as p


def _defined_names(module: ModuleType) -> set[str]:
    """Public names a module defines itself (not those it imports)."""
    tree = ast.parse(inspect.getsource(module))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {name for name in names if not name.startswith("_")}


def test_the_package_reexports_every_public_name_of_its_modules() -> None:
    """Callers import `chatd.protocol` only; a name defined in a module but missing from
    the package would force an import of the module itself."""
    defined: set[str] = set()
    for info in pkgutil.iter_modules(p.__path__):
        module = importlib.import_module(f"chatd.protocol.{info.name}")
        for name in _defined_names(module):
            assert getattr(p, name, None) is getattr(module, name), f"{info.name}.{name}"
            defined.add(name)
    assert defined == set(p.__all__)


def is_value(kind: type) -> bool:
    """Made by chatd.protocol.values.value: a slotted dataclass hashed by its fields."""
    params = getattr(kind, "__dataclass_params__", None)
    return params is not None and params.unsafe_hash and "__slots__" in vars(kind)


def test_a_plain_dataclass_is_not_a_value() -> None:
    @dataclasses.dataclass(slots=True)
    class Plain:
        x: int

    assert not is_value(Plain) and is_value(p.Chat)


@pytest.mark.parametrize("kind", typing.get_args(p.Update), ids=lambda k: k.__name__)
def test_every_update_type_is_a_value_with_a_wire_form(kind: type) -> None:
    """PROTOCOL.txt 4: each update type encodes to one JSON line, and text mode renders it
    (maybe as nothing) without reaching assert_never."""
    assert is_value(kind)  # frozen for mypy
    defaults = {f.name: _sample(f.type) for f in dataclasses.fields(kind)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    update: Any = kind(**defaults)
    assert p.encode_json(update).endswith(b"\n")
    assert isinstance(p.encode_text(update), bytes)


@pytest.mark.parametrize("kind", typing.get_args(p.Event), ids=lambda k: k.__name__)
def test_every_event_type_is_a_value(kind: type) -> None:
    assert is_value(kind)  # frozen for mypy


def test_help_has_no_json_form() -> None:
    """PROTOCOL.txt 6.2: /help is answered where it is typed; chatc never sends it."""
    with pytest.raises(ValueError, match="text-mode command"):
        p.encode_event(p.Help())


def _sample(annotation: object) -> object:
    text = str(annotation)
    if "tuple" in text:
        return ()
    if text.startswith("int"):
        return 0
    return "x"
