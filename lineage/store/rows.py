"""The store's records (signature, pair and run rows) and how they map to SQLite rows.

Also the one place that keeps secrets out of the file (`scrub_secrets`) and writes JSON columns
(`dumps`: sorted keys, compact, dates as ISO text).
"""

from __future__ import annotations

import json
import re
import sqlite3
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from typing import Any, TypeVar

from hub.records import DeclaredBase, ModelRecord

__all__ = ["PairRow", "RunRow", "SignatureRow", "scrub_secrets"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SignatureRow:
    """The stored signature of one model at one revision.

    Attributes:
        model_id: the model it belongs to.
        revision: the revision (commit sha) the weights were read at.
        arch: architecture block key: models are only compared within one block.
        params: the signature parameters (format version, k, window, seed) as one string; two
            signatures with different `params` are not comparable.
        n_slots: how many slots the signature holds.
        bytes_read: weight bytes read to compute it.
        blob: the opaque bytes of `Signature.to_bytes()` (docs/signature-format.md).
        created_at: when it was stored (ISO 8601, UTC).
    """

    model_id: str
    revision: str | None
    arch: str
    params: str
    n_slots: int
    bytes_read: int
    blob: bytes
    created_at: str | None = None


@dataclass(frozen=True, slots=True)
class PairRow:
    """The comparison of two models. The store keeps `a < b`; `put_pairs` swaps when needed.

    Float fields come back as None where NaN was stored (SQLite has no NaN).

    Attributes:
        a, b: model ids.
        revision_a, revision_b: the revisions the signatures were made at.
        overlap: mean bottom-k overlap over comparable slots.
        identity: mean identity (exact-weight) Jaccard over comparable slots.
        p_value: model-level p-value under independence.
        log10_p: log10 of it, kept because p underflows to 0 for real relatives.
        slots_compared: how many slots both signatures share.
        verdict: identical / derived / cousin / unrelated / incomparable.
        detail: anything else, stored packed (`pack_detail`: deflated JSON, per-slot columns). For a detailed comparison
            (`lineage.paircache.pair_row`) it is the rest of the `PairResult`, each value
            once: overlap_std/median/min, slots_a/b, per_slot, warnings.
    """

    a: str
    b: str
    revision_a: str | None
    revision_b: str | None
    overlap: float | None
    identity: float | None
    p_value: float | None
    log10_p: float | None
    slots_compared: int
    verdict: str
    detail: dict = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class RunRow:
    """One run of a command (crawl, fingerprint, scan...).

    Attributes:
        id: run number, increasing.
        kind: what ran (`crawl`, `fingerprint`, ...).
        started_at, finished_at: ISO 8601 UTC; `finished_at` is None while running or if the
            run died.
        params: what it was asked to do (secrets dropped).
        summary: what it did (counts, timings).
        status: `running`, then `ok` or whatever `finish_run` was given.
    """

    id: int
    kind: str
    started_at: str
    finished_at: str | None
    params: dict = field(hash=False)
    summary: dict = field(hash=False)
    status: str


_SECRET_KEY = re.compile(r"token|authorization|password|secret", re.IGNORECASE)
# A Hugging Face access token as a value, whatever key it hides under.
_SECRET_VALUE = re.compile(r"\bhf_[A-Za-z0-9]{20,}")

# Column order of INSERTs; rows are read back by name.
# fmt: off
MODEL_COLUMNS = (
    "id", "revision", "author", "downloads", "downloads_all_time", "likes", "created_at",
    "last_modified", "library", "pipeline_tag", "license", "gated", "tags", "declared_bases",
    "parameter_count", "source", "path", "status", "reason", "extra", "updated_at",
)
PAIR_COLUMNS = (
    "a", "b", "revision_a", "revision_b", "overlap", "identity", "p_value", "log10_p",
    "slots_compared", "verdict", "detail",
)
# fmt: on


def scrub_secrets(value: Any) -> Any:
    """Return `value` without anything that looks like a credential.

    Dict keys matching /token|authorization|password|secret/i are dropped, at any depth, and so
    are entries whose string value looks like a Hugging Face token (`hf_...`).
    """
    if isinstance(value, dict):
        return {
            k: scrub_secrets(v)
            for k, v in value.items()
            if not (isinstance(k, str) and _SECRET_KEY.search(k))
            and not (isinstance(v, str) and _SECRET_VALUE.search(v))
        }
    if isinstance(value, list | tuple):
        return [
            scrub_secrets(v) for v in value if not (isinstance(v, str) and _SECRET_VALUE.search(v))
        ]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def dumps(value: Any) -> str:
    """A JSON column: sorted keys, compact, dates as ISO text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_json_default)


# A pair's detail is stored packed: its per-slot list as columns (field names once, not once
# per slot) and the JSON deflated; at 1,000 models the detail made most of the database. Rows
# written before are JSON text and read as they are.
_PACKED = b"LZ1"


def pack_detail(detail: dict) -> bytes:
    """The stored form of a pair's `detail`: `_PACKED` + zlib of JSON, `per_slot` columnar."""
    if not detail:  # a background pair's: hundreds of thousands of them at 1,000 models
        return _PACKED_EMPTY
    doc = dict(detail)
    slots = doc.get("per_slot")
    if isinstance(slots, list) and slots and all(isinstance(s, dict) for s in slots):
        names = sorted(slots[0])
        if all(sorted(s) == names for s in slots):  # one set of fields: columns
            doc["per_slot"] = {"columns": names, "rows": [[s[k] for k in names] for s in slots]}
    return _PACKED + zlib.compress(dumps(doc).encode(), 6)


_PACKED_EMPTY = _PACKED + zlib.compress(dumps({}).encode(), 6)


def unpack_detail(stored: str | bytes) -> dict:
    """`detail` as written: packed (`pack_detail`) or plain JSON text (rows of older versions)."""
    if isinstance(stored, bytes) and stored.startswith(_PACKED):
        doc = json.loads(zlib.decompress(stored[len(_PACKED) :]))
        slots = doc.get("per_slot")
        if isinstance(slots, dict):
            names = slots["columns"]
            doc["per_slot"] = [dict(zip(names, row, strict=True)) for row in slots["rows"]]
        return doc
    return json.loads(stored)


def now() -> str:
    """The current time as stored: ISO 8601, UTC, microseconds, `Z`."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def model_values(rec: ModelRecord, updated_at: str) -> tuple[Any, ...]:
    """The values of `MODEL_COLUMNS` for one record (secrets dropped from `extra`)."""
    return (
        rec.id,
        rec.revision,
        rec.author,
        int(rec.downloads),
        rec.downloads_all_time,
        int(rec.likes),
        rec.created_at,
        rec.last_modified,
        rec.library,
        rec.pipeline_tag,
        rec.license,
        int(bool(rec.gated)),
        dumps(list(rec.tags)),
        dumps([{"id": b.id, "relation": b.relation} for b in rec.declared_bases]),
        rec.parameter_count,
        rec.source,
        rec.path,
        rec.status,
        rec.reason,
        dumps(scrub_secrets(dict(rec.extra or {}))),
        updated_at,
    )


def model_from_row(row: sqlite3.Row) -> ModelRecord:
    return ModelRecord(
        id=row["id"],
        revision=row["revision"],
        author=row["author"],
        downloads=row["downloads"],
        downloads_all_time=row["downloads_all_time"],
        likes=row["likes"],
        created_at=row["created_at"],
        last_modified=row["last_modified"],
        library=row["library"],
        pipeline_tag=row["pipeline_tag"],
        license=row["license"],
        gated=bool(row["gated"]),
        tags=tuple(json.loads(row["tags"])),
        declared_bases=tuple(
            DeclaredBase(id=b["id"], relation=b.get("relation"))
            for b in json.loads(row["declared_bases"])
        ),
        parameter_count=row["parameter_count"],
        source=row["source"],
        path=row["path"],
        status=row["status"],
        reason=row["reason"],
        extra=json.loads(row["extra"]),
    )


# How a column is read back where it is not stored as it is kept.
_READERS: dict[str, Callable[[Any], Any]] = {
    "blob": bytes,
    "detail": unpack_detail,
    "params": json.loads,
    "summary": json.loads,
}


def _from_row(cls: type[T], row: sqlite3.Row, *, plain: tuple[str, ...] = ()) -> T:
    """A row record from a SQLite row: each field from the column of its name, read back by
    `_READERS` unless named in `plain`."""
    fields = {}
    for name in cls.__dataclass_fields__:  # type: ignore[attr-defined]
        read = None if name in plain else _READERS.get(name)
        fields[name] = row[name] if read is None else read(row[name])
    return cls(**fields)


def signature_from_row(row: sqlite3.Row) -> SignatureRow:
    # a signature's `params` is its tag, text as stored
    return _from_row(SignatureRow, row, plain=("params",))


def pair_values(r: PairRow) -> tuple[Any, ...]:
    """The values of `PAIR_COLUMNS` for one (already normalised) row."""
    return (
        r.a,
        r.b,
        r.revision_a,
        r.revision_b,
        r.overlap,
        r.identity,
        r.p_value,
        r.log10_p,
        int(r.slots_compared),
        r.verdict,
        pack_detail(r.detail or {}),
    )


def pair_from_row(row: sqlite3.Row) -> PairRow:
    return _from_row(PairRow, row)


def run_from_row(row: sqlite3.Row) -> RunRow:
    return _from_row(RunRow, row)


def normalised(row: PairRow) -> PairRow:
    """`row` with `a < b` (revisions swapped with the ids; `detail` as given).

    Raises:
        ValueError: the row pairs a model with itself.
    """
    if row.a == row.b:
        raise ValueError(f"a pair needs two different models, got {row.a!r} twice")
    if row.a < row.b:
        return row
    return replace(row, a=row.b, b=row.a, revision_a=row.revision_b, revision_b=row.revision_a)
