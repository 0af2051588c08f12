"""A compact index for candidate search over millions of models: consistent position sampling.

A model's sketch is the set of its (slot key, position) pairs whose 64-bit hash falls in
1/`rate` of the space (the same pairs for every model, so positions two models share survive
in both sketches together), at most `max_codes` of them (the smallest hashes: still consistent),
each stored as the low 32 bits of its hash (a code). Two models that share s bottom-k positions
share about s / `rate` codes; unrelated models of one architecture share k^2 / n per slot by
chance (1 for k = 512, n = 2^18), so T / `rate` codes in all.

Layout on disk (a folder, every file memory-mapped or appended, never rewritten whole):
`codes.u32` the sketches one after another, `offsets.i64` where each starts, `ids.txt` one model
id a line, `meta.json` (format, rate, max_codes, segments), and per sealed segment of
consecutive rows three arrays: `keys` (sorted distinct codes), `starts` (where each key's
postings begin) and `rows` (int32 model rows grouped by key). Appending a model writes its
sketch to the log; every `seal_every` models the unsealed tail becomes a segment, and four
segments of one size merge into one (up to `max_segment` models), so appends cost
O(log N) sorting per code and a query touches few segments. The tail is searched through
postings made in memory when it is first searched after a change.

Parameters (chosen by measurement on `lineage.lab.synthetic.SyntheticHub`, one architecture,
families of mean size 33 whose children keep 20-95% of their parent's positions; the numbers of
scripts/bench_scale.py are in docs/benchmarks.md). `rate` 32 keeps 1,024 codes of a model's
64 x 512 positions: 4 KiB in the log, 2 bytes a posting in memory (segment-local uint16 rows).
Unrelated models then share Poisson(2) codes, related ones s / 32 for s shared positions; but a
pair is related down to s ~ 104-117 of 32,768 (the critical total at alpha 0.01 / N), about 4
codes, which no 1/32 sketch tells from chance: direct search alone found 0.80-0.90 of related
pairs whatever the threshold that keeps false candidates few (measured at 3,000 models: rate 16
reaches 0.99 but at 8 KiB a model; rate 64 finds under 0.96). Those weak pairs are strong
relatives of the models between them, so `related` also searches from the verified matches
(`expand`): `min_shared` 10 (false candidates: P(Poisson(2) >= 10) = 5e-5 of the models),
`expand` up to 64 matches whose candidates need `expand_shared` 12 (2.5e-6) reached 0.9988
recall at 2,000 models (seed 7, 300 queries; 0.9994 with 10, 0.9963 with 16; 8 expansions
gave 0.958) for ~15 verifications a query beyond the true matches.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fingerprint.comparison import DEFAULT_ALPHA, PairResult, compare
from fingerprint.hashing import splitmix64
from fingerprint.signature import Signature

__all__ = [
    "Candidate",
    "SketchIndex",
    "postings",
    "segment_counts",
    "sketch_codes",
    "sketch_rows",
    "slot_salt",
]

FORMAT = 1
DEFAULT_RATE = 32
DEFAULT_MAX_CODES = 1024  # 4 KiB of codes a model
DEFAULT_MIN_SHARED = 10
DEFAULT_EXPAND_SHARED = 12
SEAL_EVERY = 256
MERGE_FANOUT = 4
MAX_SEGMENT = 1 << 16  # rows within a segment fit in uint16
DEFAULT_EXPAND = 64


@functools.lru_cache(maxsize=4096)
def slot_salt(key: str) -> int:
    """A stable 64-bit salt for a slot key (the same in every process and index)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


def sketch_hashes(salt: int, positions: np.ndarray) -> np.ndarray:
    """The 64-bit hash of each (slot, position): splitmix64 of salt + position."""
    with np.errstate(over="ignore"):
        return splitmix64(np.uint64(salt) + positions.astype(np.uint64))


