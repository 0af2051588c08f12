"""Reading commands open the database read-only: models, signatures and runs are never written,
nothing is migrated, a store that needs a migration is refused in one line; a stale graph is
built once and its derived caches (pairs, graph) stored when the file can be written, else kept
in private TEMP tables. Real SQLite files."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from lineage.build import audit, build_lineage
from lineage.cli.main import main
from lineage.errors import StoreError
from lineage.store import MIGRATIONS, Store
from tests.factory import llama_tensors, noisy, write_model


@pytest.fixture
def db(tmp_path):
    """Two related models and an unrelated one, fingerprinted; no pair or graph stored yet."""
    base = llama_tensors(0, layers=2, inter=64, vocab=64)
    write_model(tmp_path / "m" / "org" / "base", base)
    write_model(tmp_path / "m" / "org" / "ft", noisy(base, 0.01, 1))
    write_model(tmp_path / "m" / "other" / "root", llama_tensors(5, layers=2, inter=64, vocab=64))
    path = tmp_path / "l.db"
    assert main(["--db", str(path), "add", str(tmp_path / "m"), "--device", "cpu"]) == 0
    return path


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _data(path) -> list:
    """Every row of the tables a reader must never change."""
    with sqlite3.connect(path) as conn:
        rows = [
            conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in ("models", "signatures", "runs", "schema_version")
        ]
    conn.close()
    return rows


def _counts(path) -> tuple[int, int]:
    with sqlite3.connect(path) as conn:
        pairs = conn.execute("SELECT COUNT(*) FROM pairs").fetchone()[0]
        graphs = conn.execute("SELECT COUNT(*) FROM graphs").fetchone()[0]
    conn.close()
    return pairs, graphs


@pytest.mark.parametrize(
    "command",
    [
        "tree --device cpu",
        "anomalies --device cpu",
        "audit org/ft --json --device cpu",
        "view --out {tmp}/atlas.html --device cpu",
        "plot tree --out {tmp}/figures --device cpu",
    ],
)
def test_readers_leave_the_data_as_it_was_and_build_the_graph_once(db, tmp_path, capsys, command):
    before = _data(db)
    assert _counts(db) == (0, 0)
    assert main(["--db", str(db), *command.format(tmp=tmp_path).split()]) == 0
    out, err = capsys.readouterr()
    assert out and "error" not in err
    assert _data(db) == before  # models, signatures, runs: as they were
    pairs, graphs = _counts(db)
    assert pairs > 0 and graphs == 1  # the derived caches, for the next reader
    with Store(db, read_only=True) as store:
        assert build_lineage(store, device="cpu").params["reused"] is True


def test_a_reader_told_not_to_refresh_leaves_the_file_byte_identical(db):
    before = _digest(db)
    with Store(db, read_only=True) as store:
        graph = build_lineage(store, device="cpu", refresh_cache=False)
    assert {n.id: n.parent for n in graph.nodes}["org/ft"] == "org/base"
    assert _digest(db) == before and _counts(db) == (0, 0)


def test_a_reader_still_sees_what_its_own_build_compared(db, capsys):
    assert main(["--db", str(db), "audit", "org/ft", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "recovered       org/base" in out
    closest = out.split("closest models", 1)[1]
    assert "org/base" in closest and "derived" in closest


def test_a_read_only_store_builds_every_time_and_refuses_other_writes(db):
    with Store(db, read_only=True) as store:
        first = build_lineage(store, device="cpu", refresh_cache=False)
        again = build_lineage(store, device="cpu", refresh_cache=False)
        assert first.params["reused"] is False and again.params["reused"] is False
        assert _counts(db) == (0, 0)
        record = store.require_model("org/ft")
        with pytest.raises(StoreError, match="open read-only here.*writing command"):
            store.upsert_model(record)
        before = _data(db)
        # audit refreshes the derived caches (the file can be written), and only those
        assert audit(store, "org/ft", device="cpu").node.parent == "org/base"
        assert _data(db) == before
    with Store(db) as store:  # a writer reuses what the reader's audit stored
        assert build_lineage(store, device="cpu").params["reused"] is True
    with Store(db, read_only=True) as store:
        assert build_lineage(store, device="cpu").params["reused"] is True


def test_a_store_needing_a_migration_is_refused_by_readers_in_one_line(tmp_path, capsys):
    path = tmp_path / "old.db"
    Store(path, migrations=MIGRATIONS[:-1]).close()
    before = _digest(path)
    for command in (["tree"], ["anomalies"], ["audit", "org/x"]):
        assert main(["--db", str(path), *command]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert f"schema version {len(MIGRATIONS) - 1}" in err
        assert "`lineage fingerprint`" in err and "write access" in err
    assert _digest(path) == before
    with Store(path) as store:  # a writer migrates it
        assert store.schema_version == len(MIGRATIONS)


def test_a_file_that_is_not_a_database_is_one_line_for_a_reader(tmp_path, capsys):
    path = tmp_path / "notes.db"
    path.write_text("not a database at all, just text that is long enough" * 40)
    assert main(["--db", str(path), "tree"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a usable model-lineage database" in err
