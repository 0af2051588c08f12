"""Compiled (numba) counting of shared sketch codes: the passes of the scan's expansion.

`lineage.sketch_segments.SketchLog.reaching` asks, for each of up to 64 sketches (the
expansion's hubs, relatives of one another), which rows of the index share at least `least`
codes with it. numpy gathers every posting of every code into one index array and
`bincount`s it (~90 ms a pass of 16 sketches at 100,000 models). Here each segment's codes are
found through its `directory` (`sketch_kernels.matched`), each distinct code's postings are
read once for every sketch holding it, into bit-plane counters (`sketch_kernels.count_planes`),
and the rows reaching the threshold are listed (`sketch_kernels.reached`). The segments of a
pass are counted on a few threads, each into counters of its own: at 100,000 models (segments
of 65,536, 16,384, 16,384 and fewer rows) two threads took a pass's counting 34 -> 20 ms wall
for 35 ms CPU (counting one segment's codes in two halves on two threads instead took 28 ->
26 ms wall for 34 ms CPU: the halves' counters had to be summed).

The scheme gives exactly the numpy path's rows (tested). numba is optional (`pip install -e
'.[fast]'`): this module is imported only when it is present, and `LINEAGE_NO_JIT=1` turns it
off (`lineage.sketch_segments.jit_enabled`).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from lineage.sketch_kernels import count_planes, matched, reached

__all__ = ["bits_for", "directory", "reaching"]

# a segment's `directory` has a bucket for about 8 keys, 2^8 to 2^16 of them (a code's bucket:
# its top bits)
BUCKET_KEYS = 8
BUCKET_BITS = (8, 16)
# (word type, sketches it holds), narrowest first: one bit a sketch in every counter plane
_WORDS = ((np.uint8, 8), (np.uint16, 16), (np.uint32, 32), (np.uint64, 64))


def directory(keys: np.ndarray) -> np.ndarray:
    """Where each bucket of codes (their top bits) begins in a segment's sorted keys: a
    code's key is then one read and a few compares away, and the codes of a pass are looked
    up independently of one another (a galloping search from the previous code waits on
    every step: 9 against 5.5 ms a related scan at 100,000 models). `BUCKET_KEYS` keys a
    bucket (256 KiB for a full segment's ~520,000 keys); the bucket count, a power of two, is
    the array's size less one (`sketch_kernels.matched` reads it so)."""
    width = int(np.clip(np.ceil(np.log2(max(1, keys.size) / BUCKET_KEYS)), *BUCKET_BITS))
    edges = np.arange((1 << width) + 1, dtype=np.uint64) << np.uint64(32 - width)
    return np.searchsorted(np.asarray(keys, np.uint64), edges).astype(np.uint32)


def bits_for(least: int) -> int:
    """Counter planes for counts saturating at 2^bits - 1 >= `least` (the top bit of `least`
    is then the top plane's: `sketch_kernels.reached` relies on it)."""
    bits = 1
    while (1 << bits) - 1 < least:
        bits += 1
    return bits


def reaching(
    segments: Sequence[Any],
    directories: Sequence[np.ndarray],
    queries: list[np.ndarray],
    least: int,
    lanes: int,
    workers: int = 1,
) -> list[np.ndarray]:
    """`lineage.sketch_segments.SketchLog.reaching` over `segments` (`Segment`s, rows
    ascending from one to the next; `directories` their `directory`): `lanes` sketches a
    pass, the segments of a pass counted on `workers` threads (the kernels release the GIL;
    each segment has counters of its own, so the rows are those of one thread)."""
    least = max(1, least)
    bits = bits_for(least)
    out: list[np.ndarray] = [np.zeros(0, np.int64)] * len(queries)
    # the largest segments first, so that the threads end together
    order = sorted(
        (i for i, seg in enumerate(segments) if seg.keys.size),
        key=lambda i: (segments[i].start - segments[i].stop, i),
    )
    for first in range(0, len(queries), lanes):
        chunk = [np.asarray(c, np.uint32) for c in queries[first : first + lanes]]
        every = np.concatenate(chunk) if chunk else np.zeros(0, np.uint32)
        if not every.size or not order:
            continue
        lane = np.repeat(np.arange(len(chunk), dtype=np.uint64), [c.size for c in chunk])
        codes, inverse = np.unique(every, return_inverse=True)
        wide = np.zeros(codes.size, np.uint64)
        np.bitwise_or.at(wide, inverse, np.left_shift(np.uint64(1), lane))
        # the narrowest word holding a bit a sketch: a pass of 5 sketches keeps an eighth of
        # the counters of 64 (the big segment's 2 MB of planes would not stay in L2)
        plan = _Pass(
            codes,
            wide.astype(next(w for w, width in _WORDS if len(chunk) <= width)),
            np.uint64((1 << len(chunk)) - 1) if len(chunk) < 64 else ~np.uint64(0),
            bits,
            least,
        )
        jobs = [(segments[i], directories[i]) for i in order]
        counted = _pool(workers).map(plan.count, jobs) if workers > 1 else map(plan.count, jobs)
        by_segment = dict(zip(order, counted, strict=True))
        found = [by_segment[i] for i in sorted(by_segment)]  # segments in row order again
        lane_of = np.concatenate([lanes for lanes, _ in found])
        row = np.concatenate([rows for _, rows in found])
        by_lane = np.argsort(lane_of, kind="stable")  # rows stay ascending in a lane
        lane_of, row = lane_of[by_lane], row[by_lane]
        ends = np.searchsorted(lane_of, np.arange(len(chunk) + 1)).tolist()
        for i in range(len(chunk)):
            out[first + i] = row[ends[i] : ends[i + 1]]
    return out


_POOLS: dict[int, ThreadPoolExecutor] = {}


def _pool(workers: int) -> ThreadPoolExecutor:
    """A thread pool of `workers`, kept for the process (a scan makes two passes, a watch
    scans every interval)."""
    pool = _POOLS.get(workers)
    if pool is None:
        pool = _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="sketch-count")
    return pool


@dataclass(frozen=True)
class _Pass:
    """One pass: its sorted distinct codes, each one's lanes (`masks`, in the pass's word
    type), the lanes in use (`full`), the counter planes a row and the count to reach."""

    codes: np.ndarray
    masks: np.ndarray
    full: np.uint64
    bits: int
    least: int

    def count(self, job: tuple[Any, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(lane, row) of the rows of one segment reaching `least` (rows ascending)."""
        seg, where = job
        lo, hi, lanes_of = matched(
            np.asarray(seg.keys), np.asarray(seg.starts), where, self.codes, self.masks
        )
        planes = np.zeros((seg.stop - seg.start) * self.bits, self.masks.dtype)
        count_planes(np.asarray(seg.rows), lo, hi, lanes_of, planes, self.bits)
        found, rows = reached(planes, self.bits, self.least, self.full)
        return found, rows + seg.start
