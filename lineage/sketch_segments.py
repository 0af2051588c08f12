"""The sketch index's storage: an append-only log of sketches and sealed, memory-mapped segments.

Layout on disk (a folder, every file memory-mapped or appended, never rewritten whole):
`codes.u32` the sketches one after another, `offsets.i64` where each starts, `ids.txt` one model
id a line, `meta.json` (format, rate, max_codes, segments), and per sealed segment of
consecutive rows three arrays: `keys` (sorted distinct codes), `starts` (where each key's
postings begin) and `rows` (uint16 segment-local model rows grouped by key). Appending a model
writes its sketch to the log; every `seal_every` models the unsealed tail becomes a segment, and
four segments of one size merge into one (up to `MAX_SEGMENT` models), so appends cost
O(log N) sorting per code and a query touches few segments. The tail is searched through
postings made in memory when it is first searched after a change.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fingerprint import jit
from lineage.allpairs_counts import default_workers
from lineage.sketch_codes import DEFAULT_MAX_CODES, DEFAULT_RATE, distinct

__all__ = [
    "FORMAT",
    "LANES",
    "MAX_SEGMENT",
    "SEAL_EVERY",
    "SketchLog",
    "jit_enabled",
    "postings",
    "segment_counts",
]

FORMAT = 1
SEAL_EVERY = 256
MERGE_FANOUT = 4
MAX_SEGMENT = 1 << 16  # rows within a segment fit in uint16
# sketches `SketchLog.reaching` counts in one compiled pass: one bit of a uint64 each
LANES = 64
# threads a compiled pass counts its segments on, at most (one segment a thread at a time)
COUNT_THREADS = 4
_PARTS = ("keys", "starts", "rows")


# Below this many indexed models numpy counts in a few ms, while the compiled kernels cost a
# process 1-2 s to load and ~20 s to compile the first time after an install: the compiled
# paths start once an index this large is searched, or at once when numba is imported already.
JIT_MIN_ROWS = 5000
_largest = [0]  # the most rows an index searched in this process held


def jit_enabled() -> bool:
    """Whether counting goes through the compiled kernels (`lineage.sketch_jit`): numba
    installed, LINEAGE_NO_JIT unset or 0, and worth loading (`JIT_MIN_ROWS`; `fingerprint.jit`).
    Both paths give the same counts."""
    return jit.allowed() and jit.installed() and jit.worth(_largest[0], JIT_MIN_ROWS)


@dataclass(frozen=True, slots=True)
class Segment:
    """Postings of the consecutive rows [start, stop): `postings` arrays."""

    start: int
    stop: int
    keys: np.ndarray
    starts: np.ndarray
    rows: np.ndarray

    @property
    def name(self) -> str:
        return f"seg-{self.start:010d}-{self.stop:010d}"


def postings(codes: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(keys, starts, rows grouped by key) of parallel code and segment-row (< 2^16) arrays."""
    order = np.argsort(codes, kind="stable")  # stable: rows stay ascending within a key
    codes, rows = codes[order], rows[order]
    head = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if codes.size else order[:0]
    starts = np.r_[head, codes.size].astype(np.uint32)
    return codes[head], starts, rows.astype(np.uint16)


