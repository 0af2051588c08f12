"""`lineage add --hf-cache`: cached snapshots registered under their repo ids and commits, on a
real HF cache layout (blobs, symlinked snapshots, refs) built in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lineage.cli.main import main
from lineage.store import Store
from tests.factory import llama_tensors, noisy, write_model
from tests.hf_cache import add_snapshot

SHA_OLD = "a" * 40
SHA_MAIN = "b" * 40
SHA_FT_OLD = "c" * 40
SHA_FT_NEW = "d" * 40


def _weights(tmp_path: Path, tensors, name: str) -> dict[str, bytes]:
    folder = write_model(tmp_path / "src" / name, tensors)
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.fixture
def cache(hf_home, tmp_path):
    """org/base (two snapshots, main on the newer), user/ft (two, no ref: the newest counts),
    a tokenizer-only repo and a dataset."""
    cache = hf_home / "hub"
    base = llama_tensors(0, layers=1, inter=64, vocab=64)
    add_snapshot(cache, "org/base", SHA_OLD, _weights(tmp_path, noisy(base, 0.5, 9), "old"))
    add_snapshot(cache, "org/base", SHA_MAIN, _weights(tmp_path, base, "main"), ref="main")
    ft = noisy(base, 0.01, 1)
    add_snapshot(cache, "user/ft", SHA_FT_OLD, _weights(tmp_path, ft, "ft-old"), mtime=1_000_000)
    add_snapshot(cache, "user/ft", SHA_FT_NEW, _weights(tmp_path, noisy(ft, 0.01, 2), "ft-new"))
    add_snapshot(cache, "org/tokenizer", SHA_OLD, {"tokenizer.json": b"{}"}, ref="main")
    data = cache / "datasets--org--data" / "snapshots" / SHA_OLD
    data.mkdir(parents=True)
    (data / "train.csv").write_text("a,b\n")
    return cache


def _add(db: Path, *args: str) -> int:
    return main(["--db", str(db), "add", *args, "--device", "cpu"])


def test_the_whole_cache_is_added_under_repo_ids_and_commits(cache, tmp_path, capsys):
    db = tmp_path / "l.db"
    assert _add(db, "--hf-cache", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["new"] == ["org/base", "user/ft"]
    assert out["fingerprinted"] == ["org/base", "user/ft"] and out["failed"] == []
    assert [s["model"] for s in out["skipped"]] == ["org/tokenizer"]
    with Store(db) as store:
        records = {r.id: r for r in store.models()}
    assert set(records) == {"org/base", "user/ft"}  # no `snapshots/<sha>`, no dataset
    base, ft = records["org/base"], records["user/ft"]
    assert (base.source, base.revision) == ("cache", SHA_MAIN)  # refs/main, not the newest
    assert (ft.source, ft.revision) == ("cache", SHA_FT_NEW)  # no ref: the newest snapshot
    assert Path(base.path) == cache / "models--org--base" / "snapshots" / SHA_MAIN
    # read back from the snapshot, through the store: the pair is found
    assert main(["--db", str(db), "compare", "org/base", "user/ft", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "derived"


def test_named_repos_only_and_a_missing_one_is_one_line(cache, tmp_path, capsys):
    db = tmp_path / "l.db"
    assert _add(db, "--hf-cache", "user/ft", "org/missing", "--no-fingerprint") == 1
    out, err = capsys.readouterr()
    assert out.startswith("added 1 new, 0 changed, 0 unchanged, 1 failed")
    assert err.count("\n") == 1
    assert "org/missing is not in the Hugging Face cache at" in err and "hf download" in err
    with Store(db) as store:
        assert [r.id for r in store.models()] == ["user/ft"]
    # named, a repo without weights is a failure, not a silent skip
    assert _add(db, "--hf-cache", "org/tokenizer", "--no-fingerprint") == 1
    assert "org/tokenizer" in capsys.readouterr().err


def test_again_is_unchanged_and_a_moved_main_is_a_new_revision(cache, tmp_path, capsys):
    db = tmp_path / "l.db"
    assert _add(db, "--hf-cache", "org/base", "--no-fingerprint") == 0
    assert _add(db, "--hf-cache", "org/base", "--no-fingerprint", "--json") == 0
    capsys.readouterr()
    (cache / "models--org--base" / "refs" / "main").write_text(SHA_OLD)
    assert _add(db, "--hf-cache", "org/base", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["changed"] == ["org/base"] and out["fingerprinted"] == ["org/base"]
    with Store(db) as store:
        assert store.require_model("org/base").revision == SHA_OLD


def test_an_id_taken_by_a_folder_is_refused_not_overwritten(cache, tmp_path, capsys):
    db = tmp_path / "l.db"
    folder = write_model(tmp_path / "mine" / "org" / "base", llama_tensors(3, layers=1))
    assert _add(db, str(folder), "--no-fingerprint") == 0
    capsys.readouterr()
    assert _add(db, "--hf-cache", "org/base", "--no-fingerprint") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"already stored from {folder}" in err
    with Store(db) as store:
        rec = store.require_model("org/base")
    assert (rec.source, Path(rec.path)) == ("local", folder)


def test_folders_and_the_cache_in_one_add(cache, tmp_path, capsys):
    db = tmp_path / "l.db"
    folder = write_model(tmp_path / "mine" / "me" / "model", llama_tensors(4, layers=1))
    assert _add(db, str(folder), "--hf-cache", "user/ft", "--no-fingerprint", "--json") == 0
    assert json.loads(capsys.readouterr().out)["new"] == ["me/model", "user/ft"]


@pytest.mark.parametrize(
    "args, message",
    [([], "give model folders"), (["--hf-cache", "--id", "org/x"], "--id names one model")],
)
def test_usage_errors_exit_2_before_a_database_is_created(hf_home, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        _add(tmp_path / "l.db", *args)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "l.db").exists()


def test_adding_the_cache_folder_itself_gives_repo_ids_too(cache, tmp_path, capsys):
    db = tmp_path / "l.db"
    assert _add(db, str(cache), "--no-fingerprint", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["new"] == ["org/base", "user/ft"] and out["failed"] == []
    assert sorted(s["model"] for s in out["skipped"]) == ["org/base", "user/ft"]  # older ones
    with Store(db) as store:
        revisions = {r.id: (r.source, r.revision) for r in store.models()}
    assert revisions == {"org/base": ("cache", SHA_MAIN), "user/ft": ("cache", SHA_FT_NEW)}


def test_one_snapshot_folder_is_its_repo_at_its_commit(cache, tmp_path, capsys):
    db = tmp_path / "l.db"
    old = cache / "models--org--base" / "snapshots" / SHA_OLD
    assert _add(db, str(old), "--no-fingerprint") == 0
    with Store(db) as store:
        rec = store.require_model("org/base")
    assert (rec.source, rec.revision, Path(rec.path)) == ("cache", SHA_OLD, old)
    # named with --id, a snapshot is a plain folder
    assert _add(db, str(old), "--id", "me/copy", "--no-fingerprint") == 0
    with Store(db) as store:
        assert store.require_model("me/copy").source == "local"


def test_the_text_summary_names_what_was_skipped(cache, tmp_path, capsys):
    assert _add(tmp_path / "l.db", "--hf-cache", "--no-fingerprint") == 0
    out, err = capsys.readouterr()
    assert out.startswith("added 2 new, 0 changed, 0 unchanged, 0 failed, 1 skipped")
    assert "skipped from the HF cache: org/tokenizer (no weights)" in out and err == ""
