"""docs/api.md is what scripts/api_docs.py makes of the current docstrings: it cannot go stale."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("api_docs", ROOT / "scripts" / "api_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_page_is_up_to_date():
    page = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert page == _script().render(), "docs/api.md is stale: run python scripts/api_docs.py"


def test_api_page_lists_every_public_name_once():
    import fingerprint
    import hub
    import lineage

    page = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    for package in (lineage, fingerprint, hub):
        for name in package.__all__:
            assert page.count(f"### `{package.__name__}.{name}`\n") == 1, name
    assert " at 0x" not in page  # no memory address: the page is the same on every run


def test_signature_and_summary_helpers():
    api = _script()

    def sample(a: int, *, b: str = "x") -> list[int]:
        """First line
        goes on.

        Not this."""
        return []

    assert api.signature(sample, "sample") == "sample(a: int, *, b: str = 'x') -> list[int]"
    assert api.first_paragraph(sample) == "First line goes on."
    assert api.kind(ValueError) == "exception" and api.kind(sample) == "function"
