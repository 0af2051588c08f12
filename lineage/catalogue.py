"""The signature catalogue: which stored signatures are current, loading and storing them.

Every caller that asks "is this model's stored signature good for these parameters?" (add,
fingerprint, crawl, scan, match, build) asks a `Catalogue`, and the catalogue asks one rule,
`lineage.store.freshness`: current means made at the model's revision AND with
`SignatureParams.tag()`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from fingerprint.signature import Signature, SignatureParams
from hub.records import ModelRecord
from lineage.errors import LineageError
from lineage.store import Freshness, SignatureRow, Store, freshness

__all__ = ["Catalogue", "load_inputs"]


@dataclass(frozen=True, slots=True)
class Catalogue:
    """The store's signatures as seen for one parameter set.

    Attributes:
        store: the database.
        params: the signature parameters asked for (default `SignatureParams()`).
    """

    store: Store
    params: SignatureParams = field(default_factory=SignatureParams)

    @property
    def tag(self) -> str:
        """The parameters as stored beside each blob."""
        return self.params.tag()

    def freshness(self, record: ModelRecord) -> Freshness:
        """How the stored signature of `record` stands (see `lineage.store.freshness`)."""
        return freshness(self.store.signature_stamp(record.id), record.revision, self.tag)

    def is_current(self, record: ModelRecord) -> bool:
        """Whether a current signature of `record` is stored."""
        return self.freshness(record) is Freshness.CURRENT

    def load(self, record: ModelRecord) -> Signature | None:
        """The current signature of `record`, or None when it is missing or stale."""
        row = self.store.get_signature(record.id)
        if freshness(row, record.revision, self.tag) is not Freshness.CURRENT:
            return None
        assert row is not None
        return Signature.from_bytes(row.blob, model_id=record.id)

    def put(self, record: ModelRecord, sig: Signature) -> None:
        """Store `sig` as the signature of `record` at its revision.

        Raises:
            UnknownModelError: the model is not in the database.
            StoreError: the model is no longer at `record.revision`.
        """
        self.store.put_signature(
            record.id,
            revision=record.revision,
            arch=sig.arch,
            params=sig.params.tag(),
            n_slots=len(sig.slots),
            bytes_read=sig.bytes_read,
            blob=sig.to_bytes(),
        )

    def entries(
        self, records: Mapping[str, ModelRecord]
    ) -> Iterator[tuple[SignatureRow, Freshness]]:
        """Every stored signature of a model in `records`, with how it stands, by model id."""
        for row in self.store.signatures():
            rec = records.get(row.model_id)
            if rec is not None:
                yield row, freshness(row, rec.revision, self.tag)

    def current(self, records: Mapping[str, ModelRecord] | None = None) -> dict[str, Signature]:
        """Every current signature (of `records`, default every stored model), by model id."""
        if records is None:
            records = {r.id: r for r in self.store.models()}
        return {
            row.model_id: Signature.from_bytes(row.blob, model_id=row.model_id)
            for row, state in self.entries(records)
            if state is Freshness.CURRENT
        }


def load_inputs(
    store: Store, params: SignatureParams | None = None
) -> tuple[dict[str, ModelRecord], dict[str, Signature]]:
    """Models that have a signature at their current revision, and those signatures.

    Raises:
        LineageError: some signatures at the current revision were made with other parameters
            (or an older format): the graph would compare what is not comparable.
    """
    records = {r.id: r for r in store.models()}
    sigs: dict[str, Signature] = {}
    stale: list[str] = []
    for row, state in Catalogue(store, params or SignatureParams()).entries(records):
        if state is Freshness.OTHER_PARAMS:
            stale.append(row.model_id)
        elif state is Freshness.CURRENT:
            sigs[row.model_id] = Signature.from_bytes(row.blob, model_id=row.model_id)
    if stale:
        raise LineageError(
            f"{len(stale)} signatures (e.g. {stale[0]}) were made with other parameters or an "
            "older version; run `lineage fingerprint` to bring them up to date"
        )
    return records, sigs
