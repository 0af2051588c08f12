"""Parquet shards of fingerprinting outcomes: the schema, reading them back, importing them.

A distributed engine writes one row per model it tried (docs/engine.md has the schema and its
versions); the store is filled from shards by `import_shards`, through the same one-writer path
as a local crawl (`lineage.engine.store_outcome`, one transaction per model). pyarrow is
imported lazily: the module itself costs nothing without the `ray` extra.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from fingerprint.signature import Signature, SignatureParams
from hub.records import DeclaredBase, ModelRecord
from lineage.catalogue import Catalogue
from lineage.engine import Outcome, store_outcome
from lineage.errors import LineageError
from lineage.store import Store
from lineage.store.rows import dumps

__all__ = [
    "COLUMNS",
    "SCHEMA_VERSION",
    "ImportSummary",
    "ShardRow",
    "arrow_schema",
    "import_shards",
    "read_shards",
    "record_from_json",
    "record_to_json",
]

# Bumped when a column changes meaning or goes away; adding a column keeps the version.
SCHEMA_VERSION = 1
# name -> pyarrow type name, in file order (docs/engine.md says what each holds).
COLUMNS: dict[str, str] = {
    "schema_version": "int16",
    "model_id": "string",
    "revision": "string",
    "status": "string",
    "reason": "string",
    "record": "string",
    "signature": "binary",
    "params": "string",
    "size": "int64",
    "bytes_fetched": "int64",
    "bytes_cached": "int64",
    "bytes_local": "int64",
}
_RECORD_FIELDS = {f.name for f in fields(ModelRecord)}


def arrow_schema() -> Any:
    """The shard schema as a `pyarrow.Schema` (`COLUMNS`, version in the metadata)."""
    import pyarrow as pa

    return pa.schema(
        [(name, getattr(pa, kind)()) for name, kind in COLUMNS.items()],
        metadata={b"lineage.shard_schema": str(SCHEMA_VERSION).encode()},
    )


def record_to_json(record: ModelRecord) -> str:
    """A record as one JSON object (every `ModelRecord` field; `extra` as stored)."""
    return dumps(asdict(record))


def record_from_json(text: str) -> ModelRecord:
    """`record_to_json`'s text back as a record; fields this version does not know are dropped."""
    doc = {k: v for k, v in json.loads(text).items() if k in _RECORD_FIELDS}
    doc["tags"] = tuple(doc.get("tags") or ())
    doc["declared_bases"] = tuple(DeclaredBase(**b) for b in doc.get("declared_bases") or ())
    return ModelRecord(**doc)


@dataclass(frozen=True, slots=True)
class ShardRow:
    """One model's outcome as a shard holds it (the columns of `COLUMNS`).

    Attributes:
        model_id: the repo id.
        revision: the commit the signature (or failure) belongs to.
        status: `ok`, or the failure's status code.
        reason: one sentence when status is not `ok`.
        record: the record as JSON (`record_to_json`): read from the files on success, else
            the listed one.
        signature: `Signature.to_bytes()`, None on failure.
        params: `SignatureParams.tag()` of the signature, None on failure.
        size: bytes of its weight files (0 when not opened).
        bytes_fetched, bytes_cached, bytes_local: what reading it cost, by where bytes came from.
    """

    model_id: str
    revision: str | None
    status: str
    reason: str
    record: str
    signature: bytes | None
    params: str | None
    size: int = 0
    bytes_fetched: int = 0
    bytes_cached: int = 0
    bytes_local: int = 0

    @classmethod
    def of(cls, outcome: Outcome[Any], listed: ModelRecord, stats: Any) -> ShardRow:
        """The row of one engine outcome; `listed` is the record the job started from."""
        sig = outcome.signature
        return cls(
            model_id=listed.id,
            revision=listed.revision,
            status=outcome.status,
            reason=outcome.reason,
            record=record_to_json(outcome.record or listed),
            signature=sig.to_bytes() if sig is not None else None,
            params=sig.params.tag() if sig is not None else None,
            size=outcome.size,
            bytes_fetched=stats.fetched,
            bytes_cached=stats.cached,
            bytes_local=stats.local,
        )

    def to_dict(self) -> dict[str, Any]:
        """The row as shard columns."""
        return {"schema_version": SCHEMA_VERSION, **asdict(self)}

    def outcome(self, job: Any) -> Outcome[Any]:
        """This row as the engine's outcome for `job` (what `store_outcome` writes)."""
        sig = None
        if self.signature is not None:
            sig = Signature.from_bytes(self.signature, model_id=self.model_id)
        record = record_from_json(self.record)
        return Outcome(
            job,
            signature=sig,
            record=record if sig is not None else None,
            size=self.size,
            status=self.status,
            reason=self.reason,
        )


def read_shards(folder: str | os.PathLike[str]) -> Iterator[ShardRow]:
    """Every row of the Parquet shards under `folder`, a record batch at a time.

    Raises:
        LineageError: no shards there, or shards of a newer schema version.
    """
    import pyarrow.dataset as pads

    files = sorted(str(p) for p in Path(folder).rglob("*.parquet"))
    if not files:
        raise LineageError(f"no Parquet shards under {folder}; give the folder a Ray crawl wrote")
    names = [n for n in COLUMNS if n != "schema_version"]
    for batch in pads.dataset(files, format="parquet").to_batches():
        cols = batch.to_pydict()
        versions = set(cols.get("schema_version", [None]))
        if versions - {SCHEMA_VERSION}:
            raise LineageError(
                f"shards under {folder} have schema version {sorted(versions, key=str)}; this "
                f"version reads {SCHEMA_VERSION}: upgrade model-lineage"
            )
        for i in range(batch.num_rows):
            yield ShardRow(**{n: cols[n][i] for n in names})


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """What `import_shards` did: rows read, signatures stored, failures stored, rows skipped."""

    rows: int
    fingerprinted: int
    failed: int
    skipped: int


def import_shards(
    store: Store, folder: str | os.PathLike[str], params: SignatureParams | None = None
) -> ImportSummary:
    """Store every model of the shards under `folder`, one transaction per model.

    A model whose current signature is already stored (same revision and parameters) is skipped,
    so importing twice, or after the crawl that wrote the shards stored them, changes nothing.

    Raises:
        LineageError: no shards, a newer schema, or signatures made with other parameters.
    """
    catalogue = Catalogue(store, params or SignatureParams())
    rows = fingerprinted = failed = skipped = 0
    for row in read_shards(folder):
        rows += 1
        if row.params is not None and row.params != catalogue.tag:
            raise LineageError(
                f"{row.model_id}: its shard signature was made with other parameters "
                f"({row.params}, not {catalogue.tag}); import with the parameters it was made with"
            )
        record = record_from_json(row.record)
        if row.signature is not None and catalogue.is_current(record):
            skipped += 1
            continue
        store_outcome(catalogue, record, row.outcome(None), upsert=True)
        fingerprinted += row.signature is not None
        failed += row.signature is None
    return ImportSummary(rows, fingerprinted, failed, skipped)