def select_codes(hashes: np.ndarray, rate: int, max_codes: int) -> np.ndarray:
    """The sampled hashes (those below 2^64 / rate, at most `max_codes`, the smallest) as
    sorted distinct uint32 codes (their low 32 bits)."""
    picked = np.unique(hashes[hashes < np.uint64((1 << 64) // rate)])[:max_codes]
    return np.unique((picked & np.uint64(0xFFFFFFFF)).astype(np.uint32))


def sketch_codes(
    sig: Signature, rate: int = DEFAULT_RATE, max_codes: int = DEFAULT_MAX_CODES
) -> np.ndarray:
    """A signature's sketch: sorted distinct uint32 codes (see the module docstring). Slots
    whose window is no larger than k say nothing (as in `compare`) and are left out."""
    parts = [
        sketch_hashes(slot_salt(s.key), s.positions) for s in sig.slots if s.positions.size < s.n
    ]
    if not parts:
        return np.zeros(0, np.uint32)
    return select_codes(np.concatenate(parts), rate, max_codes)


def sketch_rows(
    salts: np.ndarray,
    positions: np.ndarray,
    rate: int = DEFAULT_RATE,
    max_codes: int = DEFAULT_MAX_CODES,
) -> np.ndarray:
    """`sketch_codes` of a (slots, k) position array whose row i belongs to the slot of salt
    `salts[i]` (uint64), in one vectorized hash; repeated positions count once."""
    with np.errstate(over="ignore"):
        h = splitmix64(salts[:, None] + positions.astype(np.uint64))
    return select_codes(h.ravel(), rate, max_codes)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A stored model whose sketch shares codes with the query's.

    Attributes:
        model_id: the stored model.
        row: its row in the index.
        sampled: codes shared.
        estimated: estimated shared bottom-k positions (sampled x rate).
    """

    model_id: str
    row: int
    sampled: int
    estimated: int


@dataclass(frozen=True, slots=True)
class _Segment:
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


class SketchIndex:
    """Sketches of many models in a folder, appended one at a time, searched by one signature.

    Args:
        path: the index folder (created when missing; an existing one is opened with its own
            rate and max_codes).
        rate: sampling rate (1 / rate of the positions are kept).
        max_codes: most codes a model keeps.
        seal_every: unsealed models searched directly before they become a segment.
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
        self._tail_cache: _Segment | None = None
        self._write_meta()

    # -- storage -------------------------------------------------------------------------
    def _log_offsets(self) -> np.ndarray:
        return np.fromfile(self.path / "offsets.i64", dtype=np.int64)

    def _log(self) -> np.ndarray:
        total = self._offsets[-1]
        if not total:
            return np.zeros(0, np.uint32)
        return np.memmap(self.path / "codes.u32", dtype=np.uint32, mode="r", shape=(total,))

    def _open(self, start: int, stop: int) -> _Segment:
        name = _Segment(start, stop, *(np.zeros(0),) * 3).name
        load = [np.load(self.path / f"{name}.{p}.npy", mmap_mode="r") for p in _PARTS]
        return _Segment(start, stop, *load)

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

    # -- building ------------------------------------------------------------------------
    def add(self, model_id: str, sig: Signature) -> None:
        """Index one model's signature (a model already indexed is replaced)."""
        self.add_codes(model_id, sketch_codes(sig, self.rate, self.max_codes))

    def add_codes(self, model_id: str, codes: np.ndarray) -> None:
        """Index one model by its sketch (`sketch_codes` with this index's rate)."""
        self.extend([(model_id, codes)])

    def extend(self, items: Iterable[tuple[str, np.ndarray]]) -> None:
        """Index many models by their sketches, appended in one write per `seal_every`."""
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

    def _build(self, start: int, stop: int) -> _Segment:
        off = np.asarray(self._offsets[start : stop + 1], np.int64)
        codes = np.array(self._log()[off[0] : off[-1]])
        rows = np.repeat(np.arange(stop - start, dtype=np.int32), np.diff(off))
        seg = _Segment(start, stop, *postings(codes, rows))
        for p, arr in zip(_PARTS, (seg.keys, seg.starts, seg.rows), strict=True):
            np.save(self.path / f"{seg.name}.{p}.npy", arr)
        return self._open(start, stop)

    # -- searching -----------------------------------------------------------------------
    def _tail(self) -> _Segment | None:
        """The unsealed tail as an in-memory segment, made once per change."""
        done = self._segments[-1].stop if self._segments else 0
        if done >= len(self.ids):
            return None
        if self._tail_cache is None or self._tail_cache.stop != len(self.ids):
            off = np.asarray(self._offsets[done:], np.int64)
            codes = np.array(self._log()[off[0] : off[-1]])
            rows = np.repeat(np.arange(len(self.ids) - done, dtype=np.int32), np.diff(off))
            self._tail_cache = _Segment(done, len(self.ids), *postings(codes, rows))
        return self._tail_cache

    def counts(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, shared codes) of every indexed row that shares a code with `codes`."""
        q = np.unique(np.asarray(codes, np.uint32))
        found_rows: list[np.ndarray] = []
        found_counts: list[np.ndarray] = []
        for seg in self._segments:
            r, c = _segment_counts(seg, q)
            found_rows.append(r)
            found_counts.append(c)
        tail = self._tail()
        if tail is not None:
            r, c = _segment_counts(tail, q)
            found_rows.append(r)
            found_counts.append(c)
        if not found_rows:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(found_rows).astype(np.int64), np.concatenate(found_counts)

    def codes_of(self, model_id: str) -> np.ndarray:
        """The stored sketch of an indexed model."""
        r = self._row[model_id]
        return np.array(self._log()[self._offsets[r] : self._offsets[r + 1]])

    def candidates(
        self,
        codes: np.ndarray,
        *,
        min_shared: int = DEFAULT_MIN_SHARED,
        exclude: Iterable[str] = (),
    ) -> list[Candidate]:
        """Indexed models sharing at least `min_shared` codes with the sketch `codes` (from
        `sketch_codes`), most shared first."""
        rows, shared = self.counts(codes)
        keep = shared >= min_shared
        return self._named(rows[keep], shared[keep], set(exclude))

    def _named(self, rows: np.ndarray, shared: np.ndarray, skip: set[str]) -> list[Candidate]:
        out = []
        for r, s in zip(rows.tolist(), shared.tolist(), strict=True):
            model_id = self.ids[r]
            if self._row[model_id] != r or model_id in skip:
                continue  # a replaced sketch, or the query itself
            out.append(Candidate(model_id, r, s, s * self.rate))
        out.sort(key=lambda c: (-c.sampled, c.row))
        return out

    def related(
        self,
        codes: np.ndarray,
        verify: Callable[[Candidate], bool],
        *,
        min_shared: int = DEFAULT_MIN_SHARED,
        expand: int = DEFAULT_EXPAND,
        expand_shared: int = DEFAULT_EXPAND_SHARED,
        exclude: Iterable[str] = (),
    ) -> list[Candidate]:
        """Candidates of the sketch `codes` that `verify` accepts, found directly and through
        the strongest accepted ones.

        A weak relative (a great-uncle: a few hundred shared positions of 32,768, a handful of
        codes) is indistinguishable from chance in a 1/rate sketch, but it is a strong relative
        of the models between the two. So after the direct search, the sketches of up to
        `expand` accepted models (strongest first) are searched in turn, and what they turn
        up is verified against the query too. `Candidate.sampled` stays the query's own count.
        """
        skip = set(exclude)
        rows, shared = self.counts(codes)
        own = dict(zip(rows.tolist(), shared.tolist(), strict=True))
        seen: set[int] = set()
        found: list[Candidate] = []
        frontier: list[Candidate] = []

        def consider(cands: list[Candidate]) -> None:
            for c in cands:
                if c.row in seen:
                    continue
                seen.add(c.row)
                c = Candidate(c.model_id, c.row, own.get(c.row, 0), own.get(c.row, 0) * self.rate)
                if verify(c):
                    found.append(c)
                    frontier.append(c)

        keep = shared >= min_shared
        consider(self._named(rows[keep], shared[keep], skip))
        for _ in range(expand):
            if not frontier:
                break
            frontier.sort(key=lambda c: (c.sampled, -c.row))
            hub = frontier.pop()
            consider(
                self.candidates(self.codes_of(hub.model_id), min_shared=expand_shared, exclude=skip)
            )
        found.sort(key=lambda c: (-c.sampled, c.row))
        return found

    def search(
        self,
        sig: Signature,
        load: Callable[[str], Signature],
        *,
        alpha: float | None = None,
        min_shared: int = DEFAULT_MIN_SHARED,
        expand: int = DEFAULT_EXPAND,
        expand_shared: int = DEFAULT_EXPAND_SHARED,
        exclude: Iterable[str] = (),
    ) -> list[tuple[Candidate, PairResult]]:
        """Stored models related to `sig`: `related` with `compare` on full signatures (`load`
        gives a stored model's, called for candidates only) as the verification; a pair
        `compare` calls unrelated is no match.

        Args:
            alpha: significance level of `compare`; default `DEFAULT_ALPHA / N` (Bonferroni
                over the N indexed models, as `lineage.match.SignatureIndex` does).
        """
        alpha = DEFAULT_ALPHA / max(1, len(self)) if alpha is None else alpha
        pairs: dict[str, PairResult] = {}

        def verify(c: Candidate) -> bool:
            pair = compare(sig, load(c.model_id), alpha=alpha)
            pairs[c.model_id] = pair
            return pair.verdict != "unrelated"

        codes = sketch_codes(sig, self.rate, self.max_codes)
        found = self.related(
            codes,
            verify,
            min_shared=min_shared,
            expand=expand,
            expand_shared=expand_shared,
            exclude=exclude,
        )
        return [(c, pairs[c.model_id]) for c in found]

    def nbytes(self) -> dict[str, int]:
        """Bytes on disk: the sketch log (codes, offsets, ids) and the segments' postings."""
        log = sum(
            (self.path / f).stat().st_size
            for f in ("codes.u32", "offsets.i64", "ids.txt")
            if (self.path / f).exists()
        )
        postings = sum(
            (self.path / f"{s.name}.{p}.npy").stat().st_size for s in self._segments for p in _PARTS
        )
        return {"log": log, "postings": postings}


_PARTS = ("keys", "starts", "rows")


def _segment_counts(seg: _Segment, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows, counts = segment_counts(seg.keys, seg.starts, seg.rows, q, seg.stop - seg.start)
    return rows + seg.start, counts


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
