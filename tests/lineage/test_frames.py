"""DataFrames of a small real store: models, signatures, pairs, and the graph's own tables."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

import lineage
from lineage.build import build_lineage
from lineage.frames import (
    download_bucket,
    models_frame,
    pairs_frame,
    quality_flag,
    signatures_frame,
)
from lineage.pipeline import add_local, fingerprint_models
from lineage.records import Anomaly, LineageGraph, Relative
from lineage.store import Store
from tests.factory import llama_tensors, noisy, write_model

CARD = "---\nbase_model: org/base\n---\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """org/base, its fine-tune org/ft (declaring it), an unrelated other/root: added, built."""
    root = tmp_path_factory.mktemp("frames")
    base = llama_tensors(0, layers=2, inter=64, vocab=64)
    write_model(root / "m" / "org" / "base", base)
    write_model(root / "m" / "org" / "ft", noisy(base, 0.01, 1), card=CARD)
    write_model(root / "m" / "other" / "root", llama_tensors(5, layers=2, inter=64, vocab=64))
    store = Store(root / "l.db")
    add_local(store, [root / "m"])
    fingerprint_models(store, device="cpu")
    graph = build_lineage(store, device="cpu")
    yield store, graph
    store.close()


def test_models_frame_one_row_per_model_with_lists_kept(built):
    store, _ = built
    df = models_frame(store)
    assert list(df["id"]) == ["org/base", "org/ft", "other/root"]
    ft = df.set_index("id").loc["org/ft"]
    assert ft["declared_bases"] == ["org/base"]
    assert len(ft["declared_relations"]) == 1
    assert isinstance(ft["tags"], list)
    assert pd.api.types.is_datetime64_any_dtype(df["created_at"])


def test_signatures_frame_says_what_was_read(built):
    store, _ = built
    df = signatures_frame(store)
    assert list(df.columns) == [
        "model",
        "revision",
        "arch",
        "slots",
        "bytes_read",
        "params",
        "created_at",
    ]
    assert list(df["model"]) == ["org/base", "org/ft", "other/root"]
    assert (df["slots"] > 0).all() and (df["bytes_read"] > 0).all()
    assert df["arch"].nunique() == 1  # one architecture: all three are compared


def test_pairs_frame_from_a_store_matches_the_explicit_form(built):
    store, graph = built
    from_store = pairs_frame(store)
    explicit = pairs_frame(store.pairs(), store.models(), graph.to_json())
    pd.testing.assert_frame_equal(from_store, explicit)
    pd.testing.assert_frame_equal(from_store, pairs_frame(store, tree=graph))
    pair = from_store.set_index(["a", "b"]).loc[("org/base", "org/ft")]
    assert pair["same_family"] and pair["declarer"] == "org/ft"
    assert pair["overlap"] > 0.5
    assert not from_store.set_index(["a", "b"]).loc[("org/base", "other/root"), "same_family"]


def test_pairs_frame_needs_models_and_tree_with_bare_pairs(built):
    store, _ = built
    with pytest.raises(TypeError, match="models and the tree"):
        pairs_frame(store.pairs())


def test_buckets_and_flags_treat_missing_counts_alike():
    assert [download_bucket(d) for d in (0, 10, 11, 100, 1000, 1001)] == [
        "0-10",
        "0-10",
        "10-100",
        "10-100",
        "100-1k",
        ">1k",
    ]
    for missing in (None, float("nan"), pd.NA):
        assert download_bucket(missing) is None and quality_flag(missing) is None
    assert [quality_flag(d) for d in (5, 50, 500)] == ["low", "medium", "high"]


def test_graph_frames_one_row_per_record_lists_kept(built):
    _, graph = built
    nodes = graph.nodes_frame()
    assert len(nodes) == len(graph.nodes)
    ft = nodes.set_index("id").loc["org/ft"]
    assert ft["parent"] == "org/base" and ft["parents"] == ["org/base"]
    assert ft["declared_base"] == ["org/base"]
    edges = graph.edges_frame()
    assert len(edges) == len(graph.edges) == 1
    edge = edges.iloc[0]
    assert (edge["parent"], edge["child"]) == ("org/base", "org/ft")
    assert isinstance(edge["direction_by"], list) and isinstance(edge["notes"], list)
    # the notebook example of the README: a groupby over the edges
    assert edges.groupby("relation")["overlap"].mean().index.tolist() == [edge["relation"]]


def test_anomalies_frame_flattens_the_first_relative():
    rel = (
        Relative("org/x", "derived", 0.9, 0.1, 1e-30),
        Relative("org/y", "unrelated", 0.01, 0, 1),
    )
    graph = LineageGraph(
        nodes=(),
        edges=(),
        anomalies=(
            Anomaly("org/a", "undeclared_base", "high", 0.9, "derives from org/x", ("org/x",), rel),
            Anomaly("org/b", "copy", "low", 0.2, "words only"),
        ),
    )
    df = graph.anomalies_frame()
    assert list(df["model"]) == ["org/a", "org/b"]
    a, b = df.iloc[0], df.iloc[1]
    assert a["related"] == ["org/x"] and a["n_relatives"] == 2
    assert a["relatives"][1]["model"] == "org/y"
    assert (a["relative_model"], a["relative_verdict"], a["relative_overlap"]) == (
        "org/x",
        "derived",
        0.9,
    )
    assert b["n_relatives"] == 0 and pd.isna(b["relative_model"])
    assert pd.isna(b["relative_overlap"])


def test_empty_graph_frames_keep_their_columns():
    graph = LineageGraph(nodes=(), edges=(), anomalies=())
    assert "parents" in graph.nodes_frame().columns
    assert "overlap" in graph.edges_frame().columns
    assert "relative_p_value" in graph.anomalies_frame().columns


def test_public_surface_and_no_pandas_at_import():
    assert lineage.pairs_frame is pairs_frame and lineage.models_frame is models_frame
    code = (
        "import sys, lineage.records, lineage.frames, lineage.present.report_frame as r\n"
        "print('pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # report_frame re-exports the core's frame; neither imports pandas until a frame is built
    assert out.stdout.strip() == "False"
