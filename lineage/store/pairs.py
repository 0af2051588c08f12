"""The `pairs` table: the comparison of two models, keyed by both models' revisions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator

from lineage.errors import StoreError, UnknownModelError
from lineage.store.connection import Connection
from lineage.store.rows import PAIR_COLUMNS, PairRow, normalised, pair_from_row, pair_values

__all__ = ["PairTable"]


class PairTable(Connection):
    """Pair results: write many at once, read one or all, delete a model's."""

    def put_pairs(self, rows: Iterable[PairRow]) -> int:
        """Insert or replace pair results, all in one transaction.

        A row given as (b, a) with b > a is stored as (a, b), its revisions swapped with it;
        `detail` is stored as given.

        Returns:
            How many rows were written.

        Raises:
            ValueError: a row pairs a model with itself.
            UnknownModelError: a row names a model that is not in the database.
        """
        values = [pair_values(r) for r in map(normalised, rows)]
        if not values:
            return 0
        updates = ", ".join(f"{c} = excluded.{c}" for c in PAIR_COLUMNS[2:])
        with self.transaction():
            conn = self._connection()
            try:
                conn.executemany(
                    f"INSERT INTO pairs ({', '.join(PAIR_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(PAIR_COLUMNS))}) "
                    f"ON CONFLICT (a, b) DO UPDATE SET {updates}",
                    values,
                )
            except sqlite3.IntegrityError as e:
                known = {r[0] for r in conn.execute("SELECT id FROM models")}
                missing = sorted(({v[0] for v in values} | {v[1] for v in values}) - known)
                if missing:
                    raise UnknownModelError(missing[0]) from e
                raise
        return len(values)

    def get_pair(self, a: str, b: str) -> PairRow | None:
        """The stored comparison of `a` and `b` (in either order), or None."""
        lo, hi = (a, b) if a < b else (b, a)
        rows = self._read("SELECT * FROM pairs WHERE a = ? AND b = ?", (lo, hi))
        return pair_from_row(rows[0]) if rows else None

    def pairs(self, *, model: str | None = None) -> list[PairRow]:
        """All pair results sorted by (a, b), or only those involving `model`."""
        if model is None:
            rows = self._read("SELECT * FROM pairs ORDER BY a, b")
        else:
            rows = self._read(
                "SELECT * FROM pairs WHERE a = ? OR b = ? ORDER BY a, b", (model, model)
            )
        return [pair_from_row(r) for r in rows]

    def iter_pairs(self, *, batch: int = 2048) -> Iterator[PairRow]:
        """All pair results sorted by (a, b), read `batch` rows at a time.

        What `pairs()` returns, without holding every row at once: at a few thousand models the
        detailed pairs' per-slot records are gigabytes unpacked, and the graph keeps only the
        candidates' results. Write nothing to the store until the iteration is done.
        """
        with self._lock:
            try:
                cursor = self._connection().execute("SELECT * FROM pairs ORDER BY a, b")
            except sqlite3.Error as e:
                raise StoreError(self._busy_message(e)) from e
        while True:
            with self._lock:
                try:
                    rows = cursor.fetchmany(batch)
                except sqlite3.Error as e:
                    raise StoreError(self._busy_message(e)) from e
            if not rows:
                return
            yield from map(pair_from_row, rows)

    def delete_pairs_for(self, model_id: str) -> int:
        """Delete every pair result involving `model_id`. Returns how many were deleted."""
        with self.transaction():
            return self._delete_pairs(self._connection(), model_id)
