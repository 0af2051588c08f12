"""`lineage import-shards DIR`: a Ray crawl's Parquet shards into the store, from the CLI."""

from __future__ import annotations

import json

import pytest

from fingerprint.signature import compute_signature
from hub.records import ModelRecord
from lineage.cli.main import main
from lineage.store import Store
from tests.factory import MemorySource
from tests.hub_helpers import small

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def _write_shards(folder) -> None:
    from lineage.engines.shards import ShardRow, arrow_schema, record_to_json

    sig = compute_signature(MemorySource("org/good", small(0)), device="cpu")
    good = ShardRow(
        model_id="org/good",
        revision="r1",
        status="ok",
        reason="",
        record=record_to_json(ModelRecord(id="org/good", revision="r1")),
        signature=sig.to_bytes(),
        params=sig.params.tag(),
        size=1000,
    )
    gone = ShardRow(
        model_id="org/gone",
        revision="r1",
        status="not_found",
        reason="org/gone is not on the Hub",
        record=record_to_json(ModelRecord(id="org/gone", revision="r1")),
        signature=None,
        params=None,
    )
    (folder / "chunk-0").mkdir(parents=True)
    table = pa.Table.from_pylist([good.to_dict(), gone.to_dict()], schema=arrow_schema())
    pq.write_table(table, folder / "chunk-0" / "part-0.parquet")


def test_import_shards_stores_them_once(tmp_path, capsys):
    shards, db = tmp_path / "shards", tmp_path / "db.sqlite"
    _write_shards(shards)
    assert main(["--db", str(db), "import-shards", str(shards), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "rows": 2,
        "fingerprinted": 1,
        "failed": 1,
        "skipped": 0,
    }
    with Store(db) as store:
        assert store.get_signature("org/good") is not None
        assert store.require_model("org/gone").status == "not_found"
    assert main(["--db", str(db), "import-shards", str(shards)]) == 0
    assert "skipped 1 (already stored)" in capsys.readouterr().out


def test_import_shards_without_shards_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert (
        main(["--db", str(tmp_path / "db.sqlite"), "import-shards", str(tmp_path / "empty")]) == 1
    )
    err = capsys.readouterr().err.strip()
    assert "no Parquet shards under" in err and len(err.splitlines()) == 1
