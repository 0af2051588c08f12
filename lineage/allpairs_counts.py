"""Exact shared-position counts of every pair of models, on the CPU, slot by slot.

Counting co-occurrences is X X^T, where row i of X holds model i's bottom-k positions as
columns (slot, position). Almost every pair shares something (two unrelated models share ~k^2/n,
about 1 position a slot), so the counts are a dense upper triangle and the work is about
n^2/2 x slots increments (3.2e9 at 10,000 models of 64 slots).

One slot at a time, the slot's entries are sorted by (position, model) (`_columns`): each
column's models side by side, so every model is paired with those after it in its column. The
counts go into the upper triangle of 2-byte counters, row i holding j = i+1 .. n-1, in bands of
at most `BAND_BYTES` (one band to ~23,000 models at 512 MB; each further band sorts every slot
again). Increments are made by cache-sized blocks of left models, `PAIRS_PER_STEP` at a time,
and, with two workers or more, the next slot is sorted on a second thread while this one is
counted. Only pairs that can matter leave a band: `low(i, j)` gives the smallest count worth
keeping.

Where numba is installed (the `fast` extra) and there are at least `JIT_MIN_MODELS` models,
compiled kernels (`allpairs_jit`) count each band instead of numpy, model by model rather than
column by column, and select the pairs that leave it with a `Threshold` table inside a kernel:
the same counts and pairs, faster (see its docstring); `LINEAGE_NO_JIT=1` turns them off.

Memory: the caller's signatures, one band of counts, two slots' sorted entries (about 12 bytes
an entry) and the pairs kept; a band is n^2 bytes at most (100 MB at 10,000 models).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from fingerprint import jit
from fingerprint.hashing import splitmix64
from fingerprint.signature import Signature

# the pair counts of one band of models stay within this many bytes
BAND_BYTES = 512 << 20
# left models are paired this many bytes of counts at a time, so their rows stay in cache
CACHE_BYTES = 4 << 20
# increments made at once; bounds the temporaries where many models share a column (copies)
PAIRS_PER_STEP = 1 << 21
# counts read at once when selecting the pairs that leave a band
SELECT_COUNTS = 1 << 22
# below this many models the numpy path counts: the compiled kernel's first call (loading its
# cache, or compiling it once) costs more than counting a few hundred models in numpy
JIT_MIN_MODELS = 1000


@dataclass(frozen=True, slots=True)
class Threshold:
    """The smallest count worth keeping as a table: `within[group[i]]` for a pair i, j of one
    group (an architecture block), `across` for a pair of two groups. The compiled path selects
    with the table inside its kernel; as a function it gives the numpy path the same numbers."""

    group: np.ndarray  # int64, one group per model
    within: np.ndarray  # int64, one count per group
    across: int

    def __call__(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return np.where(self.group[i] == self.group[j], self.within[self.group[i]], self.across)


Low = Callable[[np.ndarray, np.ndarray], "np.ndarray | int"]


def default_workers() -> int:
    """The CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def counting_path(n: int) -> str:
    """ "jit" when the compiled kernel (`allpairs_jit`, numba) counts n models, else "numpy":
    numba must be installed, n at least `JIT_MIN_MODELS`, and LINEAGE_NO_JIT unset or 0."""
    return "jit" if n >= JIT_MIN_MODELS and jit.allowed() and jit.installed() else "numpy"


def slot_entries(
    sigs: Sequence[Signature], slot_ids: dict[str, int], rate: int
) -> list[list[tuple[int, np.ndarray]]]:
    """Per slot id, (model row, positions) of every model holding the slot, sampled at `rate`.
    Slots whose window is all kept (k >= n) carry no evidence and are left out."""
    per_slot: list[list[tuple[int, np.ndarray]]] = [[] for _ in slot_ids]
    for r, sig in enumerate(sigs):
        for s in sig.slots:
            if s.positions.size < s.n:
                sid = slot_ids[s.key]
                per_slot[sid].append((r, sample(sid, s.positions, rate)))
    return per_slot


def sample(sid: int, positions: np.ndarray, rate: int) -> np.ndarray:
    """The positions whose hash with the slot id falls in 1/rate of the space (all if rate 1)."""
    if rate == 1:
        return positions
    pos = positions.astype(np.int64)
    h = splitmix64((np.uint64(sid) << np.uint64(32)) | pos.astype(np.uint64))
    return pos[h % np.uint64(rate) == 0]


