"""hub.emulator.records and hub.emulator.hashing: API records and identifiers, without HTTP."""

from __future__ import annotations

import hashlib

from hub.emulator.hashing import LFS_MIN_SIZE, hash_file, is_lfs, lfs_pointer, tree_oids
from hub.emulator.records import iso, model_record, tree_children
from hub.emulator.repos import RepoStore

BASE = "org/base"


def test_record_fields_come_from_manifest_card_and_files(zoo):
    store = RepoStore(zoo)
    fields = ["tags", "author", "downloadsAllTime", "trendingScore", "config", "usedStorage"]
    record = model_record(store, "team1/child-1", [*fields, "unknownField"])
    assert record["tags"] == [
        "safetensors",
        "tiny",
        f"base_model:{BASE}",
        f"base_model:finetune:{BASE}",
        "license:mit",
    ]
    assert (record["author"], record["downloadsAllTime"], record["trendingScore"]) == (
        "team1",
        1001,
        0,
    )
    assert record["config"] == {"model_type": "tiny", "hidden_size": 4}
    folder = zoo / "repos/team1/child-1"
    assert record["usedStorage"] == sum(p.stat().st_size for p in folder.iterdir())
    assert list(record) == ["_id", "id", *fields, "modelId"]  # unknown fields are left out


def test_bare_folder_is_served_with_defaults(tmp_path):
    folder = tmp_path / "repos/solo/model"
    folder.mkdir(parents=True)
    (folder / "weights.bin").write_bytes(b"\0" * 10)
    store = RepoStore(tmp_path)
    fields = ["author", "downloads", "downloadsAllTime", "private", "gated", "lastModified"]
    record = model_record(store, "solo/model", [*fields, "sha", "cardData"])
    assert [record[f] for f in fields] == [
        "solo",
        0,
        0,
        False,
        False,
        iso((folder / "weights.bin").stat().st_mtime),
    ]
    assert record["sha"] == store.snapshot("solo/model").sha and "cardData" not in record
    assert model_record(store, "nobody/nothing", fields) is None
    assert model_record(store, "../escape", fields) is None


def test_tree_children_list_directories_first(zoo):
    (zoo / "repos/org/base/sub/deeper").mkdir(parents=True)
    (zoo / "repos/org/base/sub/deeper/a.txt").write_text("a")
    snap = RepoStore(zoo).snapshot(BASE)
    assert tree_children(snap, "", recursive=False) == [
        "sub",
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    assert tree_children(snap, "sub", recursive=True) == ["sub/deeper", "sub/deeper/a.txt"]


def test_git_oids_match_git(tmp_path):
    empty, hello = tmp_path / "empty", tmp_path / "hello"
    empty.write_bytes(b"")
    hello.write_bytes(b"hello\n")
    assert hash_file(empty, "empty", 0) == ("e69de29bb2d1d6434b8b29ae775ad8c2e48c5391", None, None)
    assert hash_file(hello, "hello", 6)[0] == "ce013625030ba8dba906f756967f9e9ca394464a"


def test_lfs_files_are_named_by_sha256_and_their_pointer(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"abc")
    oid, sha256, pointer_size = hash_file(path, "w.safetensors", 3)
    assert sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    pointer = lfs_pointer(sha256, 3)
    assert pointer.startswith(b"version https://git-lfs.github.com/spec/v1\noid sha256:ba78")
    assert pointer_size == len(pointer)
    assert oid == hashlib.sha1(b"blob %d\0" % len(pointer) + pointer).hexdigest()
    assert is_lfs("a.BIN", 1) and is_lfs("notes.txt", LFS_MIN_SIZE) and not is_lfs("notes.txt", 1)


def test_tree_oids_follow_content(zoo):
    store = RepoStore(zoo)
    before = store.snapshot(BASE).dirs
    assert set(before) == {""} and before == tree_oids(list(store.snapshot(BASE).files))
    (zoo / "repos/org/base/config.json").write_text("{}")
    store.invalidate()
    assert store.snapshot(BASE).dirs[""] != before[""]
