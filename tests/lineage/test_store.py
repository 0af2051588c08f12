"""Tests of lineage/store/: schema, migrations, upsert semantics, transactions, crash safety."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from hub.records import DeclaredBase, ModelRecord
from lineage.errors import StoreError, UnknownModelError
from lineage.store import MIGRATIONS, PairRow, Store, default_db_path, scrub_secrets

REPO_ROOT = Path(__file__).resolve().parents[2]


def full_record(model_id: str = "org/child", revision: str = "sha-1", **changes) -> ModelRecord:
    fields = dict(
        id=model_id,
        revision=revision,
        author="org",
        downloads=1234,
        downloads_all_time=98765,
        likes=7,
        created_at="2024-01-02T03:04:05.000Z",
        last_modified="2024-02-03T04:05:06.000Z",
        library="transformers",
        pipeline_tag="text-generation",
        license="apache-2.0",
        gated=True,
        tags=("llama", "base_model:finetune:org/base", "license:apache-2.0"),
        declared_bases=(DeclaredBase("org/base", "finetune"), DeclaredBase("org/other")),
        parameter_count=1_100_000_000,
        source="hub",
        path="/cache/org/child",
        status="ok",
        reason="",
        extra={"card": {"language": ["en", "fr"]}, "siblings": 3},
    )
    fields.update(changes)
    return ModelRecord(**fields)


def pair(a: str, b: str, **changes) -> PairRow:
    fields = dict(
        a=a,
        b=b,
        revision_a=f"rev-{a}",
        revision_b=f"rev-{b}",
        overlap=0.8,
        identity=0.1,
        p_value=1e-300,
        log10_p=-300.0,
        slots_compared=64,
        verdict="derived",
        detail={"per_slot": [0.75, 0.85], "median": 0.8},
    )
    fields.update(changes)
    return PairRow(**fields)


def put_sig(store: Store, model_id: str, revision: str, *, arch: str = "llama-64", blob=b"sig"):
    store.put_signature(
        model_id,
        revision=revision,
        arch=arch,
        params="v1:k=512:w=1048576:seed=0",
        n_slots=64,
        bytes_read=4096,
        blob=blob,
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "lineage.db"


@pytest.fixture
def store(db: Path):
    with Store(db) as s:
        yield s


# ---- models --------------------------------------------------------------------------------


def test_model_round_trip_keeps_every_field(store: Store):
    rec = full_record()
    assert store.upsert_model(rec) == "new"
    got = store.get_model(rec.id)
    assert got == rec
    assert got is not None
    assert got.extra == rec.extra  # `extra` is compare=False on the record: check it explicitly
    assert got.declared_bases == (DeclaredBase("org/base", "finetune"), DeclaredBase("org/other"))
    assert got.tags == rec.tags and isinstance(got.tags, tuple)


def test_minimal_record_round_trips(store: Store):
    rec = ModelRecord(id="local/m")
    store.upsert_model(rec)
    got = store.get_model("local/m")
    assert got == rec and got is not None and got.extra == {}


def test_upsert_new_unchanged_changed(store: Store):
    assert store.upsert_model(full_record(downloads=1)) == "new"
    assert store.upsert_model(full_record(downloads=1)) == "unchanged"  # idempotent
    # Same revision: metadata is still refreshed.
    assert store.upsert_model(full_record(downloads=50, likes=9)) == "unchanged"
    got = store.require_model("org/child")
    assert (got.downloads, got.likes) == (50, 9)
    assert store.upsert_model(full_record(revision="sha-2")) == "changed"
    assert store.require_model("org/child").revision == "sha-2"
    assert store.upsert_model(full_record(revision="sha-2")) == "unchanged"


def test_changed_revision_drops_stale_signature_and_pairs(store: Store):
    for model_id in ("org/base", "org/child", "org/other"):
        store.upsert_model(full_record(model_id))
        put_sig(store, model_id, "sha-1")
    store.put_pairs(
        [
            pair("org/base", "org/child"),
            pair("org/child", "org/other"),
            pair("org/base", "org/other"),
        ]
    )

    assert store.upsert_model(full_record("org/child", revision="sha-2")) == "changed"

    assert store.get_signature("org/child") is None
    assert not store.has_current_signature("org/child", "sha-2")
    assert [(p.a, p.b) for p in store.pairs()] == [("org/base", "org/other")]
    assert store.get_signature("org/base") is not None  # others untouched


def test_unchanged_revision_keeps_signature_and_pairs(store: Store):
    store.upsert_model(full_record("org/a"))
    store.upsert_model(full_record("org/b"))
    put_sig(store, "org/a", "sha-1")
    store.put_pairs([pair("org/a", "org/b")])
    assert store.upsert_model(full_record("org/a", downloads=5)) == "unchanged"
    assert store.has_current_signature("org/a", "sha-1")
    assert store.get_pair("org/a", "org/b") is not None


def test_models_sorted_and_filtered_by_status(store: Store):
    for model_id in ("zeta/m", "alpha/m", "mid/m"):
        store.upsert_model(ModelRecord(id=model_id))
    store.set_status("mid/m", "gated", "needs a token: accept the license on the Hub")
    assert [m.id for m in store.models()] == ["alpha/m", "mid/m", "zeta/m"]
    assert [m.id for m in store.models(status="ok")] == ["alpha/m", "zeta/m"]
    gated = store.models(status="gated")
    assert [(m.id, m.status, m.reason) for m in gated] == [
        ("mid/m", "gated", "needs a token: accept the license on the Hub")
    ]


def test_unknown_model_errors_say_what_to_do(store: Store):
    assert store.get_model("no/such") is None
    with pytest.raises(UnknownModelError) as info:
        store.require_model("no/such")
    assert info.value.model_id == "no/such"
    assert "lineage add" in str(info.value) and "lineage crawl" in str(info.value)
    with pytest.raises(UnknownModelError):
        store.set_status("no/such", "gated", "x")
    with pytest.raises(UnknownModelError):
        put_sig(store, "no/such", "sha-1")


def test_delete_model_cascades(store: Store):
    store.upsert_model(full_record("org/a"))
    store.upsert_model(full_record("org/b"))
    put_sig(store, "org/a", "sha-1")
    store.put_pairs([pair("org/a", "org/b")])
    assert store.delete_model("org/a") is True
    assert store.get_model("org/a") is None
    assert store.get_signature("org/a") is None
    assert store.pairs() == []
    assert store.delete_model("org/a") is False


def test_secrets_are_never_stored(store: Store, db: Path):
    secret = "hf_" + "x" * 34
    rec = full_record(
        extra={
            "token": secret,
            "HF_TOKEN": secret,
            "Authorization": f"Bearer {secret}",
            "nested": {"password": "p", "api_secret": "s", "keep": 1},
            "note": f"fetched with {secret}",
            "list": ["fine", secret],
            "license_name": "apache-2.0",
        }
    )
    store.upsert_model(rec)
    got = store.require_model(rec.id)
    assert got.extra == {"nested": {"keep": 1}, "list": ["fine"], "license_name": "apache-2.0"}
    run_id = store.start_run("crawl", {"endpoint": "http://x", "token": secret, "limit": 5})
    assert store.runs()[0].params == {"endpoint": "http://x", "limit": 5}
    store.finish_run(run_id, {"models": 5})
    store.close()
    assert secret.encode() not in b"".join(p.read_bytes() for p in db.parent.glob("lineage.db*"))


def test_scrub_secrets_is_case_insensitive_and_deep():
    assert scrub_secrets({"AccessToken": 1, "a": [{"PASSWORD": 2, "b": 3}]}) == {"a": [{"b": 3}]}


# ---- signatures ----------------------------------------------------------------------------


def test_signature_round_trip_and_queries(store: Store):
    for model_id, arch in (("org/a", "llama-64"), ("org/b", "llama-64"), ("org/c", "gpt2-48")):
        store.upsert_model(full_record(model_id))
        put_sig(store, model_id, "sha-1", arch=arch, blob=bytes(range(256)) * 4)
    sig = store.get_signature("org/a")
    assert sig is not None
    assert (sig.model_id, sig.revision, sig.arch, sig.n_slots, sig.bytes_read) == (
        "org/a",
        "sha-1",
        "llama-64",
        64,
        4096,
    )
    assert sig.params == "v1:k=512:w=1048576:seed=0"
    assert sig.blob == bytes(range(256)) * 4 and sig.created_at
    assert store.has_current_signature("org/a", "sha-1")
    assert store.has_current_signature("org/a", "sha-1", params="v1:k=512:w=1048576:seed=0")
    assert not store.has_current_signature("org/a", "sha-1", params="v1:k=256:w=1048576:seed=0")
    assert not store.has_current_signature("org/a", "sha-0")
    assert not store.has_current_signature("org/zzz", "sha-1")
    assert [s.model_id for s in store.signatures()] == ["org/a", "org/b", "org/c"]
    assert [s.model_id for s in store.signatures(arch="llama-64")] == ["org/a", "org/b"]
    assert store.archs() == {"gpt2-48": 1, "llama-64": 2}


def test_signature_for_an_old_revision_is_refused(store: Store):
    store.upsert_model(full_record("org/a", revision="sha-2"))
    with pytest.raises(StoreError, match="fingerprint"):
        put_sig(store, "org/a", "sha-1")
    assert store.get_signature("org/a") is None


def test_new_signature_drops_pairs_but_same_signature_keeps_them(store: Store):
    store.upsert_model(full_record("org/a"))
    store.upsert_model(full_record("org/b"))
    put_sig(store, "org/a", "sha-1", blob=b"one")
    store.put_pairs([pair("org/a", "org/b")])
    put_sig(store, "org/a", "sha-1", blob=b"one")
    assert store.get_pair("org/a", "org/b") is not None
    put_sig(store, "org/a", "sha-1", blob=b"two")
    assert store.get_pair("org/a", "org/b") is None
    assert store.get_signature("org/a").blob == b"two"  # type: ignore[union-attr]


# ---- pairs ---------------------------------------------------------------------------------


def test_pairs_are_normalised_a_before_b(store: Store):
    store.upsert_model(ModelRecord(id="org/a"))
    store.upsert_model(ModelRecord(id="org/b"))
    store.put_pairs([pair("org/b", "org/a", revision_a="rev-B", revision_b="rev-A")])
    (row,) = store.pairs()
    assert (row.a, row.b, row.revision_a, row.revision_b) == ("org/a", "org/b", "rev-A", "rev-B")
    assert store.get_pair("org/b", "org/a") == row == store.get_pair("org/a", "org/b")
    assert row.detail == {"per_slot": [0.75, 0.85], "median": 0.8}
    # Upsert: the same pair again replaces the row.
    assert store.put_pairs([pair("org/a", "org/b", overlap=0.01, verdict="unrelated")]) == 1
    (row,) = store.pairs()
    assert (row.overlap, row.verdict) == (0.01, "unrelated")
    assert store.pairs(model="org/b") == [row] and store.pairs(model="org/zzz") == []
    with pytest.raises(ValueError):
        store.put_pairs([pair("org/a", "org/a")])


def test_pairs_with_unknown_model_are_refused_whole(store: Store):
    store.upsert_model(ModelRecord(id="org/a"))
    store.upsert_model(ModelRecord(id="org/b"))
    with pytest.raises(UnknownModelError) as info:
        store.put_pairs([pair("org/a", "org/b"), pair("org/a", "org/ghost")])
    assert info.value.model_id == "org/ghost"
    assert store.pairs() == []


def test_pair_floats_nan_and_infinity(store: Store):
    store.upsert_model(ModelRecord(id="org/a"))
    store.upsert_model(ModelRecord(id="org/b"))
    store.put_pairs(
        [pair("org/a", "org/b", overlap=math.nan, p_value=0.0, log10_p=-math.inf, slots_compared=0)]
    )
    row = store.get_pair("org/a", "org/b")
    assert row is not None
    assert row.overlap is None  # SQLite stores NaN as NULL
    assert row.p_value == 0.0 and row.log10_p == -math.inf


def test_delete_pairs_for(store: Store):
    for model_id in ("org/a", "org/b", "org/c"):
        store.upsert_model(ModelRecord(id=model_id))
    store.put_pairs([pair("org/a", "org/b"), pair("org/b", "org/c"), pair("org/a", "org/c")])
    assert store.delete_pairs_for("org/b") == 2
    assert [(p.a, p.b) for p in store.pairs()] == [("org/a", "org/c")]


# ---- runs ----------------------------------------------------------------------------------


def test_runs(store: Store):
    first = store.start_run("crawl", {"author": ["org"], "limit": 10})
    second = store.start_run("fingerprint", {"all": True})
    store.finish_run(first, {"new": 3, "changed": 1}, status="ok")
    runs = store.runs()
    assert [r.id for r in runs] == [first, second] and first < second
    assert (runs[0].kind, runs[0].status, runs[0].summary) == (
        "crawl",
        "ok",
        {"new": 3, "changed": 1},
    )
    assert runs[0].params == {"author": ["org"], "limit": 10} and runs[0].finished_at
    assert (runs[1].status, runs[1].finished_at) == ("running", None)
    with pytest.raises(StoreError):
        store.finish_run(9999, {})


# ---- transactions, files, schema -----------------------------------------------------------


def test_transaction_rollback_leaves_nothing(store: Store):
    store.upsert_model(ModelRecord(id="org/kept"))
    with pytest.raises(RuntimeError), store.transaction():
        store.upsert_model(ModelRecord(id="org/a"))
        store.upsert_model(ModelRecord(id="org/b"))
        store.put_pairs([pair("org/a", "org/b")])
        store.start_run("crawl", {})
        store.set_status("org/kept", "malformed", "x")
        raise RuntimeError("boom")
    assert [m.id for m in store.models()] == ["org/kept"]
    assert store.require_model("org/kept").status == "ok"
    assert store.pairs() == [] and store.runs() == []
    # The store is usable afterwards.
    assert store.upsert_model(ModelRecord(id="org/a")) == "new"


def test_nested_transaction_rolls_back_only_its_part(store: Store):
    with store.transaction():
        store.upsert_model(ModelRecord(id="org/outer"))
        try:
            with store.transaction():
                store.upsert_model(ModelRecord(id="org/inner"))
                raise KeyError("inner")
        except KeyError:
            pass
    assert [m.id for m in store.models()] == ["org/outer"]


def test_a_failed_write_is_its_own_transaction(store: Store):
    store.upsert_model(ModelRecord(id="org/a"))
    with pytest.raises(UnknownModelError):
        store.put_pairs([pair("org/a", "org/ghost")])
    assert store.upsert_model(ModelRecord(id="org/b")) == "new"
    assert len(store.models()) == 2


def test_wal_mode_foreign_keys_and_busy_timeout(db: Path):
    with Store(db, busy_timeout=7.5) as store:
        assert store.journal_mode == "wal"
        conn = sqlite3.connect(db)
        try:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent
        finally:
            conn.close()
        conn = store._connection()
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 7500


def test_memory_store_works():
    with Store(":memory:") as store:
        assert store.upsert_model(ModelRecord(id="org/a")) == "new"
        assert store.schema_version == len(MIGRATIONS)


def test_reopening_the_file_sees_the_data(db: Path):
    with Store(db) as store:
        store.upsert_model(full_record("org/a"))
        store.upsert_model(full_record("org/b"))
        put_sig(store, "org/a", "sha-1")
        store.put_pairs([pair("org/a", "org/b")])
        run_id = store.start_run("crawl", {})
    with Store(db) as store:
        assert store.get_model("org/a") == full_record("org/a")
        assert store.has_current_signature("org/a", "sha-1")
        assert store.get_pair("org/a", "org/b") == pair("org/a", "org/b")
        assert [r.id for r in store.runs()] == [run_id]
        assert store.schema_version == len(MIGRATIONS)


def test_creates_missing_parent_folder(tmp_path: Path):
    with Store(tmp_path / "deep" / "er" / "x.db") as store:
        store.upsert_model(ModelRecord(id="org/a"))
    assert (tmp_path / "deep" / "er" / "x.db").exists()


def _v2_add_notes(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE models ADD COLUMN notes TEXT NOT NULL DEFAULT ''")
    conn.execute("CREATE TABLE notes_log (model_id TEXT, note TEXT)")


def test_opening_a_v1_file_with_v2_code_migrates_it(db: Path):
    v1 = MIGRATIONS[:1]
    with Store(db, migrations=v1) as store:
        assert store.schema_version == 1
        store.upsert_model(full_record("org/a"))
    with Store(db, migrations=(*v1, _v2_add_notes)) as store:
        assert store.schema_version == 2
        assert store.get_model("org/a") == full_record("org/a")  # data survives
        conn = store._connection()
        columns = {r[1] for r in conn.execute("PRAGMA table_info(models)")}
        assert "notes" in columns
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
        assert versions == [1, 2]
        # Writes still work with the extra column present.
        assert store.upsert_model(full_record("org/b")) == "new"


def test_a_failing_migration_leaves_the_file_at_its_old_version(db: Path):
    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        conn.execute("THIS IS NOT SQL")

    with Store(db, migrations=MIGRATIONS[:1]) as store:
        store.upsert_model(ModelRecord(id="org/a"))
    with pytest.raises(StoreError):
        Store(db, migrations=(*MIGRATIONS[:1], broken))
    with Store(db, migrations=MIGRATIONS[:1]) as store:
        assert store.schema_version == 1
        tables = {r[0] for r in store._connection().execute("SELECT name FROM sqlite_master")}
        assert "half_done" not in tables
        assert store.get_model("org/a") is not None


def test_newer_schema_is_refused(db: Path):
    with Store(db, migrations=(*MIGRATIONS, _v2_add_notes)):
        pass
    with pytest.raises(StoreError, match="upgrade model-lineage"):
        Store(db, migrations=MIGRATIONS)


def test_not_a_database_is_refused(tmp_path: Path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"this is not sqlite at all, just text " * 100)
    with pytest.raises(StoreError, match="not a usable model-lineage database"):
        Store(path)
    assert path.read_bytes().startswith(b"this is not sqlite")


def test_someone_elses_sqlite_database_is_refused(tmp_path: Path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (n INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a model-lineage one"):
        Store(path)


def test_closed_store_says_so(db: Path):
    store = Store(db)
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.models()


def test_busy_database_gives_a_clear_error(db: Path):
    with Store(db) as holder, Store(db, busy_timeout=0.1) as other:
        with holder.transaction():
            holder.upsert_model(ModelRecord(id="org/a"))
            with pytest.raises(StoreError, match="busy"):
                other.upsert_model(ModelRecord(id="org/b"))
        assert other.upsert_model(ModelRecord(id="org/b")) == "new"
        assert [m.id for m in other.models()] == ["org/a", "org/b"]


def test_writes_from_several_threads(db: Path):
    with Store(db) as store:

        def work(n: int) -> None:
            for i in range(25):
                model_id = f"t{n}/m{i}"
                store.upsert_model(ModelRecord(id=model_id, revision="r"))
                put_sig(store, model_id, "r")
                store.get_model(model_id)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(store.models()) == 100 and len(store.signatures()) == 100


def test_process_killed_mid_transaction_leaves_the_db_consistent(db: Path):
    with Store(db) as store:
        store.upsert_model(ModelRecord(id="org/committed", revision="r1"))
    script = textwrap.dedent(
        f"""
        import os
        from hub.records import ModelRecord
        from lineage.store import Store

        store = Store({str(db)!r})
        store.upsert_model(ModelRecord(id="org/own-transaction", revision="r1"))
        with store.transaction():
            store.upsert_model(ModelRecord(id="org/committed", revision="r2"))
            for i in range(200):
                store.upsert_model(ModelRecord(id=f"org/lost{{i}}", revision="r1"))
            store.start_run("crawl", {{}})
            os._exit(3)  # killed: no COMMIT, no close, no cleanup
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=REPO_ROOT, capture_output=True, timeout=60
    )
    assert done.returncode == 3, done.stderr.decode()

    with Store(db) as store:
        conn = store._connection()
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert [m.id for m in store.models()] == ["org/committed", "org/own-transaction"]
        assert store.require_model("org/committed").revision == "r1"
        assert store.runs() == []
        # The dead writer's lock is gone: we can write.
        assert store.upsert_model(ModelRecord(id="org/after")) == "new"


