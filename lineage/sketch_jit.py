"""Compiled (numba) counting of shared sketch codes: the passes of the scan's expansion.

`lineage.sketch_segments.SketchLog.reaching` asks, for each of up to 64 sketches (the
expansion's hubs, relatives of one another), which rows of the index share at least `least`
codes with it. numpy gathers every posting of every code into one index array and
`bincount`s it (~90 ms a pass of 16 sketches at 100,000 models). Here each segment's codes are
found through its `directory` (`sketch_kernels.matched`), each distinct code's postings are
read once for every sketch holding it, into bit-plane counters (`sketch_kernels.count_planes`),
and the rows reaching the threshold are listed (`sketch_kernels.reached`).

The scheme gives exactly the numpy path's rows (tested). numba is optional (`pip install -e
'.[fast]'`): this module is imported only when it is present, and `LINEAGE_NO_JIT=1` turns it
off (`lineage.sketch_segments.jit_enabled`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lineage.sketch_kernels import SHIFT, count_planes, count_planes4, matched, reached

__all__ = ["bits_for", "directory", "reaching"]

# (word type, sketches it holds), narrowest first: one bit a sketch in every counter plane
_WORDS = ((np.uint8, 8), (np.uint16, 16), (np.uint32, 32), (np.uint64, 64))


def directory(keys: np.ndarray) -> np.ndarray:
    """Where each bucket of codes (their top `32 - SHIFT` bits) begins in a segment's sorted
    keys (uint32, 2^16 + 1 of them: 256 KiB): a code's key is then one read and a few
    compares away, and the codes of a pass are looked up independently of one another (a
    galloping search from the previous code waits on every step: 9 against 5.5 ms a related
    scan at 100,000 models)."""
    edges = np.arange((1 << (32 - SHIFT)) + 1, dtype=np.uint64) << np.uint64(SHIFT)
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
) -> list[np.ndarray]:
    """`lineage.sketch_segments.SketchLog.reaching` over `segments` (`Segment`s, rows
    ascending from one to the next; `directories` their `directory`): `lanes` sketches a
    pass."""
    least = max(1, least)
    bits = bits_for(least)
    out: list[np.ndarray] = [np.zeros(0, np.int64)] * len(queries)
    for first in range(0, len(queries), lanes):
        chunk = [np.asarray(c, np.uint32) for c in queries[first : first + lanes]]
        every = np.concatenate(chunk) if chunk else np.zeros(0, np.uint32)
        if not every.size:
            continue
        lane = np.repeat(np.arange(len(chunk), dtype=np.uint64), [c.size for c in chunk])
        codes, inverse = np.unique(every, return_inverse=True)
        wide = np.zeros(codes.size, np.uint64)
        np.bitwise_or.at(wide, inverse, np.left_shift(np.uint64(1), lane))
        # the narrowest word holding a bit a sketch: a pass of 5 sketches keeps an eighth of
        # the counters of 64 (the big segment's 2 MB of planes would not stay in L2)
        masks = wide.astype(next(w for w, width in _WORDS if len(chunk) <= width))
        full = np.uint64((1 << len(chunk)) - 1) if len(chunk) < 64 else ~np.uint64(0)
        found, rows = [], []
        for seg, where in zip(segments, directories, strict=True):
            if not seg.keys.size:
                continue
            lo, hi, lanes_of = matched(
                np.asarray(seg.keys), np.asarray(seg.starts), where, codes, masks
            )
            planes = np.zeros((seg.stop - seg.start) * bits, masks.dtype)
            if bits == 4:
                count_planes4(np.asarray(seg.rows), lo, hi, lanes_of, planes)
            else:
                count_planes(np.asarray(seg.rows), lo, hi, lanes_of, planes, bits)
            f, r = reached(planes, bits, least, full)
            found.append(f)
            rows.append(r + seg.start)
        if not found:
            continue
        lane_of, row = np.concatenate(found), np.concatenate(rows)
        order = np.argsort(lane_of, kind="stable")  # rows stay ascending in a lane
        lane_of, row = lane_of[order], row[order]
        ends = np.searchsorted(lane_of, np.arange(len(chunk) + 1)).tolist()
        for i in range(len(chunk)):
            out[first + i] = row[ends[i] : ends[i + 1]]
    return out