def segment_counts(
    keys: np.ndarray, starts: np.ndarray, rows: np.ndarray, q: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """(segment rows, shared codes) in one segment's postings (`postings`) of `size` rows for
    the sorted distinct query codes `q`."""
    if not keys.size or not q.size:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    at = np.minimum(np.searchsorted(keys, q), keys.size - 1)
    at = at[keys[at] == q]
    lo, hi = starts[at].astype(np.int64), starts[at + 1].astype(np.int64)
    hits = hi - lo
    total = int(hits.sum())
    if not total:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    first = np.repeat(lo - (np.cumsum(hits) - hits), hits) + np.arange(total)
    counts = np.bincount(rows[first], minlength=size)
    found = np.flatnonzero(counts)
    return found, counts[found]


class SketchLog:
    """Sketches of many models in a folder, appended one at a time, counted against a query.

    Args:
        path: the index folder (created when missing; an existing one is opened with its own
            rate and max_codes).
        rate: sampling rate (1 / rate of the positions are kept).
        max_codes: most codes a model keeps.
        seal_every: unsealed models searched directly before they become a segment.

    Raises:
        ValueError: the folder holds another format of index.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        rate: int = DEFAULT_RATE,
        max_codes: int = DEFAULT_MAX_CODES,
        seal_every: int = SEAL_EVERY,
    ):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        meta_path = self.path / "meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        if meta and meta.get("format") != FORMAT:
            raise ValueError(f"{self.path}: sketch index format {meta.get('format')}, not {FORMAT}")
        self.rate = int(meta.get("rate", rate))
        self.max_codes = int(meta.get("max_codes", max_codes))
        self.seal_every = seal_every
        ids_path = self.path / "ids.txt"
        self.ids: list[str] = ids_path.read_text().splitlines() if ids_path.exists() else []
        self._row = {m: r for r, m in enumerate(self.ids)}  # a re-added id: its last row
        self._offsets = [0] if not self.ids else list(self._log_offsets())
        self._segments = [self._open(a, b) for a, b in meta.get("segments", [])]
        self._tail_cache: Segment | None = None
        self._log_map: np.memmap | None = None
        self._directories: dict[str, np.ndarray] = {}  # segment name -> `directory`
        self._write_meta()

    def _log_offsets(self) -> np.ndarray:
        return np.fromfile(self.path / "offsets.i64", dtype=np.int64)

    def _log(self) -> np.ndarray:
        total = self._offsets[-1]
        if not total:
            return np.zeros(0, np.uint32)
        # mapped once per length (an append maps it anew): mapping it for every sketch read
        # (`codes_of`, 30 a related scan) cost 0.25 ms a read
        if self._log_map is None or self._log_map.size != total:
            self._log_map = np.memmap(
                self.path / "codes.u32", dtype=np.uint32, mode="r", shape=(total,)
            )
        return self._log_map

    def _open(self, start: int, stop: int) -> Segment:
        name = Segment(start, stop, *(np.zeros(0),) * 3).name
        load = [np.load(self.path / f"{name}.{p}.npy", mmap_mode="r") for p in _PARTS]
        return Segment(start, stop, *load)

    def _write_meta(self) -> None:
        meta = {
            "format": FORMAT,
            "rate": self.rate,
            "max_codes": self.max_codes,
            "segments": [[s.start, s.stop] for s in self._segments],
        }
        (self.path / "meta.json").write_text(json.dumps(meta))

    def __len__(self) -> int:
        return len(self._row)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._row

    def row_of(self, model_id: str) -> int | None:
        """The current row of an indexed model (its last sketch), or None."""
        return self._row.get(model_id)

    # -- building ------------------------------------------------------------------------
    def add_codes(self, model_id: str, codes: np.ndarray) -> None:
        """Index one model by its sketch (`sketch_codes` with this index's rate)."""
        self.extend([(model_id, codes)])

    def extend(self, items: Iterable[tuple[str, np.ndarray]]) -> None:
        """Index many models by their sketches, appended in one write per `seal_every`
        (a model already indexed is replaced: its new row is the one searched)."""
        batch: list[tuple[str, np.ndarray]] = []
        for item in items:
            batch.append(item)
            if len(batch) >= self.seal_every:
                self._append(batch)
                batch = []
        if batch:
            self._append(batch)

    def _append(self, batch: list[tuple[str, np.ndarray]]) -> None:
        codes = [np.asarray(c, np.uint32)[: self.max_codes] for _, c in batch]
        ends = self._offsets[-1] + np.cumsum([c.size for c in codes], dtype=np.int64)
        with open(self.path / "codes.u32", "ab") as f:
            for c in codes:
                f.write(c.tobytes())
        with open(self.path / "offsets.i64", "ab") as f:
            if len(self._offsets) == 1:
                f.write(np.zeros(1, np.int64).tobytes())
            f.write(ends.tobytes())
        with open(self.path / "ids.txt", "a") as f:
            f.write("".join(f"{m}\n" for m, _ in batch))
        for model_id, _ in batch:
            self._row[model_id] = len(self.ids)
            self.ids.append(model_id)
        self._offsets.extend(ends.tolist())
        self._seal()

    def _seal(self) -> None:
        """Turn full stretches of the tail into segments and merge runs of equal ones."""
        changed = False
        done = self._segments[-1].stop if self._segments else 0
        while len(self.ids) - done >= self.seal_every:
            self._segments.append(self._build(done, done + self.seal_every))
            done += self.seal_every
            changed = True
            while len(self._segments) >= MERGE_FANOUT:
                last = self._segments[-MERGE_FANOUT:]
                size = last[0].stop - last[0].start
                if any(s.stop - s.start != size for s in last) or size * MERGE_FANOUT > (
                    MAX_SEGMENT
                ):
                    break
                merged = self._build(last[0].start, last[-1].stop)
                del self._segments[-MERGE_FANOUT:]
                self._segments.append(merged)
                for s in last:
                    for p in _PARTS:
                        (self.path / f"{s.name}.{p}.npy").unlink()
        if changed:
            self._write_meta()

    def _build(self, start: int, stop: int) -> Segment:
        off = np.asarray(self._offsets[start : stop + 1], np.int64)
        codes = np.array(self._log()[off[0] : off[-1]])
        rows = np.repeat(np.arange(stop - start, dtype=np.int32), np.diff(off))
        seg = Segment(start, stop, *postings(codes, rows))
        for p, arr in zip(_PARTS, (seg.keys, seg.starts, seg.rows), strict=True):
            np.save(self.path / f"{seg.name}.{p}.npy", arr)
        return self._open(start, stop)

    # -- counting ------------------------------------------------------------------------
    def _tail(self) -> Segment | None:
        """The unsealed tail as an in-memory segment, made once per change."""
        done = self._segments[-1].stop if self._segments else 0
        if done >= len(self.ids):
            return None
        if self._tail_cache is None or self._tail_cache.stop != len(self.ids):
            off = np.asarray(self._offsets[done:], np.int64)
            codes = np.array(self._log()[off[0] : off[-1]])
            rows = np.repeat(np.arange(len(self.ids) - done, dtype=np.int32), np.diff(off))
            self._tail_cache = Segment(done, len(self.ids), *postings(codes, rows))
        return self._tail_cache

    def _searched(self) -> list[Segment]:
        """The sealed segments and the tail, as a count reads them."""
        tail = self._tail()
        return [*self._segments, *([tail] if tail is not None else [])]

    def _directory(self, seg: Segment) -> np.ndarray:
        """The compiled lookup's `directory` of a segment, made on its first compiled count
        and kept while the segment is searched (a bucket for ~8 keys: 256 KiB for a full
        segment)."""
        where = self._directories.get(seg.name)
        if where is None:
            from lineage import sketch_jit

            live = {s.name for s in self._searched()}
            for name in [n for n in self._directories if n not in live]:
                del self._directories[name]  # merged away, or an older tail
            where = self._directories[seg.name] = sketch_jit.directory(np.asarray(seg.keys))
        return where

    def counts(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, shared codes) of every indexed row that shares a code with `codes`, rows
        ascending."""
        return self.counts_many([codes])[0]

    def counts_many(
        self, queries: list[np.ndarray], least: int = 1
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """`counts` of several sketches in one pass over the segments (the expansion of a
        search counts many at once), keeping the rows that share at least `least` codes.
        Compiled (`lineage.sketch_jit`) when `jit_enabled` and `least` > 1, else one gather
        and one `bincount` a segment; the same counts either way."""
        _largest[0] = max(_largest[0], len(self.ids))
        qs = [distinct(np.asarray(c, np.uint32)) for c in queries]
        found: list[tuple[list[np.ndarray], list[np.ndarray]]] = [([], []) for _ in qs]
        # compiled only when most rows are dropped: every row that shares a code (least 1) is
        # listed faster by `bincount` and `flatnonzero`
        jit_ = jit_enabled() and least > 1
        for seg in self._searched():
            if jit_:
                counted = _counts_jit(seg, self._directory(seg), qs, least)
            else:
                counted = _counts_numpy(seg, qs, max(1, least))
            for i, (rows, shared) in counted:
                found[i][0].append(rows + seg.start)
                found[i][1].append(shared)
        return [
            (np.concatenate(r).astype(np.int64), np.concatenate(c).astype(np.int64))
            if r
            else (np.zeros(0, np.int64), np.zeros(0, np.int64))
            for r, c in found
        ]

    def reaching(self, queries: list[np.ndarray], least: int) -> list[np.ndarray]:
        """For each sketch, the rows sharing at least `least` codes with it, ascending (what
        `counts_many` keeps at `least`, without the counts). Compiled, the sketches are
        counted 64 at a time with each distinct code's postings read once for all of them
        (`lineage.sketch_jit.reaching`): the sketches of a search's expansion are
        relatives, sharing most of their codes."""
        _largest[0] = max(_largest[0], len(self.ids))
        if not jit_enabled():
            return [rows for rows, _ in self.counts_many(queries, least)]
        from lineage import sketch_jit

        segments = self._searched()
        where = [self._directory(seg) for seg in segments]
        workers = min(COUNT_THREADS, default_workers())
        return sketch_jit.reaching(segments, where, queries, least, LANES, workers)

    def shared_codes(self, query: np.ndarray, row: int) -> int:
        """The codes of the sorted distinct `query` that the sketch at `row` holds: its count
        in `counts` (each of the row's codes found in the query counts, as its postings do)."""
        codes = self._sketch_at(row)
        if not query.size or not codes.size:
            return 0
        at = np.minimum(np.searchsorted(query, codes), query.size - 1)
        return int(np.count_nonzero(query[at] == codes))

    def codes_of(self, model_id: str) -> np.ndarray:
        """The stored sketch of an indexed model."""
        return np.array(self._sketch_at(self._row[model_id]))

    def _sketch_at(self, row: int) -> np.ndarray:
        """The sketch at `row`, a view of the mapped log."""
        return self._log()[self._offsets[row] : self._offsets[row + 1]]

    def memory_bytes(self) -> int:
        """Bytes a search keeps mapped or made: the sealed segments' postings, the row offsets
        and the compiled lookup's directories."""
        post = sum(s.keys.nbytes + s.starts.nbytes + s.rows.nbytes for s in self._segments)
        made = sum(d.nbytes for d in self._directories.values())
        return post + 8 * len(self._offsets) + made

    def nbytes(self) -> dict[str, int]:
        """Bytes on disk: the sketch log (codes, offsets, ids) and the segments' postings."""
        log = sum(
            (self.path / f).stat().st_size
            for f in ("codes.u32", "offsets.i64", "ids.txt")
            if (self.path / f).exists()
        )
        parts = sum(
            (self.path / f"{s.name}.{p}.npy").stat().st_size for s in self._segments for p in _PARTS
        )
        return {"log": log, "postings": parts}


def _counts_numpy(
    seg: Segment, qs: list[np.ndarray], least: int
) -> list[tuple[int, tuple[np.ndarray, np.ndarray]]]:
    """(query, (segment rows, shared codes)) of one segment: every posting of every query code
    gathered into one array and counted with `bincount`."""
    size = seg.stop - seg.start
    owner = np.repeat(np.arange(len(qs)), [q.size for q in qs])
    every = np.concatenate(qs) if qs else np.zeros(0, np.uint32)
    flat = _gather(seg, every, owner, size)
    if flat is None:
        return []
    counts = np.bincount(flat, minlength=len(qs) * size).reshape(len(qs), size)
    out = []
    for i, row in enumerate(counts):
        hit = np.flatnonzero(row >= least)
        out.append((i, (hit, row[hit])))
    return out


def _counts_jit(
    seg: Segment, where: np.ndarray, qs: list[np.ndarray], least: int
) -> list[tuple[int, tuple[np.ndarray, np.ndarray]]]:
    """`_counts_numpy` by the compiled kernel (`lineage.sketch_kernels.segment_counts_many`)."""
    from lineage import sketch_kernels

    if not seg.keys.size or not qs:
        return []
    q = np.concatenate(qs)
    qoff = np.r_[0, np.cumsum([x.size for x in qs])].astype(np.int64)
    who, rows, shared = sketch_kernels.segment_counts_many(
        np.asarray(seg.keys),
        np.asarray(seg.starts),
        np.asarray(seg.rows),
        where,
        q,
        qoff,
        seg.stop - seg.start,
        least,
    )
    cuts = np.searchsorted(who, np.arange(len(qs) + 1)).tolist()
    return [
        (i, (rows[cuts[i] : cuts[i + 1]], shared[cuts[i] : cuts[i + 1]])) for i in range(len(qs))
    ]


def _gather(seg: Segment, q: np.ndarray, owner: np.ndarray, size: int) -> np.ndarray | None:
    """owner x size + segment row of every posting of the codes `q` in `seg` (None: none)."""
    if not seg.keys.size or not q.size:
        return None
    at = np.minimum(np.searchsorted(seg.keys, q), seg.keys.size - 1)
    ok = seg.keys[at] == q
    at, who = at[ok], owner[ok]
    lo, hi = seg.starts[at].astype(np.int64), seg.starts[at + 1].astype(np.int64)
    hits = hi - lo
    total = int(hits.sum())
    if not total:
        return None
    first = np.repeat(lo - (np.cumsum(hits) - hits), hits) + np.arange(total)
    return np.repeat(who.astype(np.int64) * size, hits) + seg.rows[first]
