"""The graph layer on real signatures of tiny models with known lineage and Hub-like metadata."""

from __future__ import annotations

import dataclasses
import json

import networkx as nx
import numpy as np
import pytest
import torch

from fingerprint.signature import compute_signature
from hub.local import open_local_model
from hub.records import DeclaredBase
from lineage.allpairs import declared_pairs, detailed_pairs, significant_pairs
from lineage.anomalies import ANOMALY_KINDS, find_anomalies
from lineage.graph import (
    EVIDENCE,
    Confidence,
    GraphParams,
    build_graph,
    detail_top,
    orientation,
    recover,
    with_anomalies,
)
from lineage.lab.synthetic import synthetic_signatures
from lineage.present.export import FORMATS, export, to_networkx
from lineage.records import RELATIONS
from tests.factory import llama_tensors, noisy, write_model


def _int8(t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for n, v in t.items():
        if v.ndim == 2 and "embed" not in n:
            scale = v.abs().amax(dim=1, keepdim=True) / 127
            v = (v / scale).round() * scale
        out[n] = v
    return out


# (id, parent(s), how, created, downloads, declared)
PLAN = [
    ("org/base", (), "root", "2024-01-01", 50_000, ()),
    ("org/other-base", (), "root", "2024-01-02", 20_000, ()),
    ("org/instruct", ("org/base",), "ft", "2024-02-01", 3_000, ("org/base",)),
    ("u1/chat", ("org/instruct",), "ft", "2024-03-01", 40, ("org/instruct",)),
    ("u2/bf16", ("org/instruct",), "cast", "2024-03-02", 5, ("org/instruct",)),
    ("u3/int8", ("org/base",), "int8", "2024-03-03", 3, ("org/base",)),
    ("u4/partial", ("org/base",), "partial", "2024-03-04", 8, ("org/base",)),
    ("u5/copy", ("org/base",), "copy", "2024-03-05", 2, ()),
    ("u6/mislabel", ("org/base",), "ft2", "2024-03-06", 500, ("org/other-base",)),
    (
        "u7/merge",
        ("org/instruct", "u4/partial"),
        "merge",
        "2024-04-01",
        1,
        ("org/instruct", "u4/partial"),
    ),
]


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    root = tmp_path_factory.mktemp("graphzoo")
    made: dict[str, dict[str, torch.Tensor]] = {}
    for i, (mid, parents, how, *_rest) in enumerate(PLAN):
        if how == "root":
            t = llama_tensors(10 + i)
        elif how in ("ft", "ft2"):
            t = noisy(made[parents[0]], 0.2 if how == "ft" else 0.4, seed=i)
        elif how == "cast":
            t = {n: v.bfloat16() for n, v in made[parents[0]].items()}
        elif how == "int8":
            t = _int8(made[parents[0]])
        elif how == "partial":
            moved = noisy(made[parents[0]], 0.3, seed=i)
            t = {n: moved[n] if ".layers.0." in n else v for n, v in made[parents[0]].items()}
        elif how == "copy":
            t = made[parents[0]]
        else:  # merge
            a, b = made[parents[0]], made[parents[1]]
            t = {n: (a[n].float() + b[n].float()) / 2 for n in a}
        made[mid] = {n: v.float() for n, v in t.items()}
        write_model(root / mid, t)
    records, sigs = {}, {}
    for mid, _parents, _how, created, downloads, declared in PLAN:
        model = open_local_model(root / mid, model_id=mid)
        records[mid] = dataclasses.replace(
            model.record,
            created_at=created + "T00:00:00Z",
            downloads=downloads,
            declared_bases=tuple(DeclaredBase(d) for d in declared),
        )
        sigs[mid] = compute_signature(model, device="cpu")
    return records, sigs


@pytest.fixture(scope="module")
def graph(zoo):
    records, sigs = zoo
    return build_graph(records, sigs, device="cpu")


def test_parents_and_relations_are_recovered(graph):
    nodes = {n.id: n for n in graph.nodes}
    for mid, parents, *_ in PLAN:
        assert set(nodes[mid].parents) == set(parents), mid
    relation = {n.id: n.relation for n in graph.nodes}
    assert relation["org/base"] is None and relation["org/other-base"] is None
    assert relation["u2/bf16"] == "copy"
    assert relation["u3/int8"] == "quantized"
    assert relation["u4/partial"] == "partial"
    assert relation["u5/copy"] == "copy"
    assert relation["u7/merge"] == "merge"
    assert relation["u1/chat"] == "finetune"
    assert set(relation.values()) - {None} <= set(RELATIONS)


def test_families_and_confidence(graph):
    fam = {n.id: n.family for n in graph.nodes}
    assert fam["org/other-base"] == "org/other-base"
    assert {fam[m] for m, *_ in PLAN if m != "org/other-base"} == {"org/base"}
    conf = {n.id: n.confidence for n in graph.nodes}
    assert conf["org/instruct"] == 1.0 and conf["u1/chat"] == 0.7 and conf["u5/copy"] == 0.3
    assert Confidence(buckets=((1000, 0.9),), floor=0.1)(500) == 0.1


def test_anomalies_name_what_does_not_add_up(graph):
    found = {(a.model, a.kind) for a in graph.anomalies}
    assert ("u5/copy", "reupload") in found
    assert ("u5/copy", "missing_base") in found
    assert ("u5/copy", "suspicious_copy") in found
    assert ("u6/mislabel", "declared_base_mismatch") in found
    assert ("u6/mislabel", "mislabeled") in found
    # nothing is flagged on models whose cards tell the truth
    honest = {
        "org/base",
        "org/other-base",
        "org/instruct",
        "u1/chat",
        "u2/bf16",
        "u4/partial",
        "u7/merge",
    }
    assert not {m for m, _ in found} & honest
    for a in graph.anomalies:
        assert a.kind in ANOMALY_KINDS and a.severity in ("high", "medium", "low")
        assert 0.0 <= a.score <= 1.0 and a.evidence


def test_the_steps_one_by_one_give_build_graph(zoo, graph):
    records, sigs = zoo
    params = GraphParams()
    stats = significant_pairs(sigs, alpha=params.alpha, device="cpu")
    pairs = detailed_pairs(sigs, stats, top=detail_top(stats, params))
    bare = recover(records, sigs, stats, pairs, params=params)
    assert bare.anomalies == () and not any(n.anomalies for n in bare.nodes)
    # the wrong card's base is not significant, so only it is compared for the rules
    declared = declared_pairs(records, sigs, pairs)
    assert list(declared) == [("org/other-base", "u6/mislabel")]
    full = with_anomalies(bare, find_anomalies(bare, records, pairs, declared))
    assert full == graph
    assert json.dumps(full.to_json()) == json.dumps(graph.to_json())
    flagged = {n.id: n.anomalies for n in full.nodes}
    assert flagged["u5/copy"] == ("reupload", "suspicious_copy", "missing_base")


def test_orientation_is_antisymmetric_and_zero_without_evidence(zoo):
    records, sigs = zoo
    params = GraphParams()
    assert orientation("org/base", "org/instruct", records, sigs, params) > 0
    assert orientation("u1/chat", "org/instruct", records, sigs, params) < 0
    for u, v in [("org/base", "u3/int8"), ("org/instruct", "u2/bf16"), ("u4/partial", "u7/merge")]:
        assert orientation(u, v, records, sigs, params) == -orientation(v, u, records, sigs, params)
    same = dataclasses.replace(records["org/base"], id="twin")
    assert orientation("org/base", "twin", {**records, "twin": same},
                       {**sigs, "twin": sigs["org/base"]}, params) == 0.0  # fmt: skip
    assert [e.name for e in EVIDENCE][:2] == ["upload time", "declared base"]


def test_store_build_equals_build_graph_on_the_same_signatures(tmp_path):
    from lineage import pipeline
    from lineage.build import build_lineage
    from lineage.catalogue import load_inputs
    from lineage.store import Store

    zoo = tmp_path / "zoo"
    base = llama_tensors(2, layers=1)
    write_model(zoo / "org/a", base)
    write_model(zoo / "org/b", noisy(base, 0.2, seed=1))
    write_model(zoo / "org/c", base)
    write_model(zoo / "org/d", llama_tensors(8, layers=1))
    with Store(tmp_path / "l.db") as store:
        pipeline.add_local(store, [zoo])
        pipeline.fingerprint_models(store, device="cpu")
        built = build_lineage(store, device="cpu")
        records, sigs = load_inputs(store)
    direct = build_graph(records, sigs, device="cpu")
    assert built.anomalies == direct.anomalies and built.anomalies
    assert built.to_json() == direct.to_json() | {"params": built.to_json()["params"]}
    assert built.params == direct.params | {
        "pairs_compared": built.params["pairs_compared"],
        "reused": False,
    }


def test_json_follows_the_contract(graph):
    doc = json.loads(json.dumps(graph.to_json()))
    for n in doc["nodes"]:
        assert {
            "id",
            "family",
            "parent",
            "relation",
            "confidence",
            "downloads",
            "created_at",
            "declared_base",
        } <= set(n)
        assert isinstance(n["declared_base"], list)
    for e in doc["edges"]:
        assert {
            "parent",
            "child",
            "overlap",
            "identity",
            "p_value",
            "confidence",
            "relation",
        } <= set(e)
    roots = [n for n in doc["nodes"] if n["parent"] is None]
    assert {n["id"] for n in roots} == {"org/base", "org/other-base"}


@pytest.mark.parametrize("fmt", FORMATS)
def test_exports_open_in_networkx_again(graph, tmp_path, fmt):
    paths = export(graph, fmt, tmp_path / f"tree.{fmt}")
    reference = to_networkx(graph)
    if fmt == "graphml":
        back = nx.read_graphml(paths[0])
    elif fmt == "gexf":
        back = nx.read_gexf(paths[0])
    elif fmt == "json":
        doc = json.loads(paths[0].read_text())
        back = nx.DiGraph((e["parent"], e["child"]) for e in doc["edges"])
        back.add_nodes_from(n["id"] for n in doc["nodes"])
    elif fmt == "csv":
        import pandas as pd

        nodes, edges = (pd.read_csv(p) for p in paths)
        back = nx.from_pandas_edgelist(edges, "parent", "child", create_using=nx.DiGraph)
        back.add_nodes_from(nodes["id"])
    elif fmt == "html":  # the atlas carries the same JSON tree in its data element
        page = paths[0].read_text()
        data = page.split('id="atlas-data">', 1)[1].split("</script>", 1)[0]
        doc = json.loads(data)["graph"]
        back = nx.DiGraph((e["parent"], e["child"]) for e in doc["edges"])
        back.add_nodes_from(n["id"] for n in doc["nodes"])
    else:
        text = paths[0].read_text()
        assert text.startswith("digraph") and text.count("->") == reference.number_of_edges()
        return
    assert set(back.nodes) == set(reference.nodes)
    assert set(back.edges) == set(reference.edges)
    if fmt in ("graphml", "gexf"):
        u, v = next(iter(reference.edges))
        assert float(back.edges[u, v]["overlap"]) == pytest.approx(reference.edges[u, v]["overlap"])


def test_family_filter_keeps_one_family(graph):
    doc = graph.to_json("org/other-base")
    assert [n["id"] for n in doc["nodes"]] == ["org/other-base"] and doc["edges"] == []


@pytest.mark.parametrize("exact_limit", [10_000, 50])
def test_significant_pairs_stay_within_families(exact_limit):
    sigs, family = synthetic_signatures(200, 8, slots=16, seed=4)
    stats = significant_pairs(sigs, exact_limit=exact_limit, device="cpu")
    assert stats.mode == ("exact" if exact_limit > 200 else "sampled")
    pairs = list(zip(stats.i.tolist(), stats.j.tolist(), strict=True))
    assert pairs
    assert all(family[stats.ids[i]] == family[stats.ids[j]] for i, j in pairs)
    assert np.all(stats.p_value <= stats.alpha_pair)


def test_pair_results_are_cached_and_recomputed_only_for_changed_models(tmp_path):
    from lineage import pipeline
    from lineage.build import build_lineage
    from lineage.store import Store

    zoo = tmp_path / "zoo"
    base = llama_tensors(1, layers=1)
    write_model(zoo / "org/a", base)
    write_model(zoo / "org/b", noisy(base, 0.2, seed=1))
    write_model(zoo / "org/c", noisy(base, 0.2, seed=2))
    write_model(zoo / "org/d", llama_tensors(9, layers=1))
    with Store(tmp_path / "l.db") as store:
        pipeline.add_local(store, [zoo])
        pipeline.fingerprint_models(store, device="cpu")
        first = build_lineage(store, device="cpu")
        assert first.params["pairs_compared"] == 6  # every pair once: related or background
        again = build_lineage(store, device="cpu", reuse=False)  # the pair cache, not the graph's
        assert again.params["pairs_compared"] == 0
        assert again.to_json() == first.to_json() | {"params": again.to_json()["params"]}
        write_model(zoo / "org/c", noisy(base, 0.3, seed=3))  # c changes
        pipeline.add_local(store, [zoo])
        pipeline.fingerprint_models(store, device="cpu")
        third = build_lineage(store, device="cpu")
        assert third.params["pairs_compared"] == 3  # only the pairs with c
