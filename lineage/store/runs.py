"""The `runs` table: one row per command run (crawl, fingerprint, scan...), with its summary.

A run is `running` until `finish_run`. A process killed on the way (kill -9, a power cut) never
finishes its row, so while it runs the row's summary names its owner (host and process id), and
every `start_run` first marks `killed` the rows still `running` whose owner on this host is gone.
A row owned by another host, or by a process that still exists, is left alone: a live run is
never marked killed.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3

from lineage.errors import StoreError
from lineage.store.connection import Connection
from lineage.store.rows import RunRow, dumps, now, run_from_row, scrub_secrets

__all__ = ["KILLED", "RunTable"]

KILLED = "killed"


def _owner() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _dead_owner(summary: str) -> bool:
    try:
        owner = json.loads(summary).get("owner")
    except (ValueError, AttributeError):
        return False
    if not isinstance(owner, dict) or owner.get("host") != socket.gethostname():
        return False
    pid = owner.get("pid")
    return isinstance(pid, int) and pid != os.getpid() and not _alive(pid)


class RunTable(Connection):
    """Runs: start, finish, list."""

    def start_run(self, kind: str, params: dict) -> int:
        """Record that a run of `kind` started with `params` (secrets dropped). Returns its id.

        Runs left `running` by a process of this host that no longer exists are marked
        `killed` first.
        """
        with self.transaction():
            conn = self._connection()
            self._mark_killed(conn)
            cur = conn.execute(
                "INSERT INTO runs (kind, started_at, params, summary, status) "
                "VALUES (?, ?, ?, ?, 'running')",
                (kind, now(), dumps(scrub_secrets(dict(params))), dumps({"owner": _owner()})),
            )
            return int(cur.lastrowid or 0)

    @staticmethod
    def _mark_killed(conn: sqlite3.Connection) -> None:
        rows = conn.execute("SELECT id, summary FROM runs WHERE status = 'running'").fetchall()
        dead = [(KILLED, r[0]) for r in rows if _dead_owner(r[1])]
        conn.executemany("UPDATE runs SET status = ? WHERE id = ?", dead)

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