def _columns(entries: list[tuple[int, np.ndarray]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """One slot's entries sorted by (position, model): each entry's model, and how many entries
    follow it in its column (the models it shares that position with, later in model order)."""
    rows = np.repeat([r for r, _ in entries], [pos.size for _, pos in entries])
    code = np.concatenate([pos for _, pos in entries]).astype(np.int64) * n + rows
    del rows
    code.sort()  # unique: a model holds a position once
    member = (code % n).astype(np.int32)
    col = code // n
    del code
    start = np.flatnonzero(np.r_[True, col[1:] != col[:-1]]).astype(np.int32)
    end = np.r_[start[1:], np.int32(col.size)]
    later = np.repeat(end, end - start)
    later -= np.arange(1, col.size + 1, dtype=np.int32)
    return member, later


def _add_pairs(
    acc: np.ndarray, member: np.ndarray, later: np.ndarray, rowoff: np.ndarray, n: int, r0: int
) -> None:
    """Add 1 to acc[rowoff[i - r0] + j] for every pair i < j sharing a column, r0 <= i < r1."""
    r1 = r0 + rowoff.size
    left = np.flatnonzero((later > 0) & (member >= r0) & (member < r1)).astype(np.int32)
    if left.size == 0:
        return
    rows_per_block = max(1, CACHE_BYTES // (n * acc.itemsize))
    # by block of left models, so that their rows of counts stay in cache; position order within
    block = (member[left] - r0) // rows_per_block  # small ints: a stable argsort is a radix sort
    left = left[np.argsort(block.astype(np.min_scalar_type(block.max())), kind="stable")]
    cnt = later[left]
    before = np.cumsum(cnt, dtype=np.int64) - cnt  # pairs of the entries before each one
    # PAIRS_PER_STEP pairs at a time bounds the temporaries, even where many models are copies
    cuts = np.searchsorted(before, np.arange(0, before[-1] + cnt[-1], PAIRS_PER_STEP))
    one = acc.dtype.type(1)
    for a, b in zip(cuts.tolist(), [*cuts[1:].tolist(), left.size], strict=True):
        ll, cc = left[a:b], cnt[a:b]
        total = int(cc.sum())
        if total == 0:
            continue
        # the partners of entry e are the entries e+1 .. e+cnt[e] of its column
        first = np.cumsum(cc, dtype=np.int32) - cc
        partner = np.repeat(ll + 1 - first, cc)
        partner += np.arange(total, dtype=np.int32)
        codes = np.repeat(rowoff[member[ll] - r0], cc)
        codes += member[partner]
        np.add.at(acc, codes, one)


def counts_cpu(
    sigs: Sequence[Signature],
    slot_ids: dict[str, int],
    rate: int,
    low: Low,
    *,
    workers: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, count) of the pairs i < j sharing a column with count >= max(1, low(i, j)), in
    (i, j) order; `low` takes arrays of pair indices and gives the smallest count worth keeping
    (an array, or one number for all). `workers` threads count disjoint rows of a band while
    one more sorts the next slot."""
    n = len(sigs)
    per_slot = [e for e in slot_entries(sigs, slot_ids, rate) if len(e) >= 2]
    empty = np.zeros(0, dtype=np.int64)
    if n < 2 or not per_slot:
        return empty, empty, empty
    most = max(sum(s.positions.size for s in g.slots) for g in sigs)  # no pair shares more
    dtype = np.dtype(np.uint16 if most <= np.iinfo(np.uint16).max else np.uint32)
    r = np.arange(n + 1, dtype=np.int64)
    base = r * n - r * (r + 1) // 2  # row i of the triangle starts at base[i]
    out_i, out_j, out_c = [empty], [empty], [empty]
    threads = max(1, workers or default_workers())
    jit = counting_path(n) == "jit"
    with ThreadPoolExecutor(max_workers=threads + 1) as pool:
        r0 = 0
        while r0 < n:
            r1 = int(np.searchsorted(base, base[r0] + BAND_BYTES // dtype.itemsize, "right")) - 1
            r1 = min(n, max(r0 + 1, r1))
            acc = np.zeros(int(base[r1] - base[r0]), dtype)
            # acc[rowoff[i - r0] + j] counts (i, j): int32, as the band is under 2^31 counts
            rowoff = (base[r0:r1] - base[r0] - r[r0:r1] - 1).astype(np.int32)
            # the threads take rows with equal shares of the band's counts (disjoint rows)
            share = base[r0] + (base[r1] - base[r0]) * np.arange(1, threads) // threads
            cuts = [r0, *np.searchsorted(base, share).tolist(), r1]
            if jit:
                from lineage import allpairs_jit

                allpairs_jit.count_band(per_slot, n, acc, rowoff, cuts)
                if isinstance(low, Threshold):
                    ki, kj, kc = allpairs_jit.select_band(
                        acc, rowoff, r0, r1, n, low.group, low.within, low.across, threads
                    )
                    out_i.append(ki)
                    out_j.append(kj)
                    out_c.append(kc)
                else:
                    _select(acc, base, r0, r1, low, out_i, out_j, out_c)
                r0 = r1
                continue
            parts = [(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if a < b]
            nxt: Future = pool.submit(_columns, per_slot[0], n)
            for s in range(len(per_slot)):
                member, later = nxt.result()
                if s + 1 < len(per_slot):  # sort the next slot while this one is counted
                    nxt = pool.submit(_columns, per_slot[s + 1], n)
                jobs = [
                    pool.submit(_add_pairs, acc, member, later, rowoff[a - r0 : b - r0], n, a)
                    for a, b in parts
                ]
                for job in jobs:
                    job.result()
                del member, later
            _select(acc, base, r0, r1, low, out_i, out_j, out_c)
            r0 = r1
    return np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_c)


def _select(
    acc: np.ndarray,
    base: np.ndarray,
    r0: int,
    r1: int,
    low: Low,
    out_i: list[np.ndarray],
    out_j: list[np.ndarray],
    out_c: list[np.ndarray],
) -> None:
    """Append the pairs of rows r0 .. r1-1 with count >= max(1, low), a few rows at a time."""
    a = r0
    while a < r1:
        b = int(np.searchsorted(base, base[a] + SELECT_COUNTS, side="right")) - 1
        b = min(r1, max(a + 1, b))
        part = acc[base[a] - base[r0] : base[b] - base[r0]]
        flat = np.flatnonzero(part)
        i = np.searchsorted(base[a:b], flat + base[a], side="right") - 1 + a
        j = flat + base[a] - base[i] + i + 1
        c = part[flat].astype(np.int64)
        keep = c >= low(i, j)
        out_i.append(i[keep])
        out_j.append(j[keep])
        out_c.append(c[keep])
        a = b
