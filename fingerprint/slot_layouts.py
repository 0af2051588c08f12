"""Each signature's slots laid out once for `slot_counts`, and two layouts counted slot by slot.

A graph compares a model with dozens of others, so what every pair with a signature computes
alike is computed once and kept (`_prepared`: a least-recently-used cache of at most
`LAYOUT_BYTES`): the sorted grid of positions, each position's row and column in its window,
the row and column class counts, and the constants of `_factor`'s exchangeable count. A scan
meets every candidate freshly parsed, its layout made for one pair: what depends only on the
windows (every slot's n and shape: the same for every model of an architecture) is made once
and shared (`_windows`), and the rows, columns and class counts are one pass over the
positions (`compare_jit.layout_classes` where numba runs, else numpy: the same integers). Two
layouts of one window layout are then counted slot by slot (`_counts_prepared`): the integers
by a compiled loop where numba is installed (`fingerprint.compare_jit`, `jit_counts`) or by
numpy, the float factor by numpy either way, so both paths give the same populations. The class
counting primitives (`_hists`, `_same_counts`, `_shrink`) are shared with `slot_counts`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from fingerprint import jit
from fingerprint.records import SlotSignature
from fingerprint.structure import MIN_FACTOR, PRIOR, grid_floor, window_grid

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
NO_JIT_ENV = jit.NO_JIT_ENV
JIT_WINDOW = 1 << 26  # larger windows go to numpy (the compiled loop sets a bit a cell)
_pairs_counted = [0]  # pairs of layouts counted with numpy in this process (approximate)


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


@dataclass(frozen=True, slots=True)
class _Windows:
    """What a `_Layout` holds that depends only on its slots' windows (each slot's n and shape):
    the same for every model of one architecture, so made once and shared (`_windows`), its
    arrays read-only. `fits`: every window is whole rows, the classes are few enough to count
    densely and n is exact in float64 (else no layout)."""

    n: np.ndarray
    grid_shape: tuple[np.ndarray, ...]  # `_offsets`
    windows: bytes
    per_class: np.ndarray
    n_less: np.ndarray
    single: np.ndarray
    patterned: np.ndarray
    fits: bool
    width: np.ndarray  # each slot's columns as a (slots, 1) uint32 divisor, or one uint32
    firsts: np.ndarray  # (2, slots, 1) int64: each slot's first row class and column class


# `_Windows` by the (n, shape) of every slot, all dropped past `_WINDOWS_KEPT` (one entry an
# architecture: a store holds a few dozen).
_WINDOWS: dict[tuple[tuple[int, tuple[int, ...]], ...], _Windows] = {}
_WINDOWS_KEPT = 256


def _windows(slots: tuple[SlotSignature, ...]) -> _Windows:
    key = tuple([(s.n, tuple(s.shape)) for s in slots])
    hit = _WINDOWS.get(key)
    if hit is not None:
        return hit
    n = np.array([s.n for s in slots], dtype=np.int64)
    grids = [window_grid(s) for s in slots]
    rows = np.array([g[0] for g in grids], dtype=np.int64)
    cols = np.array([g[1] for g in grids], dtype=np.int64)
    offsets = _offsets(rows, cols)
    fits = bool(
        np.all(rows * cols == n)
        and max(int(rows.sum()), int(cols.sum())) <= DENSE_CLASSES
        and int(n.max()) < _EXACT
    )
    # one width for all: a scalar divisor (a third of the time of an array of them)
    width = (
        np.uint32(cols[0]) if fits and cols.min() == cols.max() else cols[:, None].astype(np.uint32)
    )
    made = _Windows(
        n,
        offsets,
        np.stack([n, rows, cols]).tobytes(),
        per_class=np.maximum(np.stack([cols, rows]) - 1, 0),
        n_less=np.maximum(n - 1, 1),
        single=np.stack([cols < 2, rows < 2]),
        patterned=n >= 2,
        fits=fits,
        width=width,
        firsts=np.stack([offsets[2][:-1], offsets[3][:-1]])[:, :, None],
    )
    shared = (n, *offsets, made.per_class, made.n_less, made.single, made.patterned, made.firsts)
    for array in shared:
        array.flags.writeable = False  # shared by every layout of these windows
    if len(_WINDOWS) >= _WINDOWS_KEPT:
        _WINDOWS.clear()
    _WINDOWS[key] = made
    return made


def _layout(slots: tuple[SlotSignature, ...]) -> _Layout | None:
    """`slots` laid out (`_Layout`), or None where they do not fit one: slots of unequal or no
    positions, positions not uint32 (the format's), not strictly increasing or past the
    window, windows not whole rows, too many classes, n past exact floats."""
    sizes = {s.positions.size for s in slots}
    if not slots or len(sizes) != 1 or 0 in sizes:
        return None
    win = _windows(slots)
    # `np.stack`'s rows (every slot has as many positions), without its per-row reshaping
    grid = np.concatenate([s.positions for s in slots]).reshape(len(slots), -1)
    if not (
        win.fits
        and grid.dtype == np.uint32
        and np.all(grid[:, 1:] > grid[:, :-1])
        and np.all(grid[:, -1] < win.n)
    ):
        return None
    _, cols, row_off, col_off = win.grid_shape
    where = np.empty((2, *grid.shape), dtype=np.int32)
    # counts are at most k: int32 halves what the cache holds
    hists = (np.zeros(int(row_off[-1]), np.int32), np.zeros(int(col_off[-1]), np.int32))
    jit = jit_counts()
    if jit is not None:
        jit.layout_classes(grid, cols, win.firsts, where, *hists)
    else:
        _classes_into(grid, win, where, hists)
    return _Layout(
        slots,
        grid,
        win.n,
        win.grid_shape,
        hists,
        where,
        windows=win.windows,
        per_class=win.per_class,
        n_less=win.n_less,
        single=win.single,
        patterned=win.patterned,
    )


def _classes_into(
    grid: np.ndarray, win: _Windows, where: np.ndarray, hists: tuple[np.ndarray, np.ndarray]
) -> None:
    """Each position's row and column in its window into `where`, and how many positions each
    row class and column class holds (numbered across slots, as `_classes`) into `hists`:
    `compare_jit.layout_classes`'s integers, by numpy."""
    in_row = grid // win.width
    where[0] = in_row
    where[1] = grid - in_row * win.width
    classes = where + win.firsts
    hists[0][:] = np.bincount(classes[0].ravel(), minlength=hists[0].size)
    hists[1][:] = np.bincount(classes[1].ravel(), minlength=hists[1].size)


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
        shared, both = shared_rows(a.grid, b.grid)
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


def shared_rows(
    grid_a: np.ndarray, grid_b: np.ndarray
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Per slot (a row of each grid, positions strictly increasing), how many positions both
    hold, and the (slot, position) of each: the two rows sorted together, a position both hold
    stands twice in a row."""
    merged = np.sort(np.concatenate([grid_a, grid_b], axis=1), axis=1)
    twice = merged[:, 1:] == merged[:, :-1]
    shared = np.count_nonzero(twice, axis=1)
    slot = np.repeat(np.arange(len(shared), dtype=np.int64), shared)
    return shared, (slot, merged[:, 1:][twice].astype(np.int64))


def jit_counts() -> ModuleType | None:
    """`fingerprint.compare_jit` (compiled, the same integers) when numba is installed, allowed
    ($LINEAGE_NO_JIT unset or 0) and worth its import (`JIT_AFTER_PAIRS`); None: numpy."""
    if not jit.allowed() or not jit.worth(_pairs_counted[0], JIT_AFTER_PAIRS):
        return None
    return jit.compiled("fingerprint.compare_jit")


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
