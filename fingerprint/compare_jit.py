"""Compiled (numba) form of the integer counts of `fingerprint.slot_layouts`: the same integers.

`slot_layouts._counts_prepared` compares two signatures' cached layouts (every slot's sorted
positions and its row and column class counts). Its numpy form sorts the two sides' positions
together and sums class products over every class of every slot: about thirty array operations
a pair, most of a graph build's time at 2,000 models. Here one loop per slot does it:

* the shared positions, by walking both sorted position lists at once;
* for rows and for columns, the number of (unshared of A, unshared of B) pairs that fall in
  one class, `sum over classes (a - s)(b - s)` with a, b and s the class counts of A, B and the
  shared positions. Expanded, it is `sum a*b - sum s*(a + b) + sum s*s`: the first term is B's
  count at each of A's positions, the second the two counts at each shared position, the third
  counted as the shared positions come (each adds 2 * (those already in its class) + 1).

`layout_classes` makes one signature's rows, columns and class counts for the layout (the
same integers as numpy's, without its temporaries: a freshly parsed candidate's layout is made
for one pair). Only integers are computed here (exact in int64: every count is at most k), so
the results are the numpy path's to the bit; the float factor made from them stays in numpy
(`slot_layouts._counts_prepared`). tests/fingerprint/test_compare_jit.py and
tests/fingerprint/test_fresh_parse.py hold the two paths equal. numba is optional (the extra
`fast`); this module is imported only when it is present and `LINEAGE_NO_JIT` is unset or 0
(`slot_layouts.jit_counts`). Compiled code is cached on disk (`cache=True`), so only the first
process after an install compiles.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def layout_counts(grids, wheres, hists_a, hists_b, rows, cols, out):
    """Per slot j of two layouts, into `out[:, j]` (int64, 3 rows): positions both hold, and
    the (unshared of A, unshared of B) pairs sharing a row class and a column class.

    `grids`: A's and B's (slots, k) positions, strictly increasing and below rows[j] * cols[j]
    in slot j (what `slot_layouts._layout` checked). `wheres`: A's and B's (2, slots, k) row and
    column of each position in its window (a division each, made once a signature: here it
    cost more than all the rest). `hists_a`, `hists_b`: (row counts, column counts), slot j's
    rows from sum(rows[:j]) and its columns from sum(cols[:j]).
    """
    grid_a, grid_b = grids
    where_a, where_b = wheres
    rows_a, cols_a = hists_a
    rows_b, cols_b = hists_b
    slots, ka = grid_a.shape
    kb = grid_b.shape[1]
    window = 1
    width = 1
    for j in range(slots):
        window = max(window, rows[j] * cols[j])
        width = max(width, cols[j])
    # A's positions as bits (a bit a cell of the window: 32 KB for 2^18 cells, in L1 cache),
    # cleared after each slot; then each of B's positions is one bit test, no jump taken on
    # it (a merge of the two sorted lists waits on every step's comparison).
    bits = np.zeros((window + 63) >> 6, np.uint64)
    seen_col = np.zeros(width, np.int64)  # shared positions per column of the current slot
    shared_at = np.empty(kb + 1, np.int64)  # B's index of each; one spare (see below)
    one = np.uint64(1)
    row_off = 0
    col_off = 0
    for j in range(slots):
        # (1) A's positions: marked, and B's class counts there summed (sum a*b over classes)
        dot_r = 0
        dot_c = 0
        for i in range(ka):
            p = np.uint64(grid_a[j, i])
            bits[p >> 6] |= one << (p & 63)
            dot_r += rows_b[row_off + where_a[0, j, i]]
            dot_c += cols_b[col_off + where_a[1, j, i]]
        # (2) B's positions that A holds, in increasing order
        m = 0
        for t in range(kb):
            p = np.uint64(grid_b[j, t])
            shared_at[m] = t  # kept only where the bit is set
            m += np.int64((bits[p >> 6] >> (p & 63)) & one)
        for i in range(ka):
            bits[np.uint64(grid_a[j, i]) >> 6] = 0
        # (3) sum s*(a + b) and sum s*s over classes, from the shared positions: s of a
        # column is counted first, then summed at each shared position (s of them a class)
        for u in range(m):
            seen_col[where_b[1, j, shared_at[u]]] += 1
        cross_r = 0
        cross_c = 0
        square_r = 0
        square_c = 0
        run = 0
        last_r = -1
        for u in range(m):
            r = where_b[0, j, shared_at[u]]
            q = where_b[1, j, shared_at[u]]
            cross_r += rows_a[row_off + r] + rows_b[row_off + r]
            cross_c += cols_a[col_off + q] + cols_b[col_off + q]
            run = run + 1 if r == last_r else 1  # rows come in increasing order: runs
            last_r = r
            square_r += 2 * run - 1
            square_c += seen_col[q]
        for u in range(m):  # the scratch counts back to zero for the next slot
            seen_col[where_b[1, j, shared_at[u]]] = 0
        out[0, j] = m
        out[1, j] = dot_r - cross_r + square_r
        out[2, j] = dot_c - cross_c + square_c
        row_off += rows[j]
        col_off += cols[j]


@njit(cache=True, nogil=True)
def layout_classes(grid, cols, firsts, where, hist_r, hist_c):
    """One signature's `where` and class counts (`slot_layouts._layout`'s numpy arithmetic, the
    same integers), in one pass over its positions without the numpy path's temporaries (a
    fresh signature's layout is made once and used once: its memory, not its arithmetic, cost).

    `grid`: (slots, k) positions, each below its slot's window (checked by the caller). `cols`:
    each slot's columns. `firsts`: (2, slots, 1) each slot's first row class and column class.
    Writes each position's row and column into `where` (2, slots, k) and adds one to its row
    class in `hist_r` and its column class in `hist_c` (both zero on entry).
    """
    slots, k = grid.shape
    for j in range(slots):
        width = cols[j]
        first_r = firsts[0, j, 0]
        first_c = firsts[1, j, 0]
        for i in range(k):
            p = np.int64(grid[j, i])
            r = p // width
            q = p - r * width
            where[0, j, i] = r
            where[1, j, i] = q
            hist_r[first_r + r] += 1
            hist_c[first_c + q] += 1
