"""The SQLite store: models, their signatures, pair results and runs, in one file.

One `Store` wraps one connection. The file is in WAL mode with foreign keys on, and its schema is
built by the migrations in `MIGRATIONS`, applied in order in one transaction when the store is
opened. Every write is a transaction of its own unless it runs inside `Store.transaction()`, so a
crash (or a kill) loses at most the write in flight. The layout is documented in docs/store.md.

Secrets never reach the file: there is no column for a token, and keys of `ModelRecord.extra` (and
of run parameters) that look like credentials are dropped before they are written.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from hub.records import DeclaredBase, ModelRecord
from lineage.errors import StoreError, UnknownModelError

__all__ = [
    "DEFAULT_DB",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Migration",
    "PairRow",
    "RunRow",
    "SignatureRow",
    "Store",
    "default_db_path",
    "scrub_secrets",
]

DEFAULT_DB = "lineage.db"


def default_db_path() -> str:
    """The database the CLI uses without `--db`: `$LINEAGE_DB`, else `./lineage.db`."""
    return os.environ.get("LINEAGE_DB") or DEFAULT_DB


# --------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------


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
        verdict: identical / derived / unrelated / incomparable.
        detail: anything else (per-slot list, median, min...), stored as JSON.
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


# --------------------------------------------------------------------------------------------
# Schema and migrations
# --------------------------------------------------------------------------------------------

Migration = Callable[[sqlite3.Connection], None]

_V1_STATEMENTS = (
    """
    CREATE TABLE models (
        id                  TEXT PRIMARY KEY,
        revision            TEXT,
        author              TEXT,
        downloads           INTEGER NOT NULL DEFAULT 0,
        downloads_all_time  INTEGER,
        likes               INTEGER NOT NULL DEFAULT 0,
        created_at          TEXT,
        last_modified       TEXT,
        library             TEXT,
        pipeline_tag        TEXT,
        license             TEXT,
        gated               INTEGER NOT NULL DEFAULT 0,
        tags                TEXT NOT NULL DEFAULT '[]',
        declared_bases      TEXT NOT NULL DEFAULT '[]',
        parameter_count     INTEGER,
        source              TEXT NOT NULL DEFAULT 'local',
        path                TEXT,
        status              TEXT NOT NULL DEFAULT 'ok',
        reason              TEXT NOT NULL DEFAULT '',
        extra               TEXT NOT NULL DEFAULT '{}',
        updated_at          TEXT NOT NULL
    )
    """,
    "CREATE INDEX models_status ON models (status)",
    """
    CREATE TABLE signatures (
        model_id    TEXT PRIMARY KEY REFERENCES models (id) ON DELETE CASCADE,
        revision    TEXT,
        arch        TEXT NOT NULL,
        params      TEXT NOT NULL,
        n_slots     INTEGER NOT NULL,
        bytes_read  INTEGER NOT NULL,
        blob        BLOB NOT NULL,
        created_at  TEXT NOT NULL
    )
    """,
    "CREATE INDEX signatures_arch ON signatures (arch)",
    """
    CREATE TABLE pairs (
        a               TEXT NOT NULL REFERENCES models (id) ON DELETE CASCADE,
        b               TEXT NOT NULL REFERENCES models (id) ON DELETE CASCADE,
        revision_a      TEXT,
        revision_b      TEXT,
        overlap         REAL,
        identity        REAL,
        p_value         REAL,
        log10_p         REAL,
        slots_compared  INTEGER NOT NULL,
        verdict         TEXT NOT NULL,
        detail          TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (a, b),
        CHECK (a < b)
    )
    """,
    "CREATE INDEX pairs_b ON pairs (b)",
    """
    CREATE TABLE runs (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        kind         TEXT NOT NULL,
        started_at   TEXT NOT NULL,
        finished_at  TEXT,
        params       TEXT NOT NULL DEFAULT '{}',
        summary      TEXT NOT NULL DEFAULT '{}',
        status       TEXT NOT NULL
    )
    """,
)


def _v1_initial(conn: sqlite3.Connection) -> None:
    """Version 1: models, signatures, pairs, runs."""
    for statement in _V1_STATEMENTS:
        conn.execute(statement)


# Migration i (0-based) takes the schema from version i to version i + 1. To add version 2, write
# `def _v2_something(conn)` (plain `conn.execute` calls; never `executescript`, which commits) and
# append it here. Opening an older file then upgrades it in one transaction.
MIGRATIONS: tuple[Migration, ...] = (_v1_initial,)
SCHEMA_VERSION = len(MIGRATIONS)

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

_SECRET_KEY = re.compile(r"token|authorization|password|secret", re.IGNORECASE)
# A Hugging Face access token as a value, whatever key it hides under.
_SECRET_VALUE = re.compile(r"\bhf_[A-Za-z0-9]{20,}")

# Column order of INSERTs; rows are read back by name.
# fmt: off
_MODEL_COLUMNS = (
    "id", "revision", "author", "downloads", "downloads_all_time", "likes", "created_at",
    "last_modified", "library", "pipeline_tag", "license", "gated", "tags", "declared_bases",
    "parameter_count", "source", "path", "status", "reason", "extra", "updated_at",
)
_PAIR_COLUMNS = (
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


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_json_default)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _model_values(rec: ModelRecord, updated_at: str) -> tuple[Any, ...]:
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
        _dumps(list(rec.tags)),
        _dumps([{"id": b.id, "relation": b.relation} for b in rec.declared_bases]),
        rec.parameter_count,
        rec.source,
        rec.path,
        rec.status,
        rec.reason,
        _dumps(scrub_secrets(dict(rec.extra or {}))),
        updated_at,
    )


def _model_from_row(row: sqlite3.Row) -> ModelRecord:
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


def _signature_from_row(row: sqlite3.Row) -> SignatureRow:
    return SignatureRow(
        model_id=row["model_id"],
        revision=row["revision"],
        arch=row["arch"],
        params=row["params"],
        n_slots=row["n_slots"],
        bytes_read=row["bytes_read"],
        blob=bytes(row["blob"]),
        created_at=row["created_at"],
    )


def _pair_from_row(row: sqlite3.Row) -> PairRow:
    return PairRow(
        a=row["a"],
        b=row["b"],
        revision_a=row["revision_a"],
        revision_b=row["revision_b"],
        overlap=row["overlap"],
        identity=row["identity"],
        p_value=row["p_value"],
        log10_p=row["log10_p"],
        slots_compared=row["slots_compared"],
        verdict=row["verdict"],
        detail=json.loads(row["detail"]),
    )


def _run_from_row(row: sqlite3.Row) -> RunRow:
    return RunRow(
        id=row["id"],
        kind=row["kind"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        params=json.loads(row["params"]),
        summary=json.loads(row["summary"]),
        status=row["status"],
    )


def _normalised(row: PairRow) -> PairRow:
    if row.a == row.b:
        raise ValueError(f"a pair needs two different models, got {row.a!r} twice")
    if row.a < row.b:
        return row
    return replace(row, a=row.b, b=row.a, revision_a=row.revision_b, revision_b=row.revision_a)


# --------------------------------------------------------------------------------------------
# Store
# --------------------------------------------------------------------------------------------


class Store:
    """A model-lineage database in one SQLite file.

    Use it as a context manager (`with Store(path) as store: ...`) or call `close()`. `path` may be
    ":memory:" for tests. The connection may be used from several threads; every call holds the
    store's lock, and a `transaction()` holds it until it ends.

    Args:
        path: the database file; it (and its folder) is created if missing.
        busy_timeout: seconds to wait for another process's write lock before giving up.
        migrations: the schema migrations to apply; tests pass their own list, everyone else
            keeps the default.

    Raises:
        StoreError: the file cannot be opened, is not a model-lineage database, or was written by
            a newer model-lineage (schema version newer than this code knows).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout: float = 30.0,
        migrations: Sequence[Migration] = MIGRATIONS,
    ):
        self.path = str(path)
        self._lock = threading.RLock()
        self._depth = 0
        self._conn: sqlite3.Connection | None = None
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

    # ---- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> Store:
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
        if "locked" in str(e) or "busy" in str(e):
            return (
                f"database {self.path} is busy: another lineage process is writing to it; "
                "wait for it to finish or use another --db"
            )
        return f"database {self.path}: {e}"

    # ---- transactions ------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Store]:
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
                    (version, _now()),
                )

    def _check_version(self, current: int, known: int) -> int:
        if current > known:
            raise StoreError(
                f"database {self.path} has schema version {current}, but this model-lineage "
                f"only knows versions up to {known}: upgrade model-lineage to open it"
            )
        return current

    # ---- models ------------------------------------------------------------------------

    def upsert_model(self, rec: ModelRecord) -> str:
        """Insert or update a model from what its source says.

        Every field of `rec` is written (downloads, likes, status... are refreshed even when the
        revision is the same). When the revision differs from the stored one, the model's
        signature and pair results are deleted: they describe weights that are gone.

        Returns:
            "new", "changed" (another revision) or "unchanged" (same revision).
        """
        values = _model_values(rec, _now())
        with self.transaction():
            conn = self._connection()
            old = conn.execute("SELECT revision FROM models WHERE id = ?", (rec.id,)).fetchone()
            if old is None:
                conn.execute(
                    f"INSERT INTO models ({', '.join(_MODEL_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(_MODEL_COLUMNS))})",
                    values,
                )
                return "new"
            conn.execute(
                f"UPDATE models SET {', '.join(f'{c} = ?' for c in _MODEL_COLUMNS[1:])} "
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
        return _model_from_row(rows[0]) if rows else None

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
        return [_model_from_row(r) for r in rows]

    def set_status(self, model_id: str, status: str, reason: str = "") -> None:
        """Record that a model is `ok` or why it is not (`gated`, `malformed`, ...).

        Raises:
            UnknownModelError: it is not in the database.
        """
        with self.transaction():
            cur = self._connection().execute(
                "UPDATE models SET status = ?, reason = ?, updated_at = ? WHERE id = ?",
                (status, reason, _now(), model_id),
            )
            if cur.rowcount == 0:
                raise UnknownModelError(model_id)

    def delete_model(self, model_id: str) -> bool:
        """Delete a model with its signature and pair results. Returns False if it was absent."""
        with self.transaction():
            cur = self._connection().execute("DELETE FROM models WHERE id = ?", (model_id,))
            return cur.rowcount > 0

    # ---- signatures --------------------------------------------------------------------

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
                (model_id, revision, arch, params, n_slots, bytes_read, bytes(blob), _now()),
            )
            if old is not None and (old["params"], bytes(old["blob"])) != (params, bytes(blob)):
                self._delete_pairs(conn, model_id)

    def get_signature(self, model_id: str) -> SignatureRow | None:
        """The stored signature of `model_id`, or None."""
        rows = self._read("SELECT * FROM signatures WHERE model_id = ?", (model_id,))
        return _signature_from_row(rows[0]) if rows else None

    def has_current_signature(
        self, model_id: str, revision: str | None, *, params: str | None = None
    ) -> bool:
        """Whether a signature made at `revision` (and with `params`, if given) is stored."""
        row = self._read("SELECT revision, params FROM signatures WHERE model_id = ?", (model_id,))
        if not row:
            return False
        return row[0]["revision"] == revision and (params is None or row[0]["params"] == params)

    def signatures(self, *, arch: str | None = None) -> list[SignatureRow]:
        """All signatures sorted by model id, or only those of one architecture block."""
        if arch is None:
            rows = self._read("SELECT * FROM signatures ORDER BY model_id")
        else:
            rows = self._read("SELECT * FROM signatures WHERE arch = ? ORDER BY model_id", (arch,))
        return [_signature_from_row(r) for r in rows]

    def archs(self) -> dict[str, int]:
        """Number of signatures per architecture block, sorted by block key."""
        rows = self._read("SELECT arch, COUNT(*) AS n FROM signatures GROUP BY arch ORDER BY arch")
        return {r["arch"]: r["n"] for r in rows}

    # ---- pairs -------------------------------------------------------------------------

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
        values = [
            (
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
                _dumps(r.detail or {}),
            )
            for r in map(_normalised, rows)
        ]
        if not values:
            return 0
        updates = ", ".join(f"{c} = excluded.{c}" for c in _PAIR_COLUMNS[2:])
        with self.transaction():
            conn = self._connection()
            try:
                conn.executemany(
                    f"INSERT INTO pairs ({', '.join(_PAIR_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(_PAIR_COLUMNS))}) "
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
        return _pair_from_row(rows[0]) if rows else None

    def pairs(self, *, model: str | None = None) -> list[PairRow]:
        """All pair results sorted by (a, b), or only those involving `model`."""
        if model is None:
            rows = self._read("SELECT * FROM pairs ORDER BY a, b")
        else:
            rows = self._read(
                "SELECT * FROM pairs WHERE a = ? OR b = ? ORDER BY a, b", (model, model)
            )
        return [_pair_from_row(r) for r in rows]

    def delete_pairs_for(self, model_id: str) -> int:
        """Delete every pair result involving `model_id`. Returns how many were deleted."""
        with self.transaction():
            return self._delete_pairs(self._connection(), model_id)

    @staticmethod
    def _delete_pairs(conn: sqlite3.Connection, model_id: str) -> int:
        return conn.execute("DELETE FROM pairs WHERE a = ? OR b = ?", (model_id, model_id)).rowcount

    # ---- runs --------------------------------------------------------------------------

    def start_run(self, kind: str, params: dict) -> int:
        """Record that a run of `kind` started with `params` (secrets dropped). Returns its id."""
        with self.transaction():
            cur = self._connection().execute(
                "INSERT INTO runs (kind, started_at, params, status) VALUES (?, ?, ?, 'running')",
                (kind, _now(), _dumps(scrub_secrets(dict(params)))),
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
                (_now(), _dumps(summary), status, run_id),
            )
            if cur.rowcount == 0:
                raise StoreError(f"there is no run {run_id} in {self.path}")

    def runs(self) -> list[RunRow]:
        """All runs, oldest first."""
        return [_run_from_row(r) for r in self._read("SELECT * FROM runs ORDER BY id")]
