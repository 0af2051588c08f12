"""The SQLite store: models, their signatures, pair results and runs, in one file.

One `Store` wraps one connection. The file is in WAL mode with foreign keys on, and its schema is
built by the migrations in `MIGRATIONS`, applied in order in one transaction when the store is
opened. Every write is a transaction of its own unless it runs inside `Store.transaction()`, so a
crash (or a kill) loses at most the write in flight. The layout is documented in docs/store.md.

Secrets never reach the file: there is no column for a token, and keys of `ModelRecord.extra` (and
of run parameters) that look like credentials are dropped before they are written.

Modules, one job each: `rows` (records and their SQLite form), `schema` (migrations),
`connection` (open, migrate, transactions), and one per table: `models`, `signatures` (with the
freshness rule), `pairs`, `runs`, `graphs` (the last built graph).
"""

from __future__ import annotations

import os

from lineage.store.graphs import GraphTable
from lineage.store.models import ModelTable
from lineage.store.pairs import PairTable
from lineage.store.rows import PairRow, RunRow, SignatureRow, scrub_secrets
from lineage.store.runs import RunTable
from lineage.store.schema import MIGRATIONS, SCHEMA_VERSION, Migration
from lineage.store.signatures import Freshness, SignatureTable, freshness

__all__ = [
    "DEFAULT_DB",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Freshness",
    "Migration",
    "PairRow",
    "RunRow",
    "SignatureRow",
    "Store",
    "default_db_path",
    "freshness",
    "scrub_secrets",
]

DEFAULT_DB = "lineage.db"


def default_db_path() -> str:
    """The database the CLI uses without `--db`: `$LINEAGE_DB`, else `./lineage.db`."""
    return os.environ.get("LINEAGE_DB") or DEFAULT_DB


class Store(ModelTable, SignatureTable, PairTable, RunTable, GraphTable):
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

    def __enter__(self) -> Store:
        return self
