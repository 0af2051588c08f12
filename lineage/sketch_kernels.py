"""Compiled (numba) kernels of the sketch index's counts (`lineage.sketch_jit` drives them).

`matched` finds a pass's codes in a segment through its `directory`; `segment_counts_many`
counts the codes each row shares with each of a few queries; `count_planes` adds up to 64
sketches' codes to bit-plane counters, and `reached` lists the rows whose count reaches a
threshold. Every kernel releases the GIL. numba is optional: this module is imported only when
it is present (`lineage.sketch_segments.jit_enabled`); compiled once per machine
(`cache=True`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from lineage.jit_prefetch import prefetch

# codes ahead of the one counted whose postings are asked for, and postings ahead of the one
# counted whose counter is (`prefetch`): the postings of the codes of a pass lie anywhere in
# the segment (132 MB at 100,000 models) and the counters of a big segment overflow L2, so
# reading both before they are needed cut a related scan's counting 29 -> 21 ms
CODES_AHEAD = 8
POSTINGS_AHEAD = 8


@njit(cache=True, nogil=True)
def matched(keys, starts, where, codes, masks):
    """(lo, hi, mask) of each of the sorted distinct `codes` found in a segment's `keys`: its
    postings are rows[lo:hi], and `masks` gives it its mask. `where` is the segment's
    `directory`; `keys` is not empty."""
    m = codes.size
    lo = np.empty(m, np.int64)
    hi = np.empty(m, np.int64)
    mm = np.empty(m, masks.dtype)
    shift = 32
    while (1 << (32 - shift)) < where.size - 1:  # the directory's buckets: 2^(32 - shift)
        shift -= 1
    got = 0
    for e in range(m):
        if e + CODES_AHEAD < m:  # the keys of a code some codes on (7.2 -> 5.2 ms a scan)
            ahead = np.int64(where[np.int64(codes[e + CODES_AHEAD]) >> shift])
            prefetch(keys, min(ahead, keys.size - 1))
        code = codes[e]
        b = np.int64(code) >> shift
        a = np.int64(where[b])
        z = np.int64(where[b + 1])
        while a < z and keys[a] < code:
            a += 1
        if a < z and keys[a] == code:
            lo[got] = starts[a]
            hi[got] = starts[a + 1]
            mm[got] = masks[e]
            got += 1
    return lo[:got], hi[:got], mm[:got]


@njit(cache=True, nogil=True)
def _ask_postings(rows, lo, hi, j):
    """Prefetch every cache line of the postings of matched code `j` (when there is one)."""
    if j < lo.size:
        for p in range(lo[j], hi[j], 32):
            prefetch(rows, p)


@njit(cache=True, nogil=True)
def segment_counts_many(keys, starts, rows, where, q, qoff, size, least):
    """Rows of one segment sharing at least `least` codes with each query.

    Args:
        keys: the segment's sorted distinct codes.
        starts: where each key's postings begin in `rows` (len(keys) + 1).
        rows: segment-local rows grouped by key.
        where: the segment's `directory`.
        q: the queries' sorted distinct codes, one query after another.
        qoff: where each query starts in `q` (queries + 1).
        size: rows in the segment.
        least: the smallest count kept (>= 1).

    Returns:
        (query, row, count) of every kept pair, queries in order and rows ascending within one.
    """
    counter = np.zeros(size, np.int32)
    ones = np.ones(q.size, np.uint8)
    cap = 1024
    out_q = np.empty(cap, np.int64)
    out_r = np.empty(cap, np.int64)
    out_c = np.empty(cap, np.int64)
    got = 0
    for i in range(qoff.size - 1):
        lo, hi, _ = matched(keys, starts, where, q[qoff[i] : qoff[i + 1]], ones)
        for j in range(lo.size):
            _ask_postings(rows, lo, hi, j + CODES_AHEAD)
            h = hi[j]
            for p in range(lo[j], h):
                if p + POSTINGS_AHEAD < h:
                    prefetch(counter, np.int64(rows[p + POSTINGS_AHEAD]))
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
def count_planes(rows, lo, hi, masks, planes, bits):
    """Add the codes of up to 64 sketches to one segment's counters.

    The sketches of one search's expansion are relatives of one another, so most codes belong
    to several of them: each distinct code's postings are read once and added to all its
    sketches at once. Every row keeps, for each sketch (a bit lane), a count in bit planes
    (`bits` words of `planes`: the b-th bit of every lane's count), saturating at 2^bits - 1;
    a code adds its lane mask with a ripple carry through the planes. For 4 planes (8 <= least
    <= 15: the expansion's 12) the carry is unrolled, each of a row's words read and written
    once: 25-30% faster on the 100,000-model index, the same counts.

    Args:
        rows: the segment's rows grouped by key (`segment_counts_many`).
        lo, hi, masks: the postings of each code of the sketches found in the segment, and the
            lanes (sketches) holding it, in `planes`' word type (`matched`).
        planes: counters, `bits` words a row of the segment (flat: 2-D indexing measured 2x
            slower), zeroed.
        bits: counter planes a row (`sketch_jit.bits_for(least)`).
    """
    for j in range(lo.size):
        _ask_postings(rows, lo, hi, j + CODES_AHEAD)
        m = masks[j]
        h = hi[j]
        for p in range(lo[j], h):
            if p + POSTINGS_AHEAD < h:
                prefetch(planes, np.int64(rows[p + POSTINGS_AHEAD]) * bits)
            at = np.int64(rows[p]) * bits
            if bits == 4:
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
                continue
            carry = m
            for b in range(bits):  # no early exit: a predictable loop is faster
                word = planes[at + b]
                planes[at + b] = word ^ carry
                carry &= word
            if carry != 0:  # lanes past the top: held at the top (>= least)
                for b in range(bits):
                    planes[at + b] |= carry


@njit(cache=True, nogil=True)
def reached(planes, bits, least, full):
    """(lane, row) of every count in `planes` at or above `least`, rows ascending."""
    size = planes.size // bits
    cap = 1024
    out_l = np.empty(cap, np.int64)
    out_r = np.empty(cap, np.int64)
    got = 0
    zero = np.uint64(0)
    # with the top bit of `least` set (`bits_for` makes it so), a lane reaching it has its top
    # plane's bit set: most rows are passed over on that one word
    top = (least >> (bits - 1)) & 1
    for r in range(size):
        if top and planes[r * bits + bits - 1] == 0:
            continue
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
