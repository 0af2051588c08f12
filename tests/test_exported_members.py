"""The public surface of each package (`__all__`, from its `_EXPORTS` map) against independent facts.

- every name is defined in the module the facade maps it to (not merely imported there), so a
  mis-mapped or stale entry fails;
- every error class of the package's `errors` module is public (the exception tree is API);
- every library function a `lineage` command stands for (`lineage.cli.table`) is public at
  `lineage.<name>`: the package promises that everything the CLI does is one of its calls.

The checkers return a list of problems; the last tests feed them a doctored surface to show they
catch a dropped or mis-mapped name.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import types
from collections.abc import Iterable, Mapping

import pytest

PACKAGES = ("fingerprint", "hub", "lineage")


def misplaced(exports: Mapping[str, str]) -> list[str]:
    """Names whose object is missing from, or not defined in, the module they are mapped to.

    A name mapped to a package may be defined in one of its submodules.
    """
    found = []
    for name, module in sorted(exports.items()):
        obj = getattr(importlib.import_module(module), name, None)
        where = getattr(obj, "__module__", None) or ""
        if obj is None:
            found.append(f"{name}: not in {module}")
        elif where != module and not where.startswith(f"{module}."):
            found.append(f"{name}: mapped to {module}, defined in {where}")
    return found


def unexported_errors(package: str, public: Iterable[str]) -> list[str]:
    """Exception classes defined in `<package>.errors` that `public` leaves out."""
    errors = importlib.import_module(f"{package}.errors")
    defined = [
        name
        for name, obj in vars(errors).items()
        if inspect.isclass(obj)
        and issubclass(obj, Exception)
        and obj.__module__ == errors.__name__
        and not name.startswith("_")
    ]
    return sorted(set(defined) - set(public))


def missing_commands(exports: Mapping[str, str]) -> list[str]:
    """CLI library functions ("module:function") that `exports` does not offer under that name."""
    from lineage.cli.table import COMMANDS

    found = []
    for command in COMMANDS:
        module, _, name = command.library.partition(":")
        if exports.get(name) != module:
            found.append(f"{command.name}: {command.library} is not lineage.{name}")
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_names_resolve_lazily_and_nothing_else_is_listed(package):
    mod = importlib.import_module(package)
    assert mod.__all__ == sorted(mod._EXPORTS)
    assert dir(mod) == mod.__all__
    # every mapped module imported first: a submodule named like an export (a lineage/crawl.py
    # beside the function `crawl`) would replace the exported object once imported
    targets = {name: importlib.import_module(module) for name, module in mod._EXPORTS.items()}
    for name in mod.__all__:
        assert getattr(mod, name) is getattr(targets[name], name), name
    with pytest.raises(AttributeError):
        mod.no_such_name  # noqa: B018


@pytest.mark.parametrize("package", PACKAGES)
def test_every_name_is_defined_where_the_facade_says(package):
    assert misplaced(importlib.import_module(package)._EXPORTS) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_every_error_class_is_public(package):
    assert unexported_errors(package, importlib.import_module(package).__all__) == []


def test_every_cli_command_is_a_public_library_call():
    import lineage

    assert missing_commands(lineage._EXPORTS) == []


# ---- the checkers can fail ---------------------------------------------------------------


def test_a_mis_mapped_name_is_caught(monkeypatch):
    import lineage
    from lineage.records import Node

    # a module that imports Node without defining it, and one that lacks Store
    reexporter = types.ModuleType("fake_reexporter")
    reexporter.Node = Node
    monkeypatch.setitem(sys.modules, "fake_reexporter", reexporter)
    monkeypatch.setitem(sys.modules, "fake_empty", types.ModuleType("fake_empty"))
    doctored = dict(lineage._EXPORTS, Node="fake_reexporter", Store="fake_empty")
    assert misplaced(doctored) == [
        "Node: mapped to fake_reexporter, defined in lineage.records",
        "Store: not in fake_empty",
    ]


def test_a_dropped_error_is_caught():
    import hub

    public = [n for n in hub.__all__ if n != "GatedModelError"]
    assert unexported_errors("hub", public) == ["GatedModelError"]


def test_a_dropped_library_call_is_caught():
    import lineage

    doctored = {k: v for k, v in lineage._EXPORTS.items() if k != "compare_refs"}
    doctored["audit"] = "lineage.pipeline"
    assert missing_commands(doctored) == [
        "compare: lineage.pipeline:compare_refs is not lineage.compare_refs",
        "audit: lineage.build:audit is not lineage.audit",
    ]
