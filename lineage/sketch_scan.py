"""The scan's index: the store's signatures in a persisted sketch index, matched exactly.

`SketchMatcher` answers what `lineage.scanner` asks of an index (`matches`, `add`, `in`) with
the compact sketch index of `lineage.sketch_index` instead of every bottom-k posting: candidates
by shared sketch codes (and through the candidates that pass), each screened by the exact
pre-check of `lineage.sketch_verify` on its stored positions, and those that pass compared by
`fingerprint.comparison.compare`, whose verdict alone makes a match. With `top`, candidates are
compared best bound first and comparing stops once no candidate left can enter the top: the
pre-check's p-value and overlap are `compare`'s own for a pair met by key, so the matches
returned are those a comparison of every candidate would rank first.

The index lives in a folder next to the database (`<db>.sketch/`: the `SketchIndex` files,
`scan.json` saying what it was built for, `revisions.jsonl` the revision each model was
indexed at). Opening it brings it up to date with the store (models not indexed at their
current revision are added), and it is rebuilt from the store when its format or the signature
parameters differ. An in-memory database gets a temporary folder.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Protocol

import numpy as np

from fingerprint import significance
from fingerprint.comparison import DEFAULT_ALPHA, PairResult, compare
from fingerprint.errors import IncompatibleSignaturesError
from fingerprint.signature import Signature, SignatureParams
from lineage.catalogue import Catalogue
from lineage.errors import LineageError
from lineage.match import Match
from lineage.sketch_codes import sketch_codes, sketch_of_slots
from lineage.sketch_index import Candidate, SketchIndex
from lineage.sketch_segments import FORMAT
from lineage.sketch_verify import QueryMask, Screen, StoredPositions, read_positions
from lineage.store import Freshness, Store, freshness

__all__ = ["MATCHING", "SCAN_FORMAT", "SignatureSource", "SketchMatcher", "sketch_folder"]

log = logging.getLogger(__name__)

# Bump with any change to what the folder holds or how a model's sketch is made: the index is
# then rebuilt from the store.
SCAN_FORMAT = 1
# The verdicts that make a match (as `lineage.match.SignatureIndex` reports).
MATCHING = ("identical", "derived", "cousin")
# Overlaps closer than this count as tied when deciding that no candidate left can enter the
# top (they are compared): float sums in another order differ far below it.
TIE = 1e-9


class SignatureSource(Protocol):
    """Where the matcher reads stored models: positions for the pre-check, then signatures."""

    def read_ahead(self, model_ids: list[str]) -> None:
        """The positions of these models are asked for next (a source may read them at once)."""

    def positions(self, model_id: str) -> StoredPositions | None:
        """The current stored positions of `model_id`, or None (gone, stale)."""

    def signature(self, model_id: str) -> Signature | None:
        """The current stored signature of `model_id`, or None."""


class StoreSource:
    """A `SignatureSource` over a store: one read of the blob serves both questions, and the
    candidates screened together are read together (`Store.current_blobs`)."""

    def __init__(self, catalogue: Catalogue):
        self.catalogue = catalogue
        self._blobs: dict[str, bytes] = {}
        # the batch read ahead, each taken by its `positions` (None: no current signature);
        # a new batch replaces what is left, so nothing read ahead outlives its scan
        self._ahead: dict[str, bytes | None] = {}

    def read_ahead(self, model_ids: list[str]) -> None:
        found = self.catalogue.store.current_blobs(model_ids, self.catalogue.tag)
        self._ahead = {m: found.get(m) for m in model_ids}

    def positions(self, model_id: str) -> StoredPositions | None:
        if model_id in self._ahead:
            blob = self._ahead.pop(model_id)
        else:
            store = self.catalogue.store
            rec, row = store.get_model(model_id), store.get_signature(model_id)
            current = rec is not None and freshness(row, rec.revision, self.catalogue.tag)
            blob = row.blob if current is Freshness.CURRENT and row is not None else None
        if blob is None:
            return None
        if len(self._blobs) > 256:  # held only between the pre-check and `compare`
            self._blobs.clear()
        self._blobs[model_id] = blob
        return read_positions(blob)

    def signature(self, model_id: str) -> Signature | None:
        blob = self._blobs.pop(model_id, None)
        if blob is not None:
            return Signature.from_bytes(blob, model_id=model_id)
        rec = self.catalogue.store.get_model(model_id)
        return self.catalogue.load(rec) if rec is not None else None


def sketch_folder(store: Store) -> Path | None:
    """The index folder of a database file (`<db>.sketch`), or None for an in-memory one."""
    path = str(store.path)
    if path == ":memory:" or path.startswith("file:"):
        return None
    db = Path(path)
    return db.with_name(db.name + ".sketch")


def _ranked(screen: Screen, model_id: str) -> tuple[float, float, str]:
    return (screen.p_value, -screen.overlap, model_id)


def _match(pair: PairResult) -> Match:
    shared = sum(s.shared for s in pair.per_slot)
    return Match(
        model_id=pair.b,
        shared=shared,
        slots_compared=pair.slots_compared,
        # the tail with populations n over the compared slots, as `SignatureIndex` reports it
        p_value=significance.combined_tail(shared, ((s.n, s.k) for s in pair.per_slot)),
        overlap=pair.overlap,
        identity=pair.identity,
        verdict=pair.verdict,
        pair=pair,
    )


class SketchMatcher:
    """Stored models matched against a query through a sketch index (module docstring).

    Args:
        index: the sketches of the stored models.
        source: reads a candidate's stored positions and signature.
        params: the signature parameters of every indexed model and every query.
        live: model id -> revision of the models that count (the store's current ones).
    """

    def __init__(
        self,
        index: SketchIndex,
        source: SignatureSource,
        params: SignatureParams,
        live: dict[str, str | None],
    ):
        self.index = index
        self.source = source
        self.params = params
        self.live = live
        self._catalogue: Catalogue | None = None
        self._stamps: Path | None = None
        self._release: weakref.finalize | None = None

    @classmethod
    def from_store(
        cls, store: Store, params: SignatureParams | None = None, *, folder: Path | None = None
    ) -> SketchMatcher:
        """The matcher of a store's current signatures, its index opened and brought up to date
        (built on first use; rebuilt when made for another format or other parameters).

        Raises:
            LineageError: the index folder cannot be written.
        """
        catalogue = Catalogue(store, params or SignatureParams())
        where = folder or sketch_folder(store)
        lock = _lock(where) if where is not None else None
        if where is not None and lock is None:
            log.warning(
                "the sketch index %s is in use by another scan; this one builds its own in a "
                "temporary folder",
                where,
            )
        tmp = None
        if where is None or lock is None:
            tmp = tempfile.TemporaryDirectory(prefix="lineage-sketch-")
            where = Path(tmp.name)
        try:
            index, stamps = _open(where, catalogue.tag)
        except OSError as e:
            raise LineageError(
                f"cannot write the scan's sketch index in {where}: {e}; check that the "
                "database's folder is writable"
            ) from e
        matcher = cls(index, StoreSource(catalogue), catalogue.params, {})
        matcher._catalogue = catalogue
        matcher._stamps = where / "revisions.jsonl"
        matcher._release = weakref.finalize(
            matcher, _release, lock, tmp.cleanup if tmp is not None else None
        )
        matcher._sync(stamps)
        return matcher

    def close(self) -> None:
        """Let another scan use the index folder (and remove a temporary one)."""
        if self._release is not None:
            self._release()

    def __enter__(self) -> SketchMatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _sync(self, stamps: dict[str, str | None]) -> None:
        """Index every current signature of the store not indexed at its revision (sketched
        from the positions in its blob, not from a decoded signature)."""
        assert self._catalogue is not None
        store, tag = self._catalogue.store, self._catalogue.tag
        fresh: list[tuple[str, np.ndarray, str | None]] = []
        for rec in store.models():
            if rec.id in stamps and stamps[rec.id] == rec.revision:
                self.live[rec.id] = rec.revision
                continue
            if freshness(store.signature_stamp(rec.id), rec.revision, tag) is not Freshness.CURRENT:
                continue
            row = store.get_signature(rec.id)
            if row is None:
                continue
            pos = read_positions(row.blob)
            codes = sketch_of_slots(
                pos.keys, pos.ns, pos.slots(), self.index.rate, self.index.max_codes
            )
            fresh.append((rec.id, codes, rec.revision))
            if len(fresh) >= 256:
                self._add_many(fresh)
                fresh = []
        self._add_many(fresh)

    def _add_many(self, items: list[tuple[str, np.ndarray, str | None]]) -> None:
        if not items:
            return
        self.index.extend((m, codes) for m, codes, _ in items)
        if self._stamps is not None:
            with open(self._stamps, "a") as f:
                f.writelines(json.dumps({"id": m, "rev": r}) + "\n" for m, _, r in items)
        self.live.update((m, r) for m, _, r in items)

    def _checked(self, sig: Signature) -> bool:
        if sig.params != self.params:
            raise IncompatibleSignaturesError(
                f"the signature of {sig.model_id or 'the query'} ({sig.params.tag()}) was made "
                f"with other parameters than the index ({self.params.tag()}); re-fingerprint it"
            )
        return True

    def __len__(self) -> int:
        return len(self.live)

    def __contains__(self, model_id: object) -> bool:
        """Whether a model has a current signature among those matched against."""
        if not isinstance(model_id, str) or model_id not in self.live:
            return False
        if self._catalogue is None:
            return True
        rec = self._catalogue.store.get_model(model_id)
        return rec is not None and self._catalogue.is_current(rec)

    def add(self, model_id: str, sig: Signature, revision: str | None = None) -> None:
        """Index (or re-index) one model's signature, made at `revision`.

        Raises:
            IncompatibleSignaturesError: `sig` was made with other parameters.
        """
        self._checked(sig)
        self._add_many([(model_id, _codes(self.index, sig), revision)])

    def matches(
        self,
        sig: Signature,
        *,
        alpha: float | None = None,
        exclude: Iterable[str] = (),
        top: int | None = None,
    ) -> list[Match]:
        """Indexed models `compare` calls identical, derived or cousin of `sig`.

        Args:
            sig: the query signature.
            alpha: significance level; default `DEFAULT_ALPHA / N` for N indexed models.
            exclude: ids never reported (the query's own).
            top: only the best `top` matches are needed (None: all).

        Returns:
            Matches sorted by p-value, then by overlap (descending), then id.

        Raises:
            IncompatibleSignaturesError: `sig` was made with other parameters.
        """
        self._checked(sig)
        alpha = DEFAULT_ALPHA / max(1, len(self)) if alpha is None else alpha
        mask = QueryMask(sig)
        screens: dict[str, Screen] = {}

        def screen(c: Candidate) -> bool:
            pos = self.source.positions(c.model_id) if c.model_id in self.live else None
            if pos is None:
                return False
            s = screens[c.model_id] = mask.screen(pos, alpha)
            return s.passes

        def ahead(cands: list[Candidate]) -> None:
            self.source.read_ahead([c.model_id for c in cands if c.model_id in self.live])

        codes = _codes(self.index, sig)
        related = self.index.related(codes, screen, exclude=exclude, ahead=ahead)
        found = [c.model_id for c in related]
        eager = [m for m in found if screens[m].must_compare]
        ranked = sorted(
            (m for m in found if not screens[m].must_compare), key=lambda m: _ranked(screens[m], m)
        )
        out: list[Match] = []
        for model_id in eager:
            self._compare(sig, model_id, alpha, out)
        for model_id in ranked:
            if top and len(out) >= top:
                last = sorted(out, key=_order)[top - 1]
                s = screens[model_id]
                if s.p_value > last.p_value or (
                    s.p_value == last.p_value and s.overlap < last.overlap - TIE
                ):
                    break  # every candidate left ranks below the top
            self._compare(sig, model_id, alpha, out)
        out.sort(key=_order)
        return out[:top] if top else out

    def _compare(self, sig: Signature, model_id: str, alpha: float, out: list[Match]) -> None:
        other = self.source.signature(model_id)
        if other is None:
            return
        pair = compare(sig, other, alpha=alpha)
        if pair.verdict in MATCHING:
            out.append(_match(pair))


def _order(m: Match) -> tuple[float, float, str]:
    return (m.p_value, -m.overlap, m.model_id)


def _codes(index: SketchIndex, sig: Signature) -> np.ndarray:
    return sketch_codes(sig, index.rate, index.max_codes)


def _open(where: Path, tag: str) -> tuple[SketchIndex, dict[str, str | None]]:
    """The index in `where` with the revisions it holds, emptied first when it was made for
    another format or other parameters."""
    want = {"scan_format": SCAN_FORMAT, "index_format": FORMAT, "params": tag}
    manifest = where / "scan.json"
    try:
        have = json.loads(manifest.read_text()) if manifest.exists() else None
    except ValueError:
        have = None
    if have != want:
        if where.exists() and have is None and not manifest.exists() and any(where.iterdir()):
            raise OSError(f"{where} holds files that are not a sketch index; move them away")
        if where.exists():
            shutil.rmtree(where)
        where.mkdir(parents=True)
        manifest.write_text(json.dumps(want))
    stamps: dict[str, str | None] = {}
    log = where / "revisions.jsonl"
    if log.exists():
        for line in log.read_text().splitlines():
            try:
                doc = json.loads(line)
                stamps[doc["id"]] = doc["rev"]
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a crash: that model is indexed again
    return SketchIndex(where / "index"), stamps


def _lock(where: Path) -> IO[str] | None:
    """An exclusive lock on the index folder (`<folder>.lock` beside it, so a rebuild does not
    remove it), or None when another process holds it. Two scans appending to one index would
    interleave their writes; the second one works on its own copy instead."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return open(os.devnull, "w")  # noqa: SIM115 - held until the matcher is closed
    try:
        where.parent.mkdir(parents=True, exist_ok=True)
        handle = open(where.with_name(where.name + ".lock"), "a")  # noqa: SIM115
    except OSError as e:
        raise LineageError(
            f"cannot write the scan's sketch index beside {where}: {e}; check that the "
            "database's folder is writable"
        ) from e
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def _release(lock: IO[str] | None, cleanup: Callable[[], None] | None) -> None:
    if lock is not None:
        lock.close()  # closing the file drops the lock
    if cleanup is not None:
        cleanup()