def test_default_db_path(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("LINEAGE_DB", raising=False)
    assert default_db_path() == "lineage.db"
    monkeypatch.setenv("LINEAGE_DB", "/tmp/x.db")
    assert default_db_path() == "/tmp/x.db"


def test_a_run_left_running_by_a_dead_process_is_marked_killed_at_the_next_start(tmp_path):
    db = tmp_path / "db.sqlite"
    # a real process starts a run and dies without finishing it (as after kill -9)
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path[:] = {[str(REPO_ROOT), *sys.path]!r}
        from lineage.store import Store
        store = Store({str(db)!r})
        store.start_run("crawl", {{}})
        os._exit(0)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    with Store(db) as store:
        mine = store.start_run("fingerprint", {})  # a live run of this process
        assert [r.status for r in store.runs()] == ["killed", "running"]
        third = store.start_run("scan", {})
        # a live run (this process) is never marked killed
        assert [r.status for r in store.runs()] == ["killed", "running", "running"]
        store.finish_run(mine, {"n": 1})
        store.finish_run(third, {})
        assert [r.status for r in store.runs()] == ["killed", "ok", "ok"]
        assert store.runs()[1].summary == {"n": 1}


def test_pair_detail_is_stored_packed_and_old_json_rows_still_read(store: Store, db: Path):
    store.upsert_model(ModelRecord(id="org/a"))
    store.upsert_model(ModelRecord(id="org/b"))
    slots = [
        {"key": f"layers.{i}.q|64|4096", "tensor": f"layers.{i}.q", "overlap": i / 64, "k": 512}
        for i in range(64)
    ]
    detail = {"per_slot": slots, "warnings": ["few slots"], "layer_map": [[0, 1]]}
    store.put_pairs([pair("org/a", "org/b", detail=detail)])
    assert store.get_pair("org/a", "org/b").detail == detail
    with sqlite3.connect(db) as raw:
        (stored,) = raw.execute("SELECT detail FROM pairs").fetchone()
        assert isinstance(stored, bytes)  # packed: columns once, deflated
        assert len(stored) * 5 < len(json.dumps(detail))
        # a row written by an older version (plain JSON text) reads as before
        raw.execute("UPDATE pairs SET detail = ?", (json.dumps(detail),))
    assert store.get_pair("org/a", "org/b").detail == detail
