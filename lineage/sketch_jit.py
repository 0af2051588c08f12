"""Compiled (numba) counting of shared sketch codes in one segment's postings.

`lineage.sketch_segments.SketchLog.counts_many` counts, for each of several sketches, the codes
every row of a segment shares with it. numpy does it by gathering every posting of every query
code into one index array (`np.repeat`, `np.arange`, fancy indexing) and `bincount`-ing it: at
100,000 models a sketch's codes have about 200 postings each, so a pass of 16 expansion
sketches builds and counts arrays of millions of entries (~90 ms a pass on the shared machine).
A compiled loop increments one counter per posting where it reads it and keeps only the rows
at or above the threshold, with nothing allocated but its output.

The scheme gives exactly the numpy path's counts (same postings, same rows, rows ascending per
query), tested. numba is optional (`pip install -e '.[fast]'`): this module is imported only
when it is present, and `LINEAGE_NO_JIT=1` turns it off (`lineage.sketch_segments.jit_enabled`).
Compiled once per machine (`cache=True`, a module-level function: cached on disk beside this
file, not recompiled in every process).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numba import njit


def reaching(
    segments: Sequence[Any], queries: list[np.ndarray], least: int, lanes: int
) -> list[np.ndarray]:
    """`lineage.sketch_segments.SketchLog.reaching` over `segments` (`Segment`s, rows
    ascending from one to the next): `lanes` sketches a pass of `segment_reaching`."""
    out: list[list[np.ndarray]] = [[] for _ in queries]
    for first in range(0, len(queries), lanes):
        chunk = [np.asarray(c, np.uint32) for c in queries[first : first + lanes]]
        every = np.concatenate(chunk) if chunk else np.zeros(0, np.uint32)
        if not every.size:
            continue
        lane = np.repeat(np.arange(len(chunk), dtype=np.uint64), [c.size for c in chunk])
        codes, inverse = np.unique(every, return_inverse=True)
        masks = np.zeros(codes.size, np.uint64)
        np.bitwise_or.at(masks, inverse, np.left_shift(np.uint64(1), lane))
        # the narrowest word holding a bit a sketch: a pass of 5 sketches keeps an eighth of
        # the counters of 64 (the big segment's 2 MB of planes would not stay in L2)
        word = next(w for w, width in _WORDS if len(chunk) <= width)
        masks = masks.astype(word)
        full = np.uint64((1 << len(chunk)) - 1) if len(chunk) < 64 else ~np.uint64(0)
        least_ = max(1, least)
        bits = _bits(least_)
        for seg in segments:
            if not seg.keys.size:
                continue
            planes = np.zeros((seg.stop - seg.start) * bits, word)
            count = segment_reaching4 if bits == 4 else segment_reaching
            found, rows = count(
                np.asarray(seg.keys),
                np.asarray(seg.starts),
                np.asarray(seg.rows),
                codes,
                masks,
                planes,
                bits,
                least_,
                full,
            )
            order = np.argsort(found, kind="stable")  # rows stay ascending in a lane
            found, rows = found[order], rows[order] + seg.start
            cuts = np.searchsorted(found, np.arange(len(chunk) + 1)).tolist()
            for i in range(len(chunk)):
                out[first + i].append(rows[cuts[i] : cuts[i + 1]])
    return [np.concatenate(r) if r else np.zeros(0, np.int64) for r in out]


# (word type, sketches it holds), narrowest first: one bit a sketch in every counter plane
_WORDS = ((np.uint8, 8), (np.uint16, 16), (np.uint32, 32), (np.uint64, 64))


def _bits(least: int) -> int:
    """Counter planes for counts saturating at 2^bits - 1 >= `least`."""
    bits = 1
    while (1 << bits) - 1 < least:
        bits += 1
    return bits


@njit(cache=True, nogil=True)
def _seek(keys, code, lo):
    """The first index at or after `lo` whose key is >= `code`: a galloping search, since a
    query's codes ascend and the next one is a few hundred keys on (a plain binary search over
    the whole segment missed the cache at almost every step)."""
    n = keys.size
    step = 1
    hi = lo
    while hi < n and keys[hi] < code:
        lo = hi + 1
        hi += step
        step *= 2
    if hi > n:
        hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[mid] < code:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True)
def segment_counts_many(keys, starts, rows, q, qoff, size, least):
    """Rows of one segment sharing at least `least` codes with each query.

    Args:
        keys: the segment's sorted distinct codes.
        starts: where each key's postings begin in `rows` (len(keys) + 1).
        rows: segment-local rows grouped by key.
        q: the queries' sorted distinct codes, one query after another.
        qoff: where each query starts in `q` (queries + 1).
        size: rows in the segment.
        least: the smallest count kept (>= 1).

    Returns:
        (query, row, count) of every kept pair, queries in order and rows ascending within one.
    """
    counter = np.zeros(size, np.int32)
    cap = 1024
    out_q = np.empty(cap, np.int64)
    out_r = np.empty(cap, np.int64)
    out_c = np.empty(cap, np.int64)
    got = 0
    nkeys = keys.size
    for i in range(qoff.size - 1):
        lo = 0
        for e in range(qoff[i], qoff[i + 1]):
            a = _seek(keys, q[e], lo)
            lo = a
            code = q[e]
            if a < nkeys and keys[a] == code:
                for p in range(np.int64(starts[a]), np.int64(starts[a + 1])):
                    counter[np.int64(rows[p])] += 1
        for r in range(size):
            c = counter[r]
            if c:
                counter[r] = 0
                if c >= least:
                    if got == cap:
                        cap *= 2
                        nq = np.empty(cap, np.int64)
                        nr = np.empty(cap, np.int64)
                        nc = np.empty(cap, np.int64)
                        nq[:got] = out_q[:got]
                        nr[:got] = out_r[:got]
                        nc[:got] = out_c[:got]
                        out_q, out_r, out_c = nq, nr, nc
                    out_q[got] = i
                    out_r[got] = r
                    out_c[got] = c
                    got += 1
    return out_q[:got], out_r[:got], out_c[:got]


@njit(cache=True, nogil=True)
def segment_reaching(keys, starts, rows, codes, masks, planes, bits, least, full):
    """Rows of one segment sharing at least `least` codes with each of up to 64 sketches.

    The sketches of one search's expansion are relatives of one another, so most codes belong
    to several of them: each distinct code's postings are read once and added to all its
    sketches at once. Every row keeps, for each sketch (a bit lane), a count in bit planes
    (`bits` words of `planes`: the b-th bit of every lane's count), saturating at 2^bits - 1
    >= `least`; a code adds its lane mask with a ripple carry through the planes.

    Args:
        keys, starts, rows: the segment's postings (`segment_counts_many`).
        codes: the sorted distinct codes of every sketch together.
        masks: for each code, the lanes (sketches) holding it, in `planes`' word type.
        planes: zeroed counters, `bits` words a row of the segment (flat: 2-D indexing
            measured 2x slower).
        bits: counter planes a row (`_bits(least)`).
        least: the smallest count kept (>= 1).
        full: the lanes in use (uint64 mask).

    Returns:
        (lane, row) of every row at or above `least` in a lane, rows ascending.
    """
    n = keys.size
    lo = 0
    for e in range(codes.size):
        a = _seek(keys, codes[e], lo)
        lo = a
        if a < n and keys[a] == codes[e]:
            m = masks[e]
            for p in range(np.int64(starts[a]), np.int64(starts[a + 1])):
                at = np.int64(rows[p]) * bits
                carry = m
                for b in range(bits):  # no early exit: a predictable loop is faster
                    word = planes[at + b]
                    planes[at + b] = word ^ carry
                    carry &= word
                if carry != 0:  # lanes past the top: held at the top (>= least)
                    for b in range(bits):
                        planes[at + b] |= carry
    return _reached(planes, bits, least, full)


@njit(cache=True, nogil=True)
def segment_reaching4(keys, starts, rows, codes, masks, planes, bits, least, full):
    """`segment_reaching` for 4 planes (8 <= least <= 15: the expansion's 12), the ripple
    carry unrolled: the same counts, saturating the same way, 25-30% faster (measured on the
    100,000-model index: the four words of a row are read and written once each)."""
    n = keys.size
    lo = 0
    for e in range(codes.size):
        a = _seek(keys, codes[e], lo)
        lo = a
        if a < n and keys[a] == codes[e]:
            m = masks[e]
            for p in range(np.int64(starts[a]), np.int64(starts[a + 1])):
                at = np.int64(rows[p]) * 4
                w0 = planes[at]
                w1 = planes[at + 1]
                w2 = planes[at + 2]
                w3 = planes[at + 3]
                c1 = w0 & m
                c2 = w1 & c1
                c3 = w2 & c2
                top = w3 & c3  # lanes past 15: every plane set, held at the top
                planes[at] = (w0 ^ m) | top
                planes[at + 1] = (w1 ^ c1) | top
                planes[at + 2] = (w2 ^ c2) | top
                planes[at + 3] = (w3 ^ c3) | top
    return _reached(planes, 4, least, full)


@njit(cache=True, nogil=True)
def _reached(planes, bits, least, full):
    """(lane, row) of every count in `planes` at or above `least`, rows ascending."""
    size = planes.size // bits
    cap = 1024
    out_l = np.empty(cap, np.int64)
    out_r = np.empty(cap, np.int64)
    got = 0
    zero = np.uint64(0)
    for r in range(size):
        # lanes whose count >= least, compared bit-sliced from the top bit down
        gt = zero
        eq = ~zero
        for b in range(bits - 1, -1, -1):
            word = np.uint64(planes[r * bits + b])
            if (least >> b) & 1:
                eq &= word
            else:
                gt |= eq & word
                eq &= ~word
        hit = (gt | eq) & full
        lane = 0
        while hit != zero:
            if hit & np.uint64(1):
                if got == cap:
                    cap *= 2
                    nl = np.empty(cap, np.int64)
                    nr = np.empty(cap, np.int64)
                    nl[:got] = out_l[:got]
                    nr[:got] = out_r[:got]
                    out_l, out_r = nl, nr
                out_l[got] = lane
                out_r[got] = r
                got += 1
            hit >>= np.uint64(1)
            lane += 1
    return out_l[:got], out_r[:got]


@njit(cache=True, nogil=True)
def shared_per_slot(positions, limit, cell_base, slot_of, table, n_slots):
    """`lineage.sketch_verify.QueryMask.screen`'s count in one loop: for each stored position
    below its slot's `limit`, whether the query's bit table holds it (bit `cell_base + pos`),
    counted by slot (numpy makes six arrays of the positions' size for the same count)."""
    out = np.zeros(n_slots, np.int64)
    for e in range(positions.size):
        p = np.int64(positions[e])
        if p < limit[e]:
            cell = cell_base[e] + p
            if (table[cell >> 3] >> (cell & 7)) & 1:
                out[slot_of[e]] += 1
    return out
