"""How each edge's direction was decided: "evidence" with the rows that oriented it, or
"unknown" when only a tie-breaker (kurtosis, the branching) did; carried into every export."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import networkx as nx
import pytest

from fingerprint.signature import compute_signature
from hub.local import open_local_model
from lineage.graph import GraphParams, build_graph, direction_of
from lineage.present.export import export, to_dot
from lineage.records import Edge, LineageGraph, Node
from tests.factory import llama_tensors, noisy, write_model


def _pair_world(root: Path, days: tuple[str | None, str | None], card: str | None = None):
    """A base and a noisy fine-tune of it, same dtype, no downloads; (records, sigs)."""
    base = llama_tensors(7, layers=2)
    models = {"org/base": (base, days[0], None), "u/tuned": (noisy(base, 0.2, seed=1), days[1], card)}  # fmt: skip
    records, sigs = {}, {}
    for mid, (tensors, day, readme) in models.items():
        model = open_local_model(write_model(root / mid, tensors, card=readme), model_id=mid)
        created = f"{day}T00:00:00Z" if day else None
        records[mid] = dataclasses.replace(model.record, created_at=created, downloads=0)
        sigs[mid] = compute_signature(model, device="cpu")
    return records, sigs


def _only_edge(records, sigs) -> Edge:
    (edge,) = build_graph(records, sigs, device="cpu").edges
    return edge


def test_an_edge_nothing_orients_has_an_unknown_direction(tmp_path):
    records, sigs = _pair_world(tmp_path, (None, None))
    edge = _only_edge(records, sigs)
    assert (edge.direction, edge.direction_by) == ("unknown", ())
    # either way round: a guess is a guess
    assert direction_of(edge.child, edge.parent, records, sigs, GraphParams()) == ("unknown", ())


def test_upload_dates_orient_an_edge_by_evidence(tmp_path):
    records, sigs = _pair_world(tmp_path, ("2024-01-01", "2024-06-01"))
    edge = _only_edge(records, sigs)
    assert (edge.parent, edge.child) == ("org/base", "u/tuned")
    assert (edge.direction, edge.direction_by) == ("evidence", ("upload time",))


def test_every_row_that_puts_the_parent_first_is_named(tmp_path):
    card = "---\nbase_model: org/base\n---\n"
    records, sigs = _pair_world(tmp_path, ("2024-01-01", "2024-06-01"), card=card)
    edge = _only_edge(records, sigs)
    assert edge.direction_by == ("upload time", "declared base")


def test_evidence_against_the_edge_is_no_evidence_for_it(tmp_path):
    records, sigs = _pair_world(tmp_path, ("2024-01-01", "2024-06-01"))
    got = direction_of("u/tuned", "org/base", records, sigs, GraphParams())
    assert got == ("unknown", ())


def test_the_direction_is_in_the_json_contract():
    doc = _graph().to_json()
    assert [(e["direction"], e["direction_by"]) for e in doc["edges"]] == [
        ("evidence", ["upload time", "declared base"]),
        ("unknown", []),
    ]
    json.dumps(doc)  # plain JSON types only


def test_an_edge_built_without_knowing_claims_no_evidence():
    assert Edge("a", "b", 0.5, 0.0, 1e-30, -30.0, 1.0, 0.5, "finetune", 8).direction == "unknown"


# --- exports -------------------------------------------------------------------------------


def _node(mid: str, parent: str | None) -> Node:
    return Node(mid, "a", parent, (parent,) if parent else (), "finetune" if parent else None,
                1.0, 10, None, ())  # fmt: skip


def _edge(parent: str, child: str, direction: str, by: tuple[str, ...]) -> Edge:
    return Edge(parent, child, 0.5, 0.0, 1e-30, -30.0, 1.0, 0.5, "finetune", 8, 0, direction, by)


def _graph() -> LineageGraph:
    return LineageGraph(
        nodes=(_node("a", None), _node("b", "a"), _node("c", "a")),
        edges=(
            _edge("a", "b", "evidence", ("upload time", "declared base")),
            _edge("a", "c", "unknown", ()),
        ),
        anomalies=(),
    )


_EXPECTED = {("a", "b"): ("evidence", "upload time,declared base"), ("a", "c"): ("unknown", "")}


@pytest.mark.parametrize("fmt, read", [("graphml", nx.read_graphml), ("gexf", nx.read_gexf)])
def test_graph_files_carry_the_direction_back_into_networkx(tmp_path, fmt, read):
    (path,) = export(_graph(), fmt, tmp_path / f"g.{fmt}")
    g = read(path)
    got = {(u, v): (d["direction"], d.get("direction_by", "")) for u, v, d in g.edges(data=True)}
    assert got == _EXPECTED


def test_csv_edges_carry_the_direction(tmp_path):
    _, edges = export(_graph(), "csv", tmp_path / "g.csv")
    with edges.open() as f:
        rows = list(csv.DictReader(f))
    got = {(r["parent"], r["child"]): (r["direction"], r["direction_by"]) for r in rows}
    assert got == _EXPECTED


def test_json_export_carries_the_direction(tmp_path):
    (path,) = export(_graph(), "json", tmp_path / "g.json")
    edges = json.loads(path.read_text())["edges"]
    assert [e["direction"] for e in edges] == ["evidence", "unknown"]


def test_dot_draws_an_unknown_direction_without_an_arrow():
    lines = {ln.split(" [")[0].strip(): ln for ln in to_dot(_graph()).splitlines() if "->" in ln}
    assert "dir=none" not in lines['"a" -> "b"'] and "dashed" not in lines['"a" -> "b"']
    assert "style=dashed, dir=none" in lines['"a" -> "c"']


def test_dot_draws_cousins_as_undirected_dotted_lines_and_json_lists_them():
    from lineage.records import Cousin

    g = _graph()
    g = LineageGraph(g.nodes, g.edges, (), cousins=(Cousin("b", "c", 0.9, 0.0, ("wte",)),))
    lines = [ln for ln in to_dot(g).splitlines() if "cousin" in ln]
    assert lines == [
        '  "b" -> "c" [label="cousin 0.90", style=dotted, dir=none, color=gray, constraint=false];'
    ]
    assert g.to_json()["cousins"] == [
        {"a": "b", "b": "c", "overlap": 0.9, "p_value": 0.0, "shared": ["wte"]}
    ]
    assert g.to_json(family="zzz")["cousins"] == []
