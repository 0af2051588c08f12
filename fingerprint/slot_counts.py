"""`shared_and_population` of every slot of a pair of models at once, the same integers.

`fingerprint.structure` holds the rule, one pair of slots at a time: how many positions the two
slots share, and the population their null draws from once the windows' row or column pattern
is taken out. A pair of models has dozens of slots and the graph compares thousands of pairs, so
`slot_counts` counts them all in a few array operations: positions sorted together slot by
slot, class counts per row and column offset slot after slot, the factor in the scalar rule's
float arithmetic element by element (exact below 2^53). A signature met again (one model against
many in a graph) brings its sorted grid and class counts from a small cache (`_prepared`).
Whatever it cannot take exactly it hands to the scalar rule, so the two never disagree
(tests/fingerprint/test_compare_fast.py).
"""

from __future__ import annotations

import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType

import numpy as np

from fingerprint.records import SlotSignature
from fingerprint.structure import (
    MIN_FACTOR,
    PRIOR,
    grid_floor,
    pattern_factor,
    shared_and_population,
    split_shared,
    window_grid,
)

# Above this many row (or column) classes over a pair's slots, `slot_counts` counts that pair
# slot by slot (a window of two columns has n / 2 rows: dense counts would cost more than they
# save).
DENSE_CLASSES = 1 << 21
# Integers below this convert to float64 exactly, so the vectorized factor is the scalar one.
_EXACT = 1 << 53
# The compiled counts (`fingerprint.compare_jit`) cost a fraction of numpy's a pair, but numba's
# import costs 1-2 s: a process turns to them after this many pairs of layouts counted with
# numpy, or at once when numba is imported (the all-pairs counts of a large store import it).
JIT_AFTER_PAIRS = 500
NO_JIT_ENV = "LINEAGE_NO_JIT"
JIT_WINDOW = 1 << 26  # larger windows go to numpy (the compiled loop sets a bit a cell)
_pairs_counted = [0]  # pairs of layouts counted with numpy in this process (approximate)


