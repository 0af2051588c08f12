"""`shared_and_population` of every slot of a pair of models at once, the same integers.

`fingerprint.structure` holds the rule, one pair of slots at a time: how many positions the two
slots share, and the population their null draws from once the windows' row or column pattern
is taken out. A pair of models has dozens of slots and the graph compares thousands of pairs, so
`slot_counts` counts them all in a few array operations: positions sorted together slot by
slot, class counts per row and column offset slot after slot, the factor in the scalar rule's
float arithmetic element by element (exact below 2^53). A signature met again (one model against
many in a graph) brings its sorted grid and class counts from a small cache (`fingerprint.slot_layouts`).
Whatever it cannot take exactly it hands to the scalar rule, so the two never disagree
(tests/fingerprint/test_compare_fast.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fingerprint.records import SlotSignature
from fingerprint.slot_layouts import (
    _EXACT,
    DENSE_CLASSES,
    _counts_prepared,
    _hists,
    _offsets,
    _prepared,
    _same_counts,
    _shrink,
    shared_rows,
)
from fingerprint.structure import (
    MIN_FACTOR,
    PRIOR,
    pattern_factor,
    shared_and_population,
    split_shared,
    window_grid,
)


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
        _, both = shared_rows(grid_a, grid_b)
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


def _scalar_factor(sa: SlotSignature, sb: SlotSignature, grid: tuple[int, int]) -> float:
    """The larger `_factor` of one pair of slots, as `shared_and_population` computes it."""
    _, a, b = split_shared(sa.positions.astype(np.int64), sb.positions.astype(np.int64))
    return pattern_factor(a, b, grid[0], grid[1], sa.n)
