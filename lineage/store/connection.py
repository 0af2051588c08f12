"""The store's connection: opening the file, migrating it, transactions and reads.

`Connection` is the base of `lineage.store.Store`; the tables' methods live in their own
modules (models, signatures, pairs, runs) as classes over it.

A read-only connection (`read_only=True`, what the CLI's reading commands use) opens the file
with SQLite's `mode=ro`: it never migrates, changes or creates the file. What a reader computes
for itself (pair results, the built graph) goes to TEMP copies of those cache tables, which
shadow the file's for this connection only and vanish with it, so an `audit` reads the pairs
its own build just compared. Any other write is refused. (`lineage.build.build_lineage`
refreshes a stale graph's caches through a separate writable connection when the file can be
written: derived tables only.)
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lineage.errors import StoreError
from lineage.store.rows import now
from lineage.store.schema import MIGRATIONS, Migration

__all__ = ["SCRATCH_TABLES", "Connection"]

# Tables that only cache what is computed from the models and signatures: a read-only
# connection may fill private copies of them.
SCRATCH_TABLES = ("pairs", "graphs")


class Connection:
    """One SQLite connection with the store's lock, transactions and schema migrations.

    Args and errors: see `lineage.store.Store`, which is this class with the tables' methods;
    and `read_only`: open an existing file with SQLite's `mode=ro` (see the module's docstring):
    a file that needs a migration is refused with a `StoreError` saying how to upgrade it.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout: float = 30.0,
        migrations: Sequence[Migration] = MIGRATIONS,
        read_only: bool = False,
    ):
        self.path = str(path)
        self.read_only = read_only
        self._lock = threading.RLock()
        self._depth = 0
        self._shadowed = False
        self._conn: sqlite3.Connection | None = None
        if read_only:
            self._conn = self._open_read_only(busy_timeout, len(migrations))
            return
        if self.path != ":memory:" and not self.path.startswith("file:"):
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"cannot create the folder for database {self.path}: {e}") from e
        try:
            # isolation_level=None: no implicit transactions; `transaction()` issues BEGIN itself.
            conn = sqlite3.connect(
                self.path,
                timeout=busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as e:
            raise StoreError(
                f"cannot open database {self.path}: {e}; check that the path is writable"
            ) from e
        conn.row_factory = sqlite3.Row
        self._conn = conn
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            self.journal_mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            # FULL: a committed write survives a power cut too, not only a process crash.
            conn.execute("PRAGMA synchronous = FULL")
            self._migrate(tuple(migrations))
        except sqlite3.DatabaseError as e:
            self.close()
            raise StoreError(
                f"{self.path} is not a usable model-lineage database (SQLite says: {e}); "
                "pass another --db or move the file away"
            ) from e
        except BaseException:
            self.close()
            raise

    def _open_read_only(self, busy_timeout: float, known: int) -> sqlite3.Connection:
        if self.path == ":memory:" or self.path.startswith("file:"):
            raise StoreError(f"read_only needs a database file, not {self.path}")
        uri = Path(self.path).resolve().as_uri() + "?mode=ro"
        try:
            conn = sqlite3.connect(
                uri, uri=True, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as e:
            raise StoreError(
                f"cannot open database {self.path} for reading: {e}; check the path and that "
                "it is readable"
            ) from e
        conn.row_factory = sqlite3.Row
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            # the scratch copies cannot point into the file's tables; nothing reaches the file
            conn.execute("PRAGMA foreign_keys = OFF")
            self.journal_mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            current = self._check_version(self._read_version(conn), known)
        except sqlite3.DatabaseError as e:
            conn.close()
            raise StoreError(
                f"{self.path} is not a usable model-lineage database (SQLite says: {e}); "
                "pass another --db or move the file away"
            ) from e
        except BaseException:
            conn.close()
            raise
        if current < known:
            conn.close()
            raise StoreError(
                f"database {self.path} has schema version {current} and needs an upgrade to "
                f"{known}, which a reading command never does: run a writing command once "
                "(e.g. `lineage fingerprint`) or open it once with write access"
            )
        return conn

    def _shadow(self, conn: sqlite3.Connection) -> None:
        """Give a read-only connection its TEMP copies of `SCRATCH_TABLES` (once): unqualified
        names then find them before the file's tables."""
        if self._shadowed:
            return
        for name in SCRATCH_TABLES:
            rows = conn.execute(
                "SELECT type, name, sql FROM main.sqlite_master "
                "WHERE tbl_name = ? AND sql IS NOT NULL ORDER BY type DESC",
                (name,),
            ).fetchall()
            for kind, item, sql in rows:  # the table first ("table" > "index"), then indexes
                if kind == "table":
                    conn.execute(re.sub(r"^\s*CREATE\s+TABLE", "CREATE TEMP TABLE", sql))
                    conn.execute(f"INSERT INTO temp.{name} SELECT * FROM main.{name}")
                elif kind == "index":
                    m = re.match(r"\s*CREATE\s+(UNIQUE\s+)?INDEX\s+\S+(.*)", sql, re.S)
                    if m:  # the same index, on the copy
                        conn.execute(f"CREATE {m[1] or ''}INDEX temp.{item}{m[2]}")
        self._shadowed = True

    # ---- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection. Safe to call twice."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @property
    def schema_version(self) -> int:
        """The schema version of the open file."""
        with self._lock:
            return self._read_version(self._connection())

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the store {self.path} is closed")
        return self._conn

    def _busy_message(self, e: sqlite3.Error) -> str:
        if self.read_only and "readonly" in str(e):
            return (
                f"database {self.path} is open read-only here ({e}); change it with a writing "
                "command (`lineage add`, `lineage fingerprint`, `lineage crawl`)"
            )
        if "locked" in str(e) or "busy" in str(e):
            return (
                f"database {self.path} is busy: another lineage process is writing to it; "
                "wait for it to finish or use another --db"
            )
        return f"database {self.path}: {e}"

    # ---- transactions ------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Group writes: all of them are committed together, or none if the block raises.

        The outermost block takes SQLite's write lock at once (BEGIN IMMEDIATE); nested blocks
        are savepoints, so an exception caught inside the outer block undoes only its own part.
        The store's thread lock is held for the whole block.

        Raises:
            StoreError: the write lock could not be taken within `busy_timeout`, or SQLite failed.
        """
        with self._lock:
            conn = self._connection()
            depth = self._depth
            savepoint = f"lineage_sp{depth}"
            try:
                if self.read_only:
                    self._shadow(conn)
                conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT {savepoint}")
            except sqlite3.Error as e:
                raise StoreError(self._busy_message(e)) from e
            self._depth += 1
            try:
                yield self
            except BaseException as e:
                self._depth -= 1
                try:
                    if depth == 0:
                        if conn.in_transaction:
                            conn.execute("ROLLBACK")
                    else:
                        conn.execute(f"ROLLBACK TO {savepoint}")
                        conn.execute(f"RELEASE {savepoint}")
                except sqlite3.Error:
                    pass  # the original error is the one worth reporting
                if isinstance(e, sqlite3.Error):
                    raise StoreError(self._busy_message(e)) from e
                raise
            self._depth -= 1
            try:
                conn.execute("COMMIT" if depth == 0 else f"RELEASE {savepoint}")
            except sqlite3.Error as e:
                if depth == 0 and conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreError(self._busy_message(e)) from e

    @staticmethod
    def _delete_pairs(conn: sqlite3.Connection, model_id: str) -> int:
        """Delete every pair result of `model_id` (inside the caller's transaction): they were
        computed from a signature or revision that is gone."""
        return conn.execute("DELETE FROM pairs WHERE a = ? OR b = ?", (model_id, model_id)).rowcount

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._connection().execute(sql, args).fetchall()
            except sqlite3.Error as e:
                raise StoreError(self._busy_message(e)) from e

    # ---- migrations --------------------------------------------------------------------

    def _read_version(self, conn: sqlite3.Connection) -> int:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "schema_version" not in names:
            foreign = sorted(n for n in names if not n.startswith("sqlite_"))
            if foreign:
                # Never add our tables to somebody else's database.
                raise StoreError(
                    f"{self.path} is a SQLite database but not a model-lineage one (it has "
                    f"tables {foreign} and no schema_version); pass another --db"
                )
            return 0
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def _migrate(self, migrations: tuple[Migration, ...]) -> None:
        known = len(migrations)
        conn = self._connection()
        if self._check_version(self._read_version(conn), known) == known:
            return
        with self.transaction():
            # Re-read under the write lock: another process may have migrated meanwhile.
            current = self._check_version(self._read_version(conn), known)
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            for version in range(current + 1, known + 1):
                migrations[version - 1](conn)
                conn.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    (version, now()),
                )

    def _check_version(self, current: int, known: int) -> int:
        if current > known:
            raise StoreError(
                f"database {self.path} has schema version {current}, but this model-lineage "
                f"only knows versions up to {known}: upgrade model-lineage to open it"
            )
        return current
