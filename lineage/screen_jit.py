"""Compiled (numba) kernels of the scan's exact pre-check (`lineage.sketch_verify`): the
query's bit table filled, and a candidate's stored positions looked up in it slot by slot.
numba is optional: imported only when it is present (`lineage.sketch_segments.jit_enabled`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from lineage.jit_prefetch import prefetch

# stored positions ahead of the one looked up whose table byte is asked for (`prefetch`)
LOOKUPS_AHEAD = 16


@njit(cache=True, nogil=True)
def shared_per_slot(positions, bounds, limit, cell_base, table):
    """`lineage.sketch_verify.QueryMask.screen`'s count in one loop: for each slot t's stored
    positions (positions[bounds[t]:bounds[t + 1]]) below its `limit[t]` (0: a slot not met),
    whether the query's bit table holds it (bit `cell_base[t] + pos`), counted by slot (numpy
    makes six arrays of the positions' size for the same count).

    By the time candidates are screened the expansion's counting has pushed the query's
    2 MiB table out of the caches, so each lookup asks for the byte of the one
    `LOOKUPS_AHEAD` on: a candidate's screen went 0.40 -> 0.21 ms with the caches flushed
    before it (0.14 -> 0.16 ms warm). The count is added without a branch (whether a
    position is shared is a coin toss for a relative)."""
    out = np.zeros(limit.size, np.int64)
    for t in range(limit.size):
        lim = limit[t]
        if lim <= 0:
            continue
        base = cell_base[t]
        hi = bounds[t + 1]
        got = 0
        for e in range(bounds[t], hi):
            if e + LOOKUPS_AHEAD < hi:
                prefetch(table, (base + min(np.int64(positions[e + LOOKUPS_AHEAD]), lim - 1)) >> 3)
            p = np.int64(positions[e])
            if p < lim:
                cell = base + p
                got += (table[cell >> 3] >> (cell & 7)) & 1
        out[t] = got
    return out


@njit(cache=True, nogil=True)
def fill_table(table, positions, bounds, offsets, eligible):
    """Set bit `offsets[t] + p` of `table` for each position p of each eligible slot t
    (positions[bounds[t]:bounds[t + 1]]): `lineage.sketch_verify.QueryMask`'s table, which
    numpy fills through a sort of every cell (1.5 ms a query). Returns how many cells fell
    outside the table (the caller then clears it and takes numpy's path)."""
    cells = table.size * 8
    past = 0
    for t in range(bounds.size - 1):
        if eligible[t]:
            base = offsets[t]
            for e in range(bounds[t], bounds[t + 1]):
                cell = base + np.int64(positions[e])
                if cell < 0 or cell >= cells:
                    past += 1
                else:
                    table[cell >> 3] |= np.uint8(1 << (cell & 7))
    return past
