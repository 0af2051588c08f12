"""Fixtures shared by the fingerprint tests."""

from __future__ import annotations

import pytest

from fingerprint import slot_layouts


@pytest.fixture(params=["numpy", "jit"])
def counting(request, monkeypatch):
    """Which path counts pairs of layouts: numpy ($LINEAGE_NO_JIT=1), or the compiled loop
    from the first pair on (as when numba is already imported)."""
    if request.param == "numpy":
        monkeypatch.setenv(slot_layouts.NO_JIT_ENV, "1")
        assert slot_layouts.jit_counts() is None
    else:
        pytest.importorskip("numba")
        monkeypatch.delenv(slot_layouts.NO_JIT_ENV, raising=False)
        monkeypatch.setattr(slot_layouts, "_pairs_counted", [slot_layouts.JIT_AFTER_PAIRS])
        assert slot_layouts.jit_counts() is not None
    return request.param
