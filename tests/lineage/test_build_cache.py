"""A built graph is kept in the store and read back while nothing it was built from changed."""

from __future__ import annotations

import dataclasses

import pytest

from lineage.build import build_lineage
from lineage.cli.main import main
from lineage.graph import GraphParams
from lineage.records import LineageGraph
from lineage.store import Store
from tests.factory import llama_tensors, noisy, write_model


@pytest.fixture
def db(tmp_path):
    base = llama_tensors(0, layers=2, inter=64, vocab=64)
    write_model(tmp_path / "m" / "org" / "base", base)
    write_model(tmp_path / "m" / "org" / "ft", noisy(base, 0.01, 1))
    write_model(tmp_path / "m" / "other" / "root", llama_tensors(5, layers=2, inter=64, vocab=64))
    path = tmp_path / "l.db"
    assert main(["--db", str(path), "add", str(tmp_path / "m")]) == 0
    return path


def _same(a: LineageGraph, b: LineageGraph) -> bool:
    strip = ("pairs_compared", "reused")
    da, db_ = a.to_dict(), b.to_dict()
    for d in (da, db_):
        d["params"] = {k: v for k, v in d["params"].items() if k not in strip}
    return da == db_


def test_an_unchanged_store_reads_its_graph_back(db):
    with Store(db) as store:
        first = build_lineage(store, device="cpu")
        again = build_lineage(store, device="cpu")
    assert first.params["reused"] is False and again.params["reused"] is True
    assert again.params["pairs_compared"] == 0
    assert _same(first, again)
    assert LineageGraph.from_dict(first.to_dict()) == first  # the stored form is exact


def test_a_changed_model_other_params_or_no_reuse_rebuild(db):
    with Store(db) as store:
        build_lineage(store, device="cpu")
        rec = store.get_model("org/ft")
        assert rec is not None
        store.upsert_model(dataclasses.replace(rec, downloads=(rec.downloads or 0) + 500))
        assert build_lineage(store, device="cpu").params["reused"] is False
        assert build_lineage(store, device="cpu").params["reused"] is True
        assert build_lineage(store, params=GraphParams(popularity=0.5)).params["reused"] is False
        assert build_lineage(store, device="cpu", reuse=False).params["reused"] is False


def test_reading_a_stored_graph_imports_no_heavy_library(db):
    import subprocess
    import sys

    with Store(db) as store:
        build_lineage(store, device="cpu")
    code = (
        "import sys\n"
        "from lineage.store import Store\n"
        "from lineage.build import audit, build_lineage\n"
        f"store = Store({str(db)!r})\n"
        "g = build_lineage(store)\n"
        "assert g.params['reused'] is True\n"
        "assert audit(store, 'org/ft').node.parent == 'org/base'\n"
        "print(sorted(m for m in ('torch', 'scipy', 'networkx', 'pandas') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
