"""The store's schema, as the list of migrations that builds it.

Migration i (0-based) takes the schema from version i to version i + 1. To add a version, write
`def _vN_something(conn)` (plain `conn.execute` calls; never `executescript`, which commits) and
append it to `MIGRATIONS`. Opening an older file then upgrades it in one transaction. A
migration is history: it never imports code that may change later (it works on plain JSON).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

from lineage.store.rows import pack_detail, unpack_detail

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Migration"]

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


# The fields of a PairResult that are also columns of `pairs`.
_PAIR_RESULT_COLUMNS = frozenset(
    ("a", "b", "overlap", "identity", "p_value", "log10_p", "slots_compared", "verdict")
)


def _v2_pair_detail_once(conn: sqlite3.Connection) -> None:
    """Version 2: a detailed pair keeps each value once.

    Version 1 stored `detail` as overlap_std/median/min, a short per-slot list, and `result`:
    the whole PairResult again (its per-slot list included). Now `detail` is the PairResult less
    the fields that are columns, with slots_a/slots_b in the row's order. Other details (the
    overlap-only background pairs store `{}`) are left as they are.
    """
    rows = conn.execute("SELECT a, b, detail FROM pairs")
    for a, b, stored in rows.fetchall():
        result = unpack_detail(stored).get("result")
        if not isinstance(result, dict):
            continue
        detail = {k: v for k, v in result.items() if k not in _PAIR_RESULT_COLUMNS}
        if result.get("a") != a:  # computed the other way round: the slot counts follow a, b
            detail["slots_a"], detail["slots_b"] = result.get("slots_b"), result.get("slots_a")
        conn.execute(
            "UPDATE pairs SET detail = ? WHERE a = ? AND b = ?", (pack_detail(detail), a, b)
        )


def _v3_graphs(conn: sqlite3.Connection) -> None:
    """Version 3: the last built graph, keyed by the state of the store it was built from."""
    conn.execute(
        "CREATE TABLE graphs (key TEXT PRIMARY KEY, built_at TEXT NOT NULL, doc TEXT NOT NULL)"
    )


def _v4_packed_detail(conn: sqlite3.Connection) -> None:
    """Version 4: pair details packed (`rows.pack_detail`: per-slot columns, deflated), about
    14x smaller; details still stored as JSON text are packed now."""
    rows = conn.execute("SELECT a, b, detail FROM pairs WHERE typeof(detail) = 'text'")
    for a, b, text in rows.fetchall():
        conn.execute(
            "UPDATE pairs SET detail = ? WHERE a = ? AND b = ?",
            (pack_detail(json.loads(text)), a, b),
        )


MIGRATIONS: tuple[Migration, ...] = (
    _v1_initial,
    _v2_pair_detail_once,
    _v3_graphs,
    _v4_packed_detail,
)
SCHEMA_VERSION = len(MIGRATIONS)
