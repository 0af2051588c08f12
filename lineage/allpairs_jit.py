"""Compiled (numba) kernels for the exact all-pairs counts of `allpairs_counts`.

numpy pays 30-40 ns of CPU for each pair increment (index arrays are built, then scattered by
`np.add.at`); a compiled loop pays a few ns, which is what makes 10,000 models in seconds
rather than minutes. The scheme is the same as the numpy path's, so the counts are identical:

* `columns`: a slot's entries, given in model order, sorted by position with a stable two-pass
  radix sort (instead of a comparison sort), so each column lists its models in increasing
  order; with the start of every column.
* `add_pairs`: for every entry of a model i in rows r0 .. r1-1, add 1 to the counts of i with
  each later model j of its column. Each thread owns a contiguous run of rows (no two threads
  touch the same counter). Going through the columns in order and incrementing at once would
  miss the cache on almost every increment (the band is 100 MB at 10,000 models; measured ~20 ns
  an increment); instead a thread takes as many of its rows as `buffer_codes` counter indices
  hold, writes the indices of their increments into the buffer grouped by blocks of
  `block_rows` rows (reading the columns in order), then makes the increments block by block,
  each block's counts in cache (measured ~7 ns an increment on the shared machine).

numba is an optional dependency (`pip install -e '.[fast]'`): this module is imported only when
it is present, and `LINEAGE_NO_JIT=1` turns it off.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True)
def _by_digit(shift, mask, pos, rows, out_pos, out_rows):
    """Stable counting sort of (pos, rows) by the digit (pos >> shift) & mask."""
    count = np.zeros(mask + 2, np.int64)
    for e in range(pos.size):
        count[((pos[e] >> shift) & mask) + 1] += 1
    for d in range(mask + 1):
        count[d + 1] += count[d]
    for e in range(pos.size):
        d = (pos[e] >> shift) & mask
        out_pos[count[d]] = pos[e]
        out_rows[count[d]] = rows[e]
        count[d] += 1


@njit(cache=True, nogil=True)
def columns(pos, rows, width):
    """Entries (position `pos[e]` < width held by model `rows[e]`, rows ascending) sorted by
    (position, model): each entry's model, and where each position's column starts (width + 1
    offsets). `pos` is overwritten."""
    bits = 1
    while (1 << bits) < width:
        bits += 1
    low = bits // 2
    tmp_pos = np.empty_like(pos)
    tmp_rows = np.empty_like(rows)
    _by_digit(0, (1 << low) - 1, pos, rows, tmp_pos, tmp_rows)
    member = np.empty_like(rows)
    _by_digit(low, (1 << (bits - low)) - 1, tmp_pos, tmp_rows, pos, member)
    start = np.zeros(width + 1, np.int64)
    for e in range(pos.size):
        start[pos[e] + 1] += 1
    for p in range(width):
        start[p + 1] += start[p]
    return member, start


@njit(cache=True, nogil=True)
def _count_rows(acc, member, start, rowoff, r0, later, ra, rb, block_rows, buffer_codes):
    """The increments of rows ra .. rb-1 (`later[i - r0]` of them for row i), a buffer at a time."""
    most = 0
    need = 0
    for m in range(ra, rb):
        most = max(most, later[m - r0])
        need += later[m - r0]
    buf = np.empty(min(need, max(buffer_codes, most)), np.int32)
    sa = ra
    while sa < rb:
        # rows sa .. sb-1: as many as the buffer holds, at least one
        total = later[sa - r0]
        sb = sa + 1
        while sb < rb and total + later[sb - r0] <= buf.size:
            total += later[sb - r0]
            sb += 1
        nblk = (sb - sa + block_rows - 1) // block_rows
        fill = np.zeros(nblk + 1, np.int64)
        for m in range(sa, sb):
            fill[(m - sa) // block_rows + 1] += later[m - r0]
        for b in range(nblk):
            fill[b + 1] += fill[b]
        for p in range(start.size - 1):
            t = start[p + 1]
            for e in range(start[p], t - 1):
                m = member[e]
                if m >= sa and m < sb:
                    b = (m - sa) // block_rows
                    o = fill[b]
                    row = rowoff[m - r0]
                    for f in range(e + 1, t):
                        buf[o] = row + member[f]
                        o += 1
                    fill[b] = o
        for q in range(total):
            acc[buf[q]] += 1
        sa = sb


@njit(cache=True, nogil=True, parallel=True)
def add_pairs(acc, member, start, rowoff, r0, r1, cuts, block_rows, buffer_codes):
    """Add 1 to acc[rowoff[i - r0] + j] for every pair i < j sharing a column, r0 <= i < r1;
    thread k takes rows cuts[k] .. cuts[k + 1] - 1."""
    later = np.zeros(r1 - r0, np.int64)  # increments of each row
    for p in range(start.size - 1):
        t = start[p + 1]
        for e in range(start[p], t - 1):
            m = member[e]
            if m >= r0 and m < r1:
                later[m - r0] += t - e - 1
    for k in prange(cuts.size - 1):
        _count_rows(
            acc, member, start, rowoff, r0, later, cuts[k], cuts[k + 1], block_rows, buffer_codes
        )


def count_band(
    per_slot: list[list[tuple[int, np.ndarray]]],
    acc: np.ndarray,
    rowoff: np.ndarray,
    row_cuts: list[int],
    block_rows: int,
    buffer_codes: int,
) -> None:
    """Count every slot into the band of rows row_cuts[0] .. row_cuts[-1] - 1, one thread per
    run of rows between consecutive `row_cuts`."""
    r0, r1 = row_cuts[0], row_cuts[-1]
    cuts = np.array(sorted(set(row_cuts)), dtype=np.int64)
    most = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
    numba.set_num_threads(max(1, min(cuts.size - 1, most)))
    for entries in per_slot:
        pos = np.concatenate([p for _, p in entries]).astype(np.int32)
        rows = np.repeat(
            np.array([r for r, _ in entries], dtype=np.int32), [p.size for _, p in entries]
        )
        member, start = columns(pos, rows, int(pos.max()) + 1)
        del pos, rows
        add_pairs(acc, member, start, rowoff, r0, r1, cuts, block_rows, buffer_codes)