def slot_counts(
    pairs: Sequence[tuple[SlotSignature, SlotSignature]],
    *,
    layouts: tuple[tuple[SlotSignature, ...], tuple[SlotSignature, ...]] | None = None,
) -> tuple[list[int], list[int]]:
    """`shared_and_population` of every pair of slots at once: (shared, population) lists.

    The same integers as one call per pair, at a fraction of the cost: a pair of models has
    dozens of slots and the graph compares thousands of pairs. The two sides' positions are
    sorted together, slot by slot, so a position both hold stands twice in a row (`_shared`).
    Each side's unshared row and column counts are its whole side's less the shared positions',
    and the factor is `_factor`'s float arithmetic element by element (exact: every integer is
    below 2^53). Pairs this cannot take exactly (positions unsorted, repeated or past the
    window; too many classes) go through `shared_and_population`.

    `layouts`: the two signatures' slots. When `pairs` is every slot of A with the slot of B at
    the same index (one architecture, every slot eligible), each side's sorted grid and class
    counts come from a small cache (`_prepared`), as a model meets many others in a graph.
    """
    if not pairs:
        return [], []
    if layouts is not None and _index_by_index(pairs, *layouts):
        ready = _counts_prepared(_prepared(layouts[0]), _prepared(layouts[1]))
        if ready is not None:
            return ready
    found = _shared(pairs)
    if found is None:
        counted = [shared_and_population(sa, sb) for sa, sb in pairs]
        return [c[0] for c in counted], [c[1] for c in counted]
    side_a, side_b, both = found
    grids = [window_grid(sa) for sa, _ in pairs]
    n = np.array([sa.n for sa, _ in pairs], dtype=np.int64)
    rows = np.array([g[0] for g in grids], dtype=np.int64)
    cols = np.array([g[1] for g in grids], dtype=np.int64)
    shared = np.bincount(both[0], minlength=len(pairs))
    patterned = (rows * cols == n) & (n == np.array([sb.n for _, sb in pairs])) & (n >= 2)
    population = n.copy()
    if patterned.any():
        # other slots get rows enough for every position (their factor is not used)
        rows = np.where(patterned, rows, -(-n // cols))
        factor = _factors(side_a, side_b, both, rows, cols, n, shared)
        if factor is None:  # too many classes, or past exact floats: slot by slot
            factor = np.array(
                [
                    _scalar_factor(sa, sb, g) if ok else 1.0
                    for (sa, sb), g, ok in zip(pairs, grids, patterned.tolist(), strict=True)
                ]
            )
        _shrink(population, patterned & (factor >= MIN_FACTOR), factor, side_a[2], side_b[2])
    return shared.tolist(), population.tolist()


def _index_by_index(
    pairs: Sequence[tuple[SlotSignature, SlotSignature]],
    slots_a: tuple[SlotSignature, ...],
    slots_b: tuple[SlotSignature, ...],
) -> bool:
    """Whether `pairs` is slot j of A with slot j of B, for every slot of both."""
    return len(pairs) == len(slots_a) == len(slots_b) and all(
        x is sa and y is sb for (x, y), sa, sb in zip(pairs, slots_a, slots_b, strict=True)
    )


def _shrink(
    population: np.ndarray, which: np.ndarray, factor: np.ndarray, k_a: np.ndarray, k_b: np.ndarray
) -> None:
    """`shared_and_population`'s population where the pattern is strong enough (in place): n
    over the factor, on the grid, never below k."""
    for j in np.flatnonzero(which).tolist():
        k = max(int(k_a[j]), int(k_b[j]))
        population[j] = max(k, grid_floor(int(population[j]) / float(factor[j])))


@dataclass(frozen=True, slots=True)
class _Layout:
    """One signature's slots made ready for `slot_counts`: every slot with k positions, each
    window whole rows. `slots` is held so the cache key (their tuple's id) stays theirs. What
    every pair of such layouts computes alike is computed here once (a graph compares a model
    with dozens of others, and a pair's numpy calls cost more than their arithmetic)."""

    slots: tuple[SlotSignature, ...]
    grid: np.ndarray  # (slots, k) uint32 positions
    n: np.ndarray
    grid_shape: tuple[np.ndarray, ...]  # `_offsets`: rows, cols, row offsets, column offsets
    hists: tuple[np.ndarray, np.ndarray]  # row and column class counts
    where: np.ndarray  # (2, slots, k) int32: each position's row and column in its window
    windows: bytes  # n, rows and cols of every slot: equal bytes, one window layout
    # `_expected`'s factors (2, slots): cells a class shares with a cell, less one (rows,
    # then columns), and n - 1 (at least 1)
    per_class: np.ndarray
    n_less: np.ndarray
    single: np.ndarray  # (2, slots): a class holds a single cell (its factor is 1.0)
    patterned: np.ndarray  # n >= 2

    @property
    def k(self) -> int:
        return self.grid.shape[1]

    @property
    def nbytes(self) -> int:
        return self.grid.nbytes + self.hists[0].nbytes + self.hists[1].nbytes + self.where.nbytes


# Layouts kept (by the id of a signature's slot tuple, which each entry holds so that the id
# stays its own), least recently used dropped first.
_LAYOUTS: OrderedDict[int, tuple[tuple[SlotSignature, ...], _Layout | None]] = OrderedDict()
_LAYOUTS_LOCK = threading.Lock()
LAYOUT_BYTES = 128 << 20
_layout_bytes = [0]


def _prepared(slots: tuple[SlotSignature, ...]) -> _Layout | None:
    """The cached `_Layout` of a signature's slots, or None where they do not fit one."""
    key = id(slots)
    with _LAYOUTS_LOCK:
        hit = _LAYOUTS.get(key)
        if hit is not None and hit[0] is slots:
            _LAYOUTS.move_to_end(key)
            return hit[1]
    layout = _layout(slots)
    with _LAYOUTS_LOCK:
        old = _LAYOUTS.pop(key, None)
        _layout_bytes[0] += _nbytes(layout) - (_nbytes(old[1]) if old else 0)
        _LAYOUTS[key] = (slots, layout)
        while _layout_bytes[0] > LAYOUT_BYTES or len(_LAYOUTS) > 4096:
            _, (_, dropped) = _LAYOUTS.popitem(last=False)
            _layout_bytes[0] -= _nbytes(dropped)
    return layout


def _nbytes(layout: _Layout | None) -> int:
    return 0 if layout is None else layout.nbytes


def _layout(slots: tuple[SlotSignature, ...]) -> _Layout | None:
    sizes = {s.positions.size for s in slots}
    if not slots or len(sizes) != 1 or 0 in sizes:
        return None
    n = np.array([s.n for s in slots], dtype=np.int64)
    grids = [window_grid(s) for s in slots]
    rows = np.array([g[0] for g in grids], dtype=np.int64)
    cols = np.array([g[1] for g in grids], dtype=np.int64)
    grid = np.stack([s.positions for s in slots])
    if not (
        np.all(rows * cols == n)
        and np.all(grid[:, 1:] > grid[:, :-1])
        and np.all(grid[:, -1] < n)
        and max(int(rows.sum()), int(cols.sum())) <= DENSE_CLASSES
        and int(n.max()) < _EXACT
    ):
        return None
    offsets = _offsets(rows, cols)
    slot = np.repeat(np.arange(len(slots), dtype=np.int64), grid.shape[1])
    row, col = _hists(slot, grid.ravel().astype(np.int64), offsets)
    # counts are at most k: int32 halves what the cache holds
    hists = (row.astype(np.int32), col.astype(np.int32))
    in_row = grid // cols[:, None].astype(np.uint32)
    where = np.stack([in_row, grid - in_row * cols[:, None].astype(np.uint32)]).astype(np.int32)
    return _Layout(
        slots,
        grid,
        n,
        offsets,
        hists,
        where,
        windows=np.stack([n, rows, cols]).tobytes(),
        per_class=np.maximum(np.stack([cols, rows]) - 1, 0),
        n_less=np.maximum(n - 1, 1),
        single=np.stack([cols < 2, rows < 2]),
        patterned=n >= 2,
    )


def _offsets(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, ...]:
    """(rows, cols, row offsets, column offsets): slot j's classes start at its offsets."""
    return (
        rows,
        cols,
        np.concatenate([[0], np.cumsum(rows)]),
        np.concatenate([[0], np.cumsum(cols)]),
    )


def _counts_prepared(a: _Layout | None, b: _Layout | None) -> tuple[list[int], list[int]] | None:
    """`slot_counts` of two layouts slot by slot (None: they do not fit, or not exactly).

    The integers (shared positions, unshared pairs sharing a row or a column) come from the
    compiled loop where numba is there (`jit_counts`), else from numpy; the float factor made
    from them is numpy's either way (`_factor_from`'s arithmetic, rows and columns stacked), so
    the two paths give the same populations."""
    if a is None or b is None or a.windows != b.windows:
        return None
    rows, cols = a.grid_shape[:2]
    jit = jit_counts() if int(a.n.max()) <= JIT_WINDOW else None
    if jit is not None:
        counts = np.empty((3, len(a.slots)), dtype=np.int64)
        jit.layout_counts(
            (a.grid, b.grid), (a.where, b.where), a.hists, b.hists, rows, cols, counts
        )
        shared = counts[0]
        same = counts[1:].astype(np.float64)
    else:
        _pairs_counted[0] += 1
        merged = np.sort(np.concatenate([a.grid, b.grid], axis=1), axis=1)
        twice = merged[:, 1:] == merged[:, :-1]
        shared = np.count_nonzero(twice, axis=1)
        both = (
            np.repeat(np.arange(len(shared), dtype=np.int64), shared),
            merged[:, 1:][twice].astype(np.int64),
        )
        same = np.stack(_same_counts((a.hists, b.hists), both, a.grid_shape))
    numerator = (a.k - shared) * (b.k - shared) * a.per_class  # `_expected`'s, rows and columns
    if int(numerator.max()) >= _EXACT:
        return None
    factor = np.where(a.single, 1.0, (same + PRIOR) / (numerator / a.n_less + PRIOR)).max(axis=0)
    population = a.n.copy()
    which = a.patterned & (factor >= MIN_FACTOR)
    if which.any():
        k_a, k_b = np.full(len(a.slots), a.k), np.full(len(a.slots), b.k)
        _shrink(population, which, factor, k_a, k_b)
    return shared.tolist(), population.tolist()


def jit_counts() -> ModuleType | None:
    """`fingerprint.compare_jit` (compiled, the same integers) when numba is installed, allowed
    ($LINEAGE_NO_JIT unset or 0) and worth its import (`JIT_AFTER_PAIRS`); None: numpy."""
    if os.environ.get(NO_JIT_ENV, "0") not in ("", "0"):
        return None
    if _pairs_counted[0] < JIT_AFTER_PAIRS and "numba" not in sys.modules:
        return None
    return _import_jit()


@lru_cache(maxsize=1)
def _import_jit() -> ModuleType | None:
    try:
        from fingerprint import compare_jit
    except ImportError:  # numba is an optional dependency (the extra `fast`)
        return None
    return compare_jit


# One side of a pair, slot after slot: (slot index, position, slot sizes), int64 arrays.
_Side = tuple[np.ndarray, np.ndarray, np.ndarray]


def _shared(
    pairs: Sequence[tuple[SlotSignature, SlotSignature]],
) -> tuple[_Side, _Side, tuple[np.ndarray, np.ndarray]] | None:
    """Both sides, and the (slot index, position) of every position both hold; None unless
    every slot's positions strictly increase and lie in A's window.

    When every slot of a side has as many positions (the rule: k each), the slots are rows of
    one array and the sort is row by row; otherwise the positions are keyed by slot (its index
    above bit 32) and sorted at once. Either way a position both hold stands twice in a row.
    """
    n = np.array([sa.n for sa, _ in pairs], dtype=np.int64)
    size_a = np.array([sa.positions.size for sa, _ in pairs], dtype=np.int64)
    size_b = np.array([sb.positions.size for _, sb in pairs], dtype=np.int64)
    slot = np.arange(len(pairs), dtype=np.int64)
    if size_a.min() == size_a.max() > 0 and size_b.min() == size_b.max() > 0:
        grid_a = np.stack([sa.positions for sa, _ in pairs])  # uint32: sorts fastest
        grid_b = np.stack([sb.positions for _, sb in pairs])
        for g in (grid_a, grid_b):
            if not (np.all(g[:, 1:] > g[:, :-1]) and np.all(g[:, -1] < n)):
                return None
        merged = np.sort(np.concatenate([grid_a, grid_b], axis=1), axis=1)
        twice = merged[:, 1:] == merged[:, :-1]
        per_slot = np.count_nonzero(twice, axis=1)
        both = (np.repeat(slot, per_slot), merged[:, 1:][twice].astype(np.int64))
        return (
            (np.repeat(slot, size_a), grid_a.ravel().astype(np.int64), size_a),
            (np.repeat(slot, size_b), grid_b.ravel().astype(np.int64), size_b),
            both,
        )
    sides = []
    for side, size in ((0, size_a), (1, size_b)):
        at = np.repeat(slot, size)
        position = np.concatenate([p[side].positions for p in pairs]).astype(np.int64)
        if position.size and not np.all(position < n[at]):
            return None
        keys = (at << 32) | position
        if not np.all(keys[1:] > keys[:-1]):
            return None
        sides.append((at, position, size, keys))
    merged = np.sort(np.concatenate([sides[0][3], sides[1][3]]))
    both_keys = merged[1:][merged[1:] == merged[:-1]]
    both = (both_keys >> 32, both_keys & ((1 << 32) - 1))
    return sides[0][:3], sides[1][:3], both


def _factors(
    side_a: _Side,
    side_b: _Side,
    both: tuple[np.ndarray, np.ndarray],
    rows: np.ndarray,
    cols: np.ndarray,
    n: np.ndarray,
    shared: np.ndarray,
) -> np.ndarray | None:
    """`_factor`'s larger value (rows or columns) of every slot, from each side's positions and
    those both hold (`rows` x `cols` covers every slot's window).

    Returns None where dense counts cannot be had exactly (the caller counts slot by slot).
    """
    grid = _offsets(rows, cols)
    if max(grid[2][-1], grid[3][-1]) > DENSE_CLASSES or int(n.max()) >= _EXACT:
        return None
    rest_a, rest_b = side_a[2] - shared, side_b[2] - shared
    expected_rows = _expected(rest_a, rest_b, cols, n)
    expected_cols = _expected(rest_a, rest_b, rows, n)
    if expected_rows is None or expected_cols is None:
        return None
    hists = _hists(side_a[0], side_a[1], grid), _hists(side_b[0], side_b[1], grid)
    return _factor_from(_same_counts(hists, both, grid), grid, (expected_rows, expected_cols))


def _hists(
    slot: np.ndarray, position: np.ndarray, grid: tuple[np.ndarray, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """How many positions each row class and each column class holds (`_classes`)."""
    row, col = _classes(slot, position, *grid)
    return (
        np.bincount(row, minlength=int(grid[2][-1])),
        np.bincount(col, minlength=int(grid[3][-1])),
    )


def _same_counts(
    hists: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    both: tuple[np.ndarray, np.ndarray],
    grid: tuple[np.ndarray, ...],
) -> tuple[np.ndarray, np.ndarray]:
    """Per slot, the (unshared of A, unshared of B) pairs sharing a row, and a column."""
    row_s, col_s = _hists(both[0], both[1], grid)
    return (
        _same(hists[0][0], hists[1][0], row_s, grid[2]),
        _same(hists[0][1], hists[1][1], col_s, grid[3]),
    )


def _factor_from(
    same: tuple[np.ndarray, np.ndarray],
    grid: tuple[np.ndarray, ...],
    expected: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """`_factor`'s larger value of every slot from `_same_counts` (float64) and the
    exchangeable counts."""
    rows, cols = grid[0], grid[1]
    by_rows = np.where(cols < 2, 1.0, (same[0] + PRIOR) / (expected[0] + PRIOR))
    by_cols = np.where(rows < 2, 1.0, (same[1] + PRIOR) / (expected[1] + PRIOR))
    return np.maximum(by_rows, by_cols)


def _expected(
    rest_a: np.ndarray, rest_b: np.ndarray, per_class: np.ndarray, n: np.ndarray
) -> np.ndarray | None:
    """`_factor`'s exchangeable count of each slot (None past exact floats)."""
    numerator = rest_a * rest_b * np.maximum(per_class - 1, 0)
    if int(numerator.max()) >= _EXACT:
        return None
    return numerator / np.maximum(n - 1, 1)  # n < 2: not patterned, not used


def _classes(
    slot: np.ndarray,
    position: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    row_off: np.ndarray,
    col_off: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Each position's row and column class, numbered across slots (slot j's from its offset)."""
    if rows.min() == rows.max() and cols.min() == cols.max():  # one grid: scalar arithmetic
        r, c = int(rows[0]), int(cols[0])
        row = position // c
        return slot * r + row, slot * c + (position - row * c)
    width = cols[slot]
    row = position // width
    return row_off[slot] + row, col_off[slot] + (position - row * width)


def _same(
    hist_a: np.ndarray, hist_b: np.ndarray, hist_s: np.ndarray, offset: np.ndarray
) -> np.ndarray:
    """Per slot, how many (unshared of A, unshared of B) pairs share a class, as float64, from
    each side's class counts and the shared positions'."""
    running = np.concatenate([[0], np.cumsum((hist_a - hist_s) * (hist_b - hist_s))])
    return (running[offset[1:]] - running[offset[:-1]]).astype(np.float64)


def _scalar_factor(sa: SlotSignature, sb: SlotSignature, grid: tuple[int, int]) -> float:
    """The larger `_factor` of one pair of slots, as `shared_and_population` computes it."""
    _, a, b = split_shared(sa.positions.astype(np.int64), sb.positions.astype(np.int64))
    return pattern_factor(a, b, grid[0], grid[1], sa.n)
