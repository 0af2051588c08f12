"""Stable ids for local folders: `org/name` from the path, refused collisions, absolute paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub.records import ModelRecord
from lineage.cli.main import main
from lineage.store import Store
from tests.factory import llama_tensors, write_model


def _tiny(folder: Path, seed: int = 0) -> Path:
    return write_model(folder, llama_tensors(seed, layers=1, inter=64, vocab=64))


def _add(capsys, db: Path, *args: str) -> tuple[int, dict, list[str]]:
    code = main(["--db", str(db), "add", *args, "--no-fingerprint", "--json"])
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.strip()]
    return code, json.loads(captured.out), errors


def _models(db: Path) -> dict[str, str | None]:
    with Store(db) as s:
        return {m.id: m.path for m in s.models()}


def test_same_leaf_name_in_two_orgs_gives_two_models(tmp_path, capsys):
    a = _tiny(tmp_path / "a" / "all-MiniLM-L6-v2", 0)
    b = _tiny(tmp_path / "b" / "all-MiniLM-L6-v2", 1)
    code, out, errors = _add(capsys, tmp_path / "l.db", str(a), str(b))
    assert (code, errors) == (0, [])
    assert out["new"] == ["a/all-MiniLM-L6-v2", "b/all-MiniLM-L6-v2"]
    assert _models(tmp_path / "l.db") == {
        "a/all-MiniLM-L6-v2": str(a.resolve()),
        "b/all-MiniLM-L6-v2": str(b.resolve()),
    }


def test_two_folders_with_one_id_are_refused_and_the_rest_still_go_in(tmp_path, capsys):
    x = _tiny(tmp_path / "x" / "org" / "m", 0)
    y = _tiny(tmp_path / "y" / "org" / "m", 1)
    other = _tiny(tmp_path / "y" / "org" / "other", 2)
    code, out, errors = _add(capsys, tmp_path / "l.db", str(tmp_path / "x"), str(tmp_path / "y"))
    assert code == 1
    assert out["new"] == ["org/other"]
    assert [f["model"] for f in out["failed"]] == ["org/m"]
    assert len(errors) == 1
    assert str(x.resolve()) in errors[0] and str(y.resolve()) in errors[0]
    assert "--id" in errors[0]
    assert _models(tmp_path / "l.db") == {"org/other": str(other.resolve())}


def test_an_id_stored_from_another_folder_is_never_overwritten(tmp_path, capsys):
    db = tmp_path / "l.db"
    first = _tiny(tmp_path / "x" / "org" / "m", 0)
    second = _tiny(tmp_path / "y" / "org" / "m", 1)
    assert _add(capsys, db, str(first))[0] == 0
    with Store(db) as s:
        before = s.get_model("org/m")
    code, out, errors = _add(capsys, db, str(second), str(_tiny(tmp_path / "y" / "org" / "n")))
    assert code == 1 and out["new"] == ["org/n"]
    assert len(errors) == 1
    assert str(first.resolve()) in errors[0] and str(second.resolve()) in errors[0]
    assert "--id" in errors[0]
    with Store(db) as s:
        assert s.get_model("org/m") == before
    # named explicitly it goes in; the stored folder is untouched
    code, out, errors = _add(capsys, db, str(second), "--id", "org/m-copy")
    assert (code, out["new"], errors) == (0, ["org/m-copy"], [])
    assert _models(db)["org/m"] == str(first.resolve())
    assert _models(db)["org/m-copy"] == str(second.resolve())
    # the named folder keeps its id when added again with its siblings
    code, out, errors = _add(capsys, db, str(tmp_path / "y"))
    assert (code, out["unchanged"], out["new"], errors) == (0, ["org/m-copy", "org/n"], [], [])
    # the stored folder added together with the other one: it stays, the other is refused
    code, out, errors = _add(capsys, db, str(first), str(second), str(tmp_path / "x"))
    assert code == 0 and out["unchanged"] == ["org/m", "org/m-copy"]


def test_an_id_stored_from_the_hub_is_never_overwritten(tmp_path, capsys):
    db = tmp_path / "l.db"
    with Store(db) as s:
        s.upsert_model(ModelRecord(id="org/m", revision="abc", source="hub"))
    folder = _tiny(tmp_path / "org" / "m")
    code, out, errors = _add(capsys, db, str(folder))
    assert code == 1 and out["new"] == []
    assert len(errors) == 1 and "hub" in errors[0] and str(folder.resolve()) in errors[0]
    with Store(db) as s:
        rec = s.get_model("org/m")
        assert (rec.source, rec.revision, rec.path) == ("hub", "abc", None)


def test_re_adding_the_same_folder_by_another_path_is_unchanged(tmp_path, capsys, monkeypatch):
    db = tmp_path / "l.db"
    folder = _tiny(tmp_path / "org" / "m")
    assert _add(capsys, db, str(folder))[1]["new"] == ["org/m"]
    monkeypatch.chdir(tmp_path / "org")
    code, out, errors = _add(capsys, db, "m", "../org/m", str(tmp_path))
    assert (code, out["unchanged"], out["new"], errors) == (0, ["org/m"], [], [])


def test_a_moved_folder_keeps_its_id_and_other_weights_do_not_take_it(tmp_path, capsys):
    db = tmp_path / "l.db"
    folder = _tiny(tmp_path / "old" / "org" / "m")
    _add(capsys, db, str(folder))
    (tmp_path / "org").mkdir()
    moved = folder.rename(tmp_path / "org" / "m")
    code, out, errors = _add(capsys, db, str(moved))
    assert (code, out["unchanged"], errors) == (0, ["org/m"], [])
    assert _models(db) == {"org/m": str(moved.resolve())}
    # the folder is gone again; another model with that id is not taken for it
    moved.rename(tmp_path / "org" / "gone")
    other = _tiny(tmp_path / "new" / "org" / "m", 1)
    code, out, errors = _add(capsys, db, str(other))
    assert (code, out["new"], out["changed"], out["unchanged"]) == (1, [], [], [])
    assert len(errors) == 1 and str(moved) in errors[0] and str(other.resolve()) in errors[0]
    assert _models(db) == {"org/m": str(moved.resolve())}


def test_paths_are_stored_absolute_and_fingerprint_works_from_anywhere(
    tmp_path, capsys, monkeypatch
):
    db = tmp_path / "l.db"
    (tmp_path / "elsewhere").mkdir()
    _tiny(tmp_path / "work" / "org" / "m")
    monkeypatch.chdir(tmp_path / "work")
    assert _add(capsys, db, "org/m")[1]["new"] == ["org/m"]
    assert _models(db) == {"org/m": str((tmp_path / "work" / "org" / "m").resolve())}
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["--db", str(db), "fingerprint", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["fingerprinted"] == ["org/m"]


@pytest.mark.parametrize(
    "args,words",
    [
        (["{a}", "{b}", "--id", "org/x"], "exactly one"),
        (["{root}", "--id", "org/x"], "not a model folder"),
    ],
)
def test_id_names_exactly_one_model_folder(tmp_path, capsys, args, words):
    paths = {
        "a": _tiny(tmp_path / "zoo" / "org" / "a"),
        "b": _tiny(tmp_path / "zoo" / "org" / "b", 1),
        "root": tmp_path / "zoo",
    }
    code = main(["--db", str(tmp_path / "l.db"), "add", *(a.format(**paths) for a in args)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and words in err
    assert _models(tmp_path / "l.db") == {}


def test_id_must_look_like_an_id(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["add", str(tmp_path), "--id", "not an id"])
    assert exit_.value.code == 2
    assert "ORG/NAME" in capsys.readouterr().err


def test_the_zoo_is_added_under_the_ids_its_cards_declare(tiny_zoo, tmp_path, capsys):
    db = tmp_path / "l.db"
    manifest = json.loads((tiny_zoo / "manifest.json").read_text())
    ids = sorted(m["id"] for m in manifest["models"])
    code, out, errors = _add(capsys, db, str(tiny_zoo))
    assert (code, out["new"], errors) == (0, ids, [])
    with Store(db) as s:
        declared = {b.id for m in s.models() for b in m.declared_bases}
    assert declared and declared <= set(ids)
