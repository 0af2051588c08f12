"""`lineage view` (and `tree --format html`): the atlas page written from a real database."""

from __future__ import annotations

import json
import re

import pytest

from lineage.cli.main import main
from tests.factory import llama_tensors, noisy, write_model


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    root = tmp_path_factory.mktemp("view")
    base = llama_tensors(0, layers=2, inter=64, vocab=64)
    write_model(root / "m" / "org" / "base", base)
    write_model(root / "m" / "org" / "ft", noisy(base, 0.01, 1))
    write_model(root / "m" / "other" / "solo", llama_tensors(7, layers=2, inter=64, vocab=64))
    path = str(root / "l.db")
    assert main(["--db", path, "add", str(root / "m")]) == 0
    return path


def _data(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="atlas-data">(.*?)</script>', page, re.S)
    assert match
    return json.loads(match.group(1))


def test_view_writes_the_atlas_and_prints_its_path(db, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["--db", db, "view"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == "lineage-atlas.html" and (tmp_path / out).is_file()
    data = _data((tmp_path / out).read_text(encoding="utf-8"))
    assert {n["id"] for n in data["graph"]["nodes"]} == {"org/base", "org/ft", "other/solo"}
    assert [(e["parent"], e["child"]) for e in data["graph"]["edges"]] == [("org/base", "org/ft")]
    assert data["links"] == [False, False, False]  # local folders have no Hub page


def test_view_of_one_family_and_open(db, tmp_path, capsys, monkeypatch):
    opened = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url))
    out = tmp_path / "deep" / "a.html"
    assert main(["--db", db, "view", "--family", "org/ft", "--out", str(out), "--open"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    data = _data(out.read_text(encoding="utf-8"))
    assert {n["id"] for n in data["graph"]["nodes"]} == {"org/base", "org/ft"}
    assert opened == [out.resolve().as_uri()]


def test_view_of_an_unknown_model_is_one_line(db, tmp_path, capsys):
    code = main(["--db", db, "view", "--family", "nope/x", "--out", str(tmp_path / "a.html")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "'nope/x'" in err
    assert not (tmp_path / "a.html").exists()


def test_tree_format_html_writes_the_same_page(db, tmp_path, capsys):
    assert main(["--db", db, "tree", "--format", "html"]) == 0
    page = capsys.readouterr().out
    assert page.startswith("<!doctype html>")
    out = tmp_path / "t.html"
    assert main(["--db", db, "tree", "--format", "html", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == page
    assert main(["--db", db, "view", "--out", str(tmp_path / "v.html")]) == 0
    viewed = _data((tmp_path / "v.html").read_text(encoding="utf-8"))
    assert _data(page)["graph"] == viewed["graph"]
    assert _data(page)["layout"] == viewed["layout"]


def test_view_endpoint_sets_the_links(db, tmp_path):
    out = tmp_path / "e.html"
    assert main(["--db", db, "view", "--out", str(out), "--endpoint", "http://127.0.0.1:1/"]) == 0
    assert _data(out.read_text(encoding="utf-8"))["endpoint"] == "http://127.0.0.1:1"
