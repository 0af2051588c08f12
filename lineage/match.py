"""Matching one model against every model the store holds, through an inverted index.

A `SignatureIndex` keeps, per slot key, the bottom-k postings of every indexed model as one array
sorted by position (with the model of each posting alongside). Matching a new signature costs
its own k x T postings: for each of its slots, `searchsorted` finds the postings at its k
positions and a `bincount` adds them up per model. Models that share no slot (other
architectures) are never touched, and no pair of signatures is intersected one by one.

Which counts are significant is exact: for each model, the total shared count is tested
against the convolution of the hypergeometric nulls of the slots the two have in common
(`fingerprint.significance`), at `alpha` (default `DEFAULT_ALPHA / N`, Bonferroni over the N
models tested). Only models at or above the critical total get a p-value and a full
`fingerprint.comparison.compare` (overlap, identity, verdict, per-slot detail).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from fingerprint import significance
from fingerprint.comparison import DEFAULT_ALPHA, PairResult, compare
from fingerprint.errors import IncompatibleSignaturesError
from fingerprint.signature import Signature, SignatureParams

__all__ = ["Match", "SignatureIndex"]


@dataclass(frozen=True, slots=True)
class Match:
    """A stored model that significantly shares bottom-k positions with the query.

    Attributes:
        model_id: the stored model.
        shared: positions shared over the common slots (counted by the index).
        slots_compared: slots the two have in common.
        p_value: exact probability of at least `shared` under independence.
        overlap: mean bottom-k overlap over the common slots.
        identity: mean fraction of exactly equal weights.
        verdict: from `compare`: `identical`, `derived` or `cousin` (shares only tensors
            outside the blocks). A significant total that `compare` calls `unrelated` (it rests
            on a few structured slots) is no match.
        pair: the full comparison (per-slot detail, warnings).
    """

    model_id: str
    shared: int
    slots_compared: int
    p_value: float
    overlap: float
    identity: float
    verdict: str
    pair: PairResult = field(compare=False, repr=False)

    @property
    def log10_p(self) -> float:
        return significance.log10(self.p_value)

    def to_dict(self) -> dict:
        return {
            "model": self.model_id,
            "overlap": self.overlap,
            "identity": self.identity,
            "p_value": self.p_value,
            "log10_p": self.log10_p,
            "shared": self.shared,
            "slots_compared": self.slots_compared,
            "verdict": self.verdict,
        }


class _Postings:
    """The postings of one slot key: sorted positions, the model of each, who has the slot."""

    def __init__(self, n: int):
        self.n = n
        self.positions = np.zeros(0, np.int64)
        self.models = np.zeros(0, np.int32)
        self.members = np.zeros(0, np.int32)
        self.ks = np.zeros(0, np.int32)
        self._pending: list[tuple[int, np.ndarray]] = []

    def add(self, model: int, positions: np.ndarray) -> None:
        self._pending.append((model, positions))

    def compact(self) -> None:
        if not self._pending:
            return
        models = [np.full(p.size, m, np.int32) for m, p in self._pending]
        pos = np.concatenate([self.positions, *(p.astype(np.int64) for _, p in self._pending)])
        mod = np.concatenate([self.models, *models])
        order = np.argsort(pos, kind="stable")
        self.positions, self.models = pos[order], mod[order]
        self.members = np.concatenate(
            [self.members, np.array([m for m, _ in self._pending], np.int32)]
        )
        self.ks = np.concatenate([self.ks, np.array([p.size for _, p in self._pending], np.int32)])
        self._pending.clear()


class SignatureIndex:
    """An inverted index (slot key, position) -> models over signatures of one parameter set.

    Args:
        params: the signature parameters every indexed signature (and every query) has.
        loader: gives a stored model's full signature for the final `compare`; without one the
            index keeps the signatures it is given.
    """

    def __init__(
        self,
        params: SignatureParams | None = None,
        *,
        loader: Callable[[str], Signature] | None = None,
    ):
        self.params = params or SignatureParams()
        self._loader = loader
        self._sigs: dict[str, Signature] = {}
        self._ids: list[str] = []
        self._row: dict[str, int] = {}
        self._alive: list[bool] = []
        self._postings: dict[str, _Postings] = {}

    @classmethod
    def from_signatures(
        cls, signatures: Iterable[Signature], params: SignatureParams | None = None
    ) -> SignatureIndex:
        """An index over signatures in hand (their `model_id`s name them)."""
        sigs = list(signatures)
        index = cls(params or (sigs[0].params if sigs else None))
        for sig in sigs:
            index.add(sig.model_id, sig)
        return index

    @classmethod
    def from_store(cls, store, params: SignatureParams | None = None) -> SignatureIndex:
        """An index over every current signature in a `lineage.store.Store` made with `params`
        (default `SignatureParams()`; `lineage.catalogue` decides what is current); others are
        left out. Signatures are decoded once to build the postings, then reloaded from the
        store only for significant candidates."""
        from lineage.catalogue import Catalogue

        catalogue = Catalogue(store, params or SignatureParams())

        def load(model_id: str) -> Signature:
            sig = catalogue.load(store.require_model(model_id))
            if sig is None:
                raise KeyError(f"{model_id} has no current signature")
            return sig

        index = cls(catalogue.params, loader=load)
        for model_id, sig in catalogue.current().items():
            index.add(model_id, sig)
        return index

    def __len__(self) -> int:
        return sum(self._alive)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._row

    @property
    def ids(self) -> list[str]:
        """Indexed model ids, in the order they were added."""
        return [i for i, alive in zip(self._ids, self._alive, strict=True) if alive]

    def add(self, model_id: str, sig: Signature) -> None:
        """Index (or re-index, replacing the old postings) one model's signature.

        Raises:
            IncompatibleSignaturesError: `sig` was made with other parameters.
        """
        self._check(sig)
        if model_id in self._row:
            self._alive[self._row[model_id]] = False
        row = len(self._ids)
        self._ids.append(model_id)
        self._alive.append(True)
        self._row[model_id] = row
        if self._loader is None:
            self._sigs[model_id] = sig
        for slot in sig.slots:
            if slot.positions.size >= slot.n:
                continue  # a window no larger than k says nothing (as in `compare`)
            postings = self._postings.get(slot.key)
            if postings is None:
                postings = self._postings[slot.key] = _Postings(slot.n)
            postings.add(row, slot.positions)

    def _check(self, sig: Signature) -> None:
        if sig.params != self.params:
            raise IncompatibleSignaturesError(
                f"the signature of {sig.model_id or 'the query'} ({sig.params.tag()}) was made "
                f"with other parameters than the index ({self.params.tag()}); re-fingerprint it"
            )

    def _signature(self, model_id: str) -> Signature:
        if self._loader is not None:
            return self._loader(model_id)
        return self._sigs[model_id]

    def counts(self, sig: Signature) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """Shared positions per indexed row, and the k of each common slot per row.

        Returns:
            (shared[M], ks[T, M], ns[T]): `ks[t, m]` is min(k_query, k_m) when row m has the
            query's t-th usable slot, else 0; `ns[t]` is that slot's window size.
        """
        self._check(sig)
        rows = len(self._ids)
        shared = np.zeros(rows, np.int64)
        ks: list[np.ndarray] = []
        ns: list[int] = []
        for slot in sig.slots:
            postings = self._postings.get(slot.key)
            if postings is None or slot.positions.size >= slot.n:
                continue
            postings.compact()
            q = slot.positions.astype(np.int64)
            lo = np.searchsorted(postings.positions, q, side="left")
            hi = np.searchsorted(postings.positions, q, side="right")
            hits = hi - lo
            total = int(hits.sum())
            if total:
                first = np.repeat(lo, hits)
                offset = np.arange(total) - np.repeat(np.cumsum(hits) - hits, hits)
                shared += np.bincount(postings.models[first + offset], minlength=rows)
            k_row = np.zeros(rows, np.int32)
            k_row[postings.members] = np.minimum(postings.ks, q.size)
            ks.append(k_row)
            ns.append(postings.n)
        dead = ~np.array(self._alive, bool) if rows else np.zeros(0, bool)
        shared[dead] = 0
        k_matrix = np.array(ks, np.int32).reshape(len(ks), rows)
        k_matrix[:, dead] = 0
        return shared, k_matrix, ns

    def matches(
        self,
        sig: Signature,
        *,
        alpha: float | None = None,
        exclude: Iterable[str] = (),
    ) -> list[Match]:
        """Indexed models that significantly share bottom-k positions with `sig`.

        Args:
            sig: the query signature.
            alpha: family-wise significance level; default `DEFAULT_ALPHA / N` for N indexed
                models (Bonferroni), so a scan of a large store does not drown in chance.
            exclude: ids never reported (the query's own id, when it is indexed).

        Returns:
            Matches sorted by p-value, then by overlap (descending).
        """
        n_models = max(1, len(self))
        alpha = DEFAULT_ALPHA / n_models if alpha is None else alpha
        shared, ks, ns = self.counts(sig)
        if not ns:
            return []
        for model_id in exclude:
            excluded = self._row.get(model_id)
            if excluded is not None:
                shared[excluded] = 0
                ks[:, excluded] = 0
        has_slots = ks.any(axis=0)
        if not has_slots.any():
            return []
        patterns, group = np.unique(ks.T, axis=0, return_inverse=True)
        group = np.asarray(group).reshape(-1)
        out: list[Match] = []
        for g, pattern in enumerate(patterns):
            common = [(ns[t], int(k)) for t, k in enumerate(pattern) if k > 0]
            if not common:
                continue
            critical = significance.critical_total(common, alpha)
            rows = np.nonzero((group == g) & has_slots & (shared >= critical))[0]
            for row in rows:
                model_id = self._ids[int(row)]
                p = significance.combined_tail(int(shared[row]), common)
                pair = compare(sig, self._signature(model_id), alpha=alpha)
                if pair.verdict == "unrelated":
                    continue  # the total rests on a few structured slots: no match
                out.append(
                    Match(
                        model_id=model_id,
                        shared=int(shared[row]),
                        slots_compared=len(common),
                        p_value=p,
                        overlap=pair.overlap,
                        identity=pair.identity,
                        verdict=pair.verdict,
                        pair=pair,
                    )
                )
        out.sort(key=lambda m: (m.p_value, -m.overlap, m.model_id))
        return out
