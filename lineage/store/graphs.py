"""The `graphs` table: the last lineage graph built, under the state of the store it was
built from, so queries that change nothing read it instead of rebuilding."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from lineage.store.connection import Connection

__all__ = ["GraphTable"]


class GraphTable(Connection):
    """One built graph (a JSON document) keyed by the state it was built from."""

    def state_digest(self) -> str:
        """A digest of everything a graph is built from: every model row, and each stored
        signature's stamp (model, revision, parameters, when it was written, its size). Blobs
        are not read: a new signature is a new row, so its stamp changes."""
        h = hashlib.sha256()
        for table, sql in (
            ("models", "SELECT * FROM models ORDER BY id"),
            (
                "signatures",
                "SELECT model_id, revision, params, created_at, length(blob) "
                "FROM signatures ORDER BY model_id",
            ),
        ):
            h.update(table.encode())
            for row in self._read(sql):
                h.update(repr(tuple(row)).encode())
                h.update(b"\n")
        return h.hexdigest()

    def get_graph(self, key: str) -> str | None:
        """The graph stored under `key`, or None."""
        rows = self._read("SELECT doc FROM graphs WHERE key = ?", (key,))
        return rows[0]["doc"] if rows else None

    def put_graph(self, key: str, doc: str) -> None:
        """Store `doc` under `key`, replacing any other graph (only the latest is kept)."""
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self.transaction():
            conn = self._connection()
            conn.execute("DELETE FROM graphs")
            conn.execute(
                "INSERT INTO graphs (key, built_at, doc) VALUES (?, ?, ?)", (key, now, doc)
            )
