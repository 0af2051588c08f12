"""The compiled counts of two layouts (`fingerprint.compare_jit`, numba) are numpy's integers:
shared positions, and unshared pairs sharing a row and a column, slot by slot, on random
windows of every shape (related, unrelated, hot rows, one row, one column, two columns).
Skipped where numba is not installed; tests/fingerprint/test_compare_fast.py runs every
comparison test on both paths against the slot-by-slot rule."""

from __future__ import annotations

import numpy as np
import pytest

from fingerprint import slot_layouts
from fingerprint.signature import SlotSignature
from tests.fingerprint.test_compare_fast import GRIDS, _positions, _slot

pytest.importorskip("numba")
from fingerprint import compare_jit  # noqa: E402


def _numpy_counts(a, b) -> np.ndarray:
    """(shared, same rows, same columns) of every slot, as `_counts_prepared`'s numpy path."""
    shared, both = slot_layouts.shared_rows(a.grid, b.grid)
    same = slot_layouts._same_counts((a.hists, b.hists), both, a.grid_shape)
    return np.stack([shared, *(s.astype(np.int64) for s in same)])


def _layouts(rng: np.random.Generator) -> tuple[tuple[SlotSignature, ...], ...]:
    """Two signatures' slots of one layout (k each, whole rows), B keeping a share of A's."""
    k = int(rng.integers(1, 200))
    side_a, side_b = [], []
    for _ in range(int(rng.integers(1, 10))):
        rows, cols = GRIDS[rng.integers(len(GRIDS))]
        n = rows * cols
        kk = min(k, n - 1)
        pa = np.sort(_positions(rng, rows, cols, kk))
        kept = pa[rng.random(pa.size) < rng.choice([0.0, 0.5, 0.95, 1.0])]
        fresh = rng.permutation(np.setdiff1d(np.arange(n), kept))[: kk - kept.size]
        pb = np.sort(np.concatenate([kept, fresh]))
        side_a.append(_slot(pa, rows, cols))
        side_b.append(_slot(pb, rows, cols))
    return tuple(side_a), tuple(side_b)


def test_compiled_counts_are_numpys():
    rng = np.random.default_rng(21)
    tested = shared_total = 0
    for _ in range(300):
        slots_a, slots_b = _layouts(rng)
        a, b = slot_layouts._layout(slots_a), slot_layouts._layout(slots_b)
        if a is None or b is None or a.windows != b.windows:
            continue  # slots of other sizes: no layout (the slot-by-slot path counts them)
        counts = np.empty((3, len(slots_a)), dtype=np.int64)
        rows, cols = a.grid_shape[:2]
        compare_jit.layout_counts((a.grid, b.grid), (a.where, b.where), a.hists, b.hists,
                                  rows, cols, counts)  # fmt: skip
        np.testing.assert_array_equal(counts, _numpy_counts(a, b))
        tested += 1
        shared_total += int(counts[0].sum())
    assert tested > 100 and shared_total > 1000  # related and unrelated layouts were met


def test_compiled_counts_are_off_when_asked(monkeypatch):
    monkeypatch.setenv(slot_layouts.NO_JIT_ENV, "1")
    monkeypatch.setattr(slot_layouts, "_pairs_counted", [slot_layouts.JIT_AFTER_PAIRS])
    assert slot_layouts.jit_counts() is None
    monkeypatch.setenv(slot_layouts.NO_JIT_ENV, "0")
    assert slot_layouts.jit_counts() is compare_jit
