"""Exports that open cleanly: every attribute read back through networkx, GEXF without the
hierarchy clash, DOT escaped once, every format as text for stdout."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess

import networkx as nx
import pytest

from lineage.present.export import FORMATS, _flat, export, render, to_dot
from lineage.records import Cousin, Edge, LineageGraph, Node


def _graph() -> LineageGraph:
    def node(mid, parent, created):
        return Node(mid, "org/a", parent, (parent,) if parent else (), "finetune" if parent else None,
                    0.7, 42, created, ("org/a",) if parent else (), ("missing_base",) if parent else ())  # fmt: skip

    return LineageGraph(
        nodes=(
            node("org/a", None, "2023-03-01T00:00:00Z"),
            node("user/b", "org/a", "2023-04-02T10:00:00Z"),
            node('we"ird\\x', "org/a", None),
        ),
        edges=(
            Edge(
                "org/a",
                "user/b",
                0.9,
                0.1,
                1e-30,
                -30.0,
                0.7,
                0.63,
                "finetune",
                12,
                2,
                "evidence",
                ("upload time",),
                ("x: vocabulary extended, 8 -> 16 rows",),
            ),
            Edge("org/a", 'we"ird\\x', 0.5, 0.0, 1e-9, -9.0, 0.7, 0.35, "finetune", 12, 0),
        ),  # fmt: skip
        anomalies=(),
        params={"alpha": 0.01},
        cousins=(Cousin("user/b", 'we"ird\\x', 0.8, 0.0, ("wte",)),),
    )


def _expected_nodes(doc: dict) -> dict[str, dict]:
    return {n["id"]: {k: _flat(v) for k, v in n.items() if k != "id"} for n in doc["nodes"]}


def _expected_edges(doc: dict) -> dict[tuple[str, str], dict]:
    return {
        (e["parent"], e["child"]): {
            k: _flat(v) for k, v in e.items() if k not in ("parent", "child")
        }
        for e in doc["edges"]
    }


def _same(got: dict, want: dict) -> None:
    for key, value in want.items():
        g = got.get(key, "")
        if isinstance(value, float):
            assert g == pytest.approx(value), key
        else:
            assert (g if g is not None else "") == value, key


def test_graphml_reads_back_every_attribute(tmp_path):
    (path,) = export(_graph(), "graphml", tmp_path / "g.graphml")
    g = nx.read_graphml(path)
    doc = _graph().to_json()
    for n, want in _expected_nodes(doc).items():
        _same(g.nodes[n], want)
    for (u, v), want in _expected_edges(doc).items():
        _same(g.edges[u, v], want)


def test_gexf_reads_back_every_attribute_without_a_hierarchy(tmp_path):
    (path,) = export(_graph(), "gexf", tmp_path / "g.gexf")
    text = path.read_text()
    assert "<parent " not in text and "<parents" not in text  # no GEXF hierarchy
    g = nx.read_gexf(path)
    doc = _graph().to_json()
    for n, want in _expected_nodes(doc).items():
        want["parent_ids"] = want.pop("parents")
        _same(g.nodes[n], want)
        assert g.nodes[n]["label"] == n
    assert g.nodes["user/b"]["start"] == "2023-04-02"  # a dated node: Gephi's timeline
    assert 'timeformat="date"' in text
    for (u, v), want in _expected_edges(doc).items():
        _same(g.edges[u, v], want)


def test_dot_escapes_once_and_breaks_label_lines():
    text = to_dot(_graph())
    assert '"org/a\\nroot | 42 dl"' in text  # one backslash-n: a line break in graphviz
    assert "\\\\n" not in text
    assert '"we\\"ird\\\\x"' in text  # quotes and backslashes escaped


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz is not installed")
def test_graphviz_renders_the_dot():
    out = subprocess.run(["dot", "-Tsvg"], input=to_dot(_graph()), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "org/a" in out.stdout


def _atlas_data(page: str) -> str:
    found = re.search(r'id="atlas-data">(.*?)</script>', page, re.S)
    assert found is not None, "the atlas page carries its data"
    return found.group(1)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_as_text_that_parses(fmt):
    text = render(_graph(), fmt)
    parse = {
        "json": lambda t: len(json.loads(t)["edges"]),
        "graphml": lambda t: nx.read_graphml(io.StringIO(t)).number_of_edges(),
        "gexf": lambda t: nx.read_gexf(io.BytesIO(t.encode())).number_of_edges(),
        "csv": lambda t: len(list(csv.DictReader(io.StringIO(t)))),
        "dot": lambda t: t.count(" -> ") - 1,  # the cousin line is not a parent edge
        "html": lambda t: len(json.loads(_atlas_data(t))["graph"]["edges"]),
    }[fmt]
    assert parse(text) == 2


def test_dot_names_the_method_of_a_quantized_edge():
    import dataclasses

    graph = _graph()
    quant = dataclasses.replace(graph.edges[1], relation="quantized", method="gguf:Q4_K_M")
    text = to_dot(dataclasses.replace(graph, edges=(graph.edges[0], quant)))
    assert "quantized gguf:Q4_K_M 0.50" in text
    assert "finetune 0.90" in text  # no method: the label as before
