"""The public surface of each package is its `__all__`, and every name in it resolves."""

import importlib

import pytest


@pytest.mark.parametrize("package", ["fingerprint", "hub", "lineage"])
def test_all_names_resolve_and_nothing_else_is_listed(package):
    mod = importlib.import_module(package)
    assert mod.__all__ == sorted(mod.__all__)
    for name in mod.__all__:
        assert getattr(mod, name) is not None, name
    assert dir(mod) == mod.__all__
    with pytest.raises(AttributeError):
        mod.no_such_name  # noqa: B018
