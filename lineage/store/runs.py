"""The `runs` table: one row per command run (crawl, fingerprint, scan...), with its summary."""

from __future__ import annotations

from lineage.errors import StoreError
from lineage.store.connection import Connection
from lineage.store.rows import RunRow, dumps, now, run_from_row, scrub_secrets

__all__ = ["RunTable"]


class RunTable(Connection):
    """Runs: start, finish, list."""

    def start_run(self, kind: str, params: dict) -> int:
        """Record that a run of `kind` started with `params` (secrets dropped). Returns its id."""
        with self.transaction():
            cur = self._connection().execute(
                "INSERT INTO runs (kind, started_at, params, status) VALUES (?, ?, ?, 'running')",
                (kind, now(), dumps(scrub_secrets(dict(params)))),
            )
            return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, summary: dict, status: str = "ok") -> None:
        """Record the end of run `run_id` with its `summary`.

        Raises:
            StoreError: there is no such run.
        """
        with self.transaction():
            cur = self._connection().execute(
                "UPDATE runs SET finished_at = ?, summary = ?, status = ? WHERE id = ?",
                (now(), dumps(summary), status, run_id),
            )
            if cur.rowcount == 0:
                raise StoreError(f"there is no run {run_id} in {self.path}")

    def runs(self) -> list[RunRow]:
        """All runs, oldest first."""
        return [run_from_row(r) for r in self._read("SELECT * FROM runs ORDER BY id")]
