"""Compiled (numba) kernels for the exact all-pairs counts of `allpairs_counts`.

numpy pays 30-40 ns of CPU for each pair increment (index arrays are built, then scattered by
`np.add.at`); a compiled loop pays a few, which is what makes 10,000 models in seconds rather
than minutes. The kernels count the same pairs as the numpy path, so the counts are identical:

* `sort_slot`: a slot's entries, given model by model (each model's positions ascending), put
  in (position, model) order by one stable counting sort, so each column lists its models in
  increasing order; it also gives, for every entry as given, where it landed (`where`).
* `add_pairs`: model by model, each thread over its own run of rows (no two threads touch the
  same counter): for each entry of model i, add 1 to the counts of i with every later model of
  its column. The row of i (2 bytes a model, 20 KB at 10,000) stays in the core's L1 cache
  while its ~512 entries are counted; each entry's column is a random read in the slot's
  columns (2 bytes an entry, 10 MB at 10,000 models), asked for `AHEAD` entries early
  (`_prefetch`), which cuts the CPU an increment costs ~3x (17 -> 5.5 ns on 8 random slots of
  10,000 models, one thread, on the shared 2-core machine). The previous kernel wrote each
  increment's counter index into a buffer grouped by cache-sized blocks of rows first, then
  incremented block by block (7.6 ns an increment, same measurement).
* `select_band`: the pairs of a band whose count reaches their smallest count worth keeping
  (`allpairs_counts.Threshold`: one count within each architecture group, one across), in
  (i, j) order, on the threads and without numpy temporaries over the band's counts.

The next slot is sorted on a second Python thread (the kernels release the GIL) while this one
is counted.

numba is an optional dependency (`pip install -e '.[fast]'`): this module is imported only when
it is present, and `LINEAGE_NO_JIT=1` turns it off.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit, prange

from lineage.jit_prefetch import prefetch as _prefetch

# entries ahead of the one counted whose column is asked for (`_prefetch`)
AHEAD = 8


@njit(cache=True, nogil=True)
def sort_slot(pos, off, who, width, member):
    """Entries pos[off[g]:off[g + 1]] (each < width) of model who[g] sorted by (position,
    model) into `member` (who ascending, so one stable counting sort does it); returns where
    each column starts (width + 1 offsets) and where each entry as given landed."""
    start = np.zeros(width + 1, np.int32)  # 4 bytes: 1 MB at 2^18 positions, in L2
    for e in range(pos.size):
        start[pos[e] + 1] += 1
    for p in range(width):
        start[p + 1] += start[p]
    cursor = start[:-1].copy()
    where = np.empty(pos.size, np.int32)
    for g in range(who.size):
        m = who[g]
        for e in range(off[g], off[g + 1]):
            p = pos[e]
            c = cursor[p]
            member[c] = m
            where[e] = c
            cursor[p] = c + 1
    return start, where


@njit(cache=True, nogil=True, parallel=True)
def add_pairs(acc, member, start, where, pos, off, who, rowoff, r0, gcuts):
    """Add 1 to acc[rowoff[i - r0] + j] for every pair i < j sharing a column, i = who[g] for
    the groups g of gcuts[0] .. gcuts[-1] - 1; thread k takes groups gcuts[k] .. gcuts[k + 1] - 1
    (each thread its own rows)."""
    for k in prange(gcuts.size - 1):
        if gcuts[k] == gcuts[k + 1]:
            continue
        last = off[gcuts[k + 1]] - 1
        for g in range(gcuts[k], gcuts[k + 1]):
            row = rowoff[who[g] - r0]
            for q in range(off[g], off[g + 1]):
                # the column of an entry AHEAD on (in the slot's columns, anywhere) is read
                # while this one is counted
                a = min(q + AHEAD, last)
                _prefetch(member, where[a])
                _prefetch(start, pos[a] + 1)
                for f in range(where[q] + 1, start[pos[q] + 1]):
                    acc[row + member[f]] += 1


@njit(cache=True, nogil=True)
def _kept(acc, rowoff, r0, n, group, within, across, i, out_i, out_j, out_c, o):
    """Row i's pairs reaching their smallest count: how many, or written at out_*[o:] when
    out_i has room (o is where they start)."""
    row = rowoff[i - r0]
    gi = group[i]
    inner = max(1, within[gi])
    outer = max(1, across)
    write = out_i.size > 0
    k = 0
    for j in range(i + 1, n):
        v = acc[row + j]
        if v >= (inner if group[j] == gi else outer):
            if write:
                out_i[o + k] = i
                out_j[o + k] = j
                out_c[o + k] = v
            k += 1
    return k


@njit(cache=True, nogil=True, parallel=True)
def select_band(acc, rowoff, r0, r1, n, group, within, across, threads):
    """(i, j, count), in (i, j) order, of the pairs of rows r0 .. r1 - 1 whose count reaches
    max(1, within[group[i]]) when group[i] == group[j], max(1, across) otherwise."""
    rows = r1 - r0
    kept = np.zeros(rows + 1, np.int64)
    none = np.zeros(0, np.int64)
    for k in prange(threads):  # rows k, k + threads, ...: the rows shorten as i grows
        for t in range(k, rows, threads):
            kept[t + 1] = _kept(
                acc, rowoff, r0, n, group, within, across, r0 + t, none, none, none, 0
            )
    for t in range(rows):
        kept[t + 1] += kept[t]
    out_i = np.empty(kept[rows], np.int64)
    out_j = np.empty(kept[rows], np.int64)
    out_c = np.empty(kept[rows], np.int64)
    for k in prange(threads):
        for t in range(k, rows, threads):
            _kept(acc, rowoff, r0, n, group, within, across, r0 + t, out_i, out_j, out_c, kept[t])
    return out_i, out_j, out_c


def _prepare(
    entries: list[tuple[int, np.ndarray]], n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One slot sorted into columns: (member, start, where, pos, off, who)."""
    who = np.array([r for r, _ in entries], np.int64)
    off = np.zeros(who.size + 1, np.int64)
    np.cumsum([p.size for _, p in entries], out=off[1:])
    pos = np.concatenate([p for _, p in entries])
    member = np.empty(pos.size, np.uint16 if n <= 1 << 16 else np.int32)
    width = int(pos.max()) + 1 if pos.size else 1  # sampling may leave a slot no position
    start, where = sort_slot(pos, off, who, width, member)
    return member, start, where, pos, off, who


def count_band(
    per_slot: list[list[tuple[int, np.ndarray]]],
    n: int,
    acc: np.ndarray,
    rowoff: np.ndarray,
    row_cuts: list[int],
) -> None:
    """Count every slot into the band of rows row_cuts[0] .. row_cuts[-1] - 1, one thread per
    run of rows between consecutive `row_cuts`, while one more sorts the next slot."""
    r0 = row_cuts[0]
    set_threads(len(row_cuts) - 1)
    with ThreadPoolExecutor(max_workers=1) as pool:
        nxt = pool.submit(_prepare, per_slot[0], n)
        for s in range(len(per_slot)):
            member, start, where, pos, off, who = nxt.result()
            if s + 1 < len(per_slot):  # sort the next slot while this one is counted
                nxt = pool.submit(_prepare, per_slot[s + 1], n)
            gcuts = np.searchsorted(who, np.array(row_cuts, np.int64))
            add_pairs(acc, member, start, where, pos, off, who, rowoff, r0, gcuts)


def set_threads(threads: int) -> None:
    """Use this many numba threads (at most what numba started with)."""
    most = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
    numba.set_num_threads(max(1, min(threads, most)))
