"""The `signatures` table, and the one rule that says whether a stored signature is current.

A stored signature is current for a model when it was made at the model's revision AND with
the parameters asked for (`SignatureParams.tag()`). `freshness` is that rule; the signature
catalogue (`lineage.catalogue`) and `Store.has_current_signature` both ask it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from lineage.errors import StoreError, UnknownModelError
from lineage.store.connection import Connection
from lineage.store.rows import SignatureRow, now, signature_from_row

__all__ = ["Freshness", "SignatureStamp", "SignatureTable", "freshness"]

# ids in one `current_blobs` read (SQLite allows 32,766 parameters; a few hundred keep the
# statement short)
_IDS_A_READ = 256


class Freshness(Enum):
    """How a stored signature stands against a model's revision and the parameters asked for."""

    CURRENT = "current"
    MISSING = "missing"
    OTHER_REVISION = "other_revision"  # made from weights the model no longer has
    OTHER_PARAMS = "other_params"  # made with other parameters or an older format


@dataclass(frozen=True, slots=True)
class SignatureStamp:
    """What freshness reads of a stored signature: its revision and parameter tag (no blob)."""

    revision: str | None
    params: str


def freshness(
    row: SignatureRow | SignatureStamp | None, revision: str | None, tag: str
) -> Freshness:
    """Whether `row` is the current signature of a model at `revision` for parameters `tag`.

    The revision is checked first: a signature of weights that are gone is stale whatever its
    parameters.
    """
    if row is None:
        return Freshness.MISSING
    if row.revision != revision:
        return Freshness.OTHER_REVISION
    if row.params != tag:
        return Freshness.OTHER_PARAMS
    return Freshness.CURRENT


class SignatureTable(Connection):
    """Signatures: one per model, replaced when recomputed."""

    def put_signature(
        self,
        model_id: str,
        *,
        revision: str | None,
        arch: str,
        params: str,
        n_slots: int,
        bytes_read: int,
        blob: bytes,
    ) -> None:
        """Store (or replace) the signature of `model_id`.

        If it replaces a different signature, the model's pair results are deleted: they were
        computed from the old one.

        Raises:
            UnknownModelError: the model is not in the database.
            StoreError: `revision` is not the model's current revision (the model changed while
                it was being fingerprinted; fingerprint it again).
        """
        with self.transaction():
            conn = self._connection()
            model = conn.execute("SELECT revision FROM models WHERE id = ?", (model_id,)).fetchone()
            if model is None:
                raise UnknownModelError(model_id)
            if model["revision"] != revision:
                raise StoreError(
                    f"signature of {model_id!r} is for revision {revision!r} but the model is now "
                    f"at {model['revision']!r}; run `lineage fingerprint {model_id}` again"
                )
            old = conn.execute(
                "SELECT revision, params, blob FROM signatures WHERE model_id = ?", (model_id,)
            ).fetchone()
            conn.execute(
                "INSERT INTO signatures"
                " (model_id, revision, arch, params, n_slots, bytes_read, blob, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (model_id) DO UPDATE SET revision = excluded.revision,"
                " arch = excluded.arch, params = excluded.params, n_slots = excluded.n_slots,"
                " bytes_read = excluded.bytes_read, blob = excluded.blob,"
                " created_at = excluded.created_at",
                (model_id, revision, arch, params, n_slots, bytes_read, bytes(blob), now()),
            )
            if old is not None and (old["params"], bytes(old["blob"])) != (params, bytes(blob)):
                self._delete_pairs(conn, model_id)

    def get_signature(self, model_id: str) -> SignatureRow | None:
        """The stored signature of `model_id`, or None."""
        rows = self._read("SELECT * FROM signatures WHERE model_id = ?", (model_id,))
        return signature_from_row(rows[0]) if rows else None

    def signature_stamp(self, model_id: str) -> SignatureStamp | None:
        """Revision and parameter tag of the stored signature of `model_id` (the blob unread)."""
        rows = self._read("SELECT revision, params FROM signatures WHERE model_id = ?", (model_id,))
        return SignatureStamp(rows[0]["revision"], rows[0]["params"]) if rows else None

    def has_current_signature(
        self, model_id: str, revision: str | None, *, params: str | None = None
    ) -> bool:
        """Whether a signature made at `revision` (and with `params`, if given) is stored.

        Without `params` any parameters do; `lineage.catalogue.Catalogue.is_current` always
        checks them.
        """
        state = freshness(self.signature_stamp(model_id), revision, params or "")
        return state is Freshness.CURRENT or (params is None and state is Freshness.OTHER_PARAMS)

    def current_blobs(self, model_ids: Sequence[str], tag: str) -> dict[str, bytes]:
        """The blobs of those of `model_ids` whose stored signature is current (`freshness`:
        made at the model's revision with parameters `tag`), in one read a few hundred ids
        (a scan screens dozens of candidates: a read each cost it 0.2 ms a candidate)."""
        out: dict[str, bytes] = {}
        ids = list(dict.fromkeys(model_ids))
        for at in range(0, len(ids), _IDS_A_READ):
            part = ids[at : at + _IDS_A_READ]
            rows = self._read(
                "SELECT s.model_id, s.blob FROM signatures s JOIN models m ON m.id = s.model_id "
                f"WHERE s.model_id IN ({','.join('?' * len(part))}) "
                "AND s.revision IS m.revision AND s.params = ?",
                (*part, tag),
            )
            out.update((r["model_id"], bytes(r["blob"])) for r in rows)
        return out

    def signatures(self, *, arch: str | None = None) -> list[SignatureRow]:
        """All signatures sorted by model id, or only those of one architecture block."""
        if arch is None:
            rows = self._read("SELECT * FROM signatures ORDER BY model_id")
        else:
            rows = self._read("SELECT * FROM signatures WHERE arch = ? ORDER BY model_id", (arch,))
        return [signature_from_row(r) for r in rows]

    def archs(self) -> dict[str, int]:
        """Number of signatures per architecture block, sorted by block key."""
        rows = self._read("SELECT arch, COUNT(*) AS n FROM signatures GROUP BY arch ORDER BY arch")
        return {r["arch"]: r["n"] for r in rows}
