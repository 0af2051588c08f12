"""The `models` table: one record per model, as its source last described it."""

from __future__ import annotations

from hub.records import ModelRecord
from lineage.errors import UnknownModelError
from lineage.store.connection import Connection
from lineage.store.rows import MODEL_COLUMNS, model_from_row, model_values, now

__all__ = ["ModelTable"]


class ModelTable(Connection):
    """Models: insert or refresh, read, mark a status, delete."""

    def upsert_model(self, rec: ModelRecord) -> str:
        """Insert or update a model from what its source says.

        Every field of `rec` is written (downloads, likes, status... are refreshed even when the
        revision is the same). When the revision differs from the stored one, the model's
        signature and pair results are deleted: they describe weights that are gone.

        Returns:
            "new", "changed" (another revision) or "unchanged" (same revision).
        """
        values = model_values(rec, now())
        with self.transaction():
            conn = self._connection()
            old = conn.execute("SELECT revision FROM models WHERE id = ?", (rec.id,)).fetchone()
            if old is None:
                conn.execute(
                    f"INSERT INTO models ({', '.join(MODEL_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(MODEL_COLUMNS))})",
                    values,
                )
                return "new"
            conn.execute(
                f"UPDATE models SET {', '.join(f'{c} = ?' for c in MODEL_COLUMNS[1:])} "
                "WHERE id = ?",
                (*values[1:], rec.id),
            )
            if old["revision"] == rec.revision:
                return "unchanged"
            conn.execute("DELETE FROM signatures WHERE model_id = ?", (rec.id,))
            self._delete_pairs(conn, rec.id)
            return "changed"

    def get_model(self, model_id: str) -> ModelRecord | None:
        """The stored record of `model_id`, or None."""
        rows = self._read("SELECT * FROM models WHERE id = ?", (model_id,))
        return model_from_row(rows[0]) if rows else None

    def require_model(self, model_id: str) -> ModelRecord:
        """The stored record of `model_id`.

        Raises:
            UnknownModelError: it is not in the database.
        """
        rec = self.get_model(model_id)
        if rec is None:
            raise UnknownModelError(model_id)
        return rec

    def models(self, *, status: str | None = None) -> list[ModelRecord]:
        """All models sorted by id, or only those with this `status`."""
        if status is None:
            rows = self._read("SELECT * FROM models ORDER BY id")
        else:
            rows = self._read("SELECT * FROM models WHERE status = ? ORDER BY id", (status,))
        return [model_from_row(r) for r in rows]

    def set_status(self, model_id: str, status: str, reason: str = "") -> None:
        """Record that a model is `ok` or why it is not (`gated`, `malformed`, ...).

        Raises:
            UnknownModelError: it is not in the database.
        """
        with self.transaction():
            cur = self._connection().execute(
                "UPDATE models SET status = ?, reason = ?, updated_at = ? WHERE id = ?",
                (status, reason, now(), model_id),
            )
            if cur.rowcount == 0:
                raise UnknownModelError(model_id)

    def delete_model(self, model_id: str) -> bool:
        """Delete a model with its signature and pair results. Returns False if it was absent."""
        with self.transaction():
            cur = self._connection().execute("DELETE FROM models WHERE id = ?", (model_id,))
            return cur.rowcount > 0
