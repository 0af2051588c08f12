"""Fixtures of the hub tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hub_helpers import build_zoo


@pytest.fixture(scope="session")
def crawl_zoo(tmp_path_factory) -> Path:
    """The crawl zoo, built once per session; tests that change files copy it first."""
    return build_zoo(tmp_path_factory.mktemp("crawl-zoo"))
