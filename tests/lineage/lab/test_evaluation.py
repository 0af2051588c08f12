"""Evaluation metrics on hand-made cases, the baselines' building blocks, and the front end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lineage.lab import baselines
from lineage.lab.evaluation import (
    Pair,
    Rate,
    Truth,
    TruthModel,
    adjusted_rand_index,
    anomaly_scores,
    detection_by_relation,
    evaluate,
    family_ari,
    load_pairs,
    mann_whitney_auc,
    markdown_report,
    pair_auc,
    parent_accuracy,
    parse_tree,
)

ROOT = Path(__file__).resolve().parents[3]

# A small truth: two families (r1 with a fine-tune, a quantization of it and a merge; r2 alone).
MODELS = [
    TruthModel("r1", "r1", (), "root", None, "llama"),
    TruthModel("ft", "r1", ("r1",), "finetune", "finetune", "llama"),
    TruthModel("q", "r1", ("ft",), "quant_int8", "quantized", "llama"),
    TruthModel("ft2", "r1", ("r1",), "finetune", "finetune", "llama"),
    TruthModel("mg", "r1", ("ft", "ft2"), "merge", "merge", "llama"),
    TruthModel("r2", "r2", (), "root", None, "llama"),
]
TRUTH = Truth(
    {m.id: m for m in MODELS}, frozenset({("q", "missing_base"), ("mg", "undeclared_merge")}), 0
)


def _node(mid, parent=None, family=None, relation=None, parents=None):
    node = {"id": mid, "family": family, "parent": parent, "relation": relation, "confidence": 1.0,
            "downloads": 1, "created_at": "2023-01-01T00:00:00.000Z", "declared_base": []}  # fmt: skip
    if parents:
        node["parents"] = parents
    return node


def _perfect_tree() -> dict:
    nodes = []
    for m in MODELS:
        nodes.append(_node(m.id, m.parents[0] if m.parents else None, m.family, m.relation,
                           list(m.parents) if len(m.parents) > 1 else None))  # fmt: skip
    return {"nodes": nodes, "edges": []}


def _with(tree: dict, mid: str, **changes) -> dict:
    nodes = [dict(n, **changes) if n["id"] == mid else n for n in tree["nodes"]]
    return {"nodes": nodes, "edges": tree["edges"]}


# --- parent accuracy ----------------------------------------------------------------------------


def test_perfect_prediction_scores_one_everywhere():
    report = evaluate(TRUTH, _perfect_tree(), anomalies=[{"model": "q", "kind": "missing_base"},
                                                          {"model": "mg", "kind": "undeclared_merge"}])  # fmt: skip
    assert report.parents.overall == Rate(6, 6)
    assert report.parents.merge_any_parent == Rate(1, 1)
    assert report.ari == 1.0
    assert all(r.value == 1.0 for r in report.detection.values())
    assert report.anomalies["all"].precision == report.anomalies["all"].recall == 1.0


def test_a_reversed_edge_counts_wrong_twice():
    tree = _with(
        _with(_perfect_tree(), "ft", parent="q"), "q", parent=None
    )  # q -> ft instead of ft -> q
    acc = parent_accuracy(TRUTH, parse_tree(tree))
    assert acc.overall == Rate(4, 6)
    assert acc.by_kind["finetune"] == Rate(1, 2) and acc.by_kind["quant_int8"] == Rate(0, 1)


def test_a_missing_node_counts_wrong():
    tree = _perfect_tree()
    tree["nodes"] = [n for n in tree["nodes"] if n["id"] != "r2"]  # even a root must be present
    pred = parse_tree(tree)
    assert parent_accuracy(TRUTH, pred).overall == Rate(5, 6)
    # ... and the lost model is a family of its own, which here is right: ARI stays 1.
    assert family_ari(TRUTH, pred) == 1.0


def test_merges_need_the_whole_parent_set_and_report_partial_hits():
    half = _with(_perfect_tree(), "mg", parents=None, parent="ft")
    acc = parent_accuracy(TRUTH, parse_tree(half))
    assert acc.by_kind["merge"] == Rate(0, 1) and acc.merge_any_parent == Rate(1, 1)
    swapped = _with(
        _perfect_tree(), "mg", parents=["ft2", "ft"], parent="ft2"
    )  # order does not matter
    assert parent_accuracy(TRUTH, parse_tree(swapped)).by_kind["merge"] == Rate(1, 1)
    # A non-merge predicted as a merge is wrong even when one parent is right.
    double = _with(_perfect_tree(), "ft", parents=["r1", "r2"])
    assert parent_accuracy(TRUTH, parse_tree(double)).by_kind["finetune"] == Rate(1, 2)


def test_detection_needs_the_right_relation_too():
    tree = _with(_perfect_tree(), "q", relation="finetune")
    det = detection_by_relation(TRUTH, parse_tree(tree))
    assert det["quantized"] == Rate(0, 1) and det["finetune"] == Rate(2, 2)
    # A node without a relation takes the one of its incoming edge.
    tree = _with(_perfect_tree(), "q", relation=None)
    tree["edges"] = [{"parent": "ft", "child": "q", "relation": "quantized"}]
    assert detection_by_relation(TRUTH, parse_tree(tree))["quantized"] == Rate(1, 1)


# --- adjusted Rand index ------------------------------------------------------------------------


def test_ari_of_identical_partitions_is_one_whatever_the_labels():
    assert adjusted_rand_index([0, 0, 1, 1, 2], ["a", "a", "b", "b", "c"]) == 1.0
    assert adjusted_rand_index([0, 1, 2], [5, 6, 7]) == 1.0  # all singletons on both sides
    assert adjusted_rand_index([0, 0, 0], [1, 1, 1]) == 1.0


def test_ari_matches_a_hand_computation():
    # Contingency of a=[0,0,0,1,1,1] vs b=[0,0,1,1,2,2]: cells 2,1,1,2 -> index = 1 + 1 = 2.
    # Row sums 3,3 -> 3 + 3 = 6; column sums 2,2,2 -> 3; C(6,2) = 15; expected = 6*3/15 = 1.2;
    # max = (6+3)/2 = 4.5; ARI = (2 - 1.2) / (4.5 - 1.2) = 0.8 / 3.3.
    assert adjusted_rand_index([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2]) == pytest.approx(0.8 / 3.3)
    # Everything in one cluster against all singletons: no agreement beyond chance.
    assert adjusted_rand_index([0, 0, 0, 0], [0, 1, 2, 3]) == 0.0


def test_family_ari_uses_the_predicted_family_labels():
    tree = _perfect_tree()
    for n in tree["nodes"]:
        n["family"] = "one"  # everything merged into one family
    ari = family_ari(TRUTH, parse_tree(tree))
    # Truth: r1 x5, r2 x1 -> sum_a = 10; prediction one cluster -> sum_b = 15; index = 10.
    # expected = 10 * 15 / 15 = 10 = index -> ARI 0.
    assert ari == 0.0


# --- pair AUC -----------------------------------------------------------------------------------


def test_auc_of_perfectly_separated_scores_is_one_and_of_a_hand_case_is_right():
    assert mann_whitney_auc([0.9, 0.8], [0.1, 0.2, 0.3]) == 1.0
    assert mann_whitney_auc([0.1], [0.9]) == 0.0
    # Pairs (pos, neg): 0.9>0.5, 0.9>0.1, 0.5=0.5 (1/2), 0.5>0.1 -> 3.5 / 4.
    assert mann_whitney_auc([0.9, 0.5], [0.5, 0.1]) == pytest.approx(0.875)
    assert mann_whitney_auc([], [0.1]) is None


def test_pair_auc_compares_same_family_with_other_family_pairs_of_one_architecture():
    truth = Truth(
        {**TRUTH.models, "g": TruthModel("g", "g", (), "root", None, "gpt2")}, frozenset()
    )
    pairs = [Pair("r1", "ft", 0.9), Pair("ft", "r1", 0.0),  # the repeat is ignored
             Pair("r1", "r2", 0.2), Pair("ft", "r2", 0.95),
             Pair("r1", "g", 1.0)]  # other architecture: ignored  # fmt: skip
    got = pair_auc(truth, pairs)
    assert (got.n_related, got.n_unrelated) == (1, 2)
    assert got.auc == pytest.approx(0.5)


def test_pairs_load_from_csv_and_json(tmp_path):
    (tmp_path / "p.csv").write_text("a,b,overlap\nx,y,0.5\n")
    (tmp_path / "p.json").write_text(json.dumps({"pairs": [{"a": "x", "b": "y", "overlap": 0.5}]}))
    assert (
        load_pairs(tmp_path / "p.csv") == load_pairs(tmp_path / "p.json") == [Pair("x", "y", 0.5)]
    )


# --- anomalies ----------------------------------------------------------------------------------


def test_anomaly_precision_and_recall_per_kind():
    predicted = {
        ("q", "missing_base"),
        ("ft", "missing_base"),
        ("r2", "reupload"),
        ("zz", "reupload"),
    }
    scores = anomaly_scores(TRUTH, predicted)
    assert scores["missing_base"].precision == 0.5 and scores["missing_base"].recall == 1.0
    assert scores["undeclared_merge"].precision is None and scores["undeclared_merge"].recall == 0.0
    assert scores["reupload"].precision == 0.0 and scores["reupload"].recall is None
    assert (scores["all"].tp, scores["all"].fp, scores["all"].fn) == (
        1,
        2,
        1,
    )  # "zz" is not in the zoo


def test_markdown_report_has_every_table():
    report = evaluate(
        TRUTH, _perfect_tree(), anomalies=[], pairs=[Pair("r1", "ft", 1.0), Pair("r1", "r2", 0.0)]
    )
    text = markdown_report(TRUTH, [report])
    for heading in ("Summary", "by generator kind", "by relation", "Anomalies"):
        assert heading in text
    assert "| tool | 1.00 (6/6) |" in text


# --- baselines' building blocks -----------------------------------------------------------------


def test_value_sketch_keeps_the_k_smallest_distinct_hashes():
    t = torch.randn(300, 200)
    sketch = baselines.value_sketch(t, k=64)
    bits = t.view(torch.int32).flatten().numpy().astype(np.int64).view(np.uint64) + np.uint64(
        4 << 56
    )
    assert np.array_equal(sketch, np.unique(baselines._mix64(np.unique(bits)))[:64])
    assert len(baselines.value_sketch(torch.zeros(100, 100))) == 1  # one distinct value


def test_sketch_jaccard_estimates_the_value_overlap():
    a = torch.arange(20000, dtype=torch.float32)
    b = torch.arange(10000, 30000, dtype=torch.float32)  # 10000 shared values of 30000 in the union
    est = baselines.sketch_jaccard(baselines.value_sketch(a), baselines.value_sketch(b))
    assert est == pytest.approx(1 / 3, abs=0.1)
    same = baselines.value_sketch(a)
    assert baselines.sketch_jaccard(same, same) == 1.0


def test_tree_anomalies_compare_recovered_parents_with_cards():
    def model(mid, declared=()):
        return baselines.ZooModel(mid, "llama", "2023-01-01", 5, tuple(declared), None, ())

    models = {
        m.id: m
        for m in (model("a"), model("b", ["a"]), model("c"), model("d", ["c"]), model("e", ["a"]))
    }
    got = baselines.tree_anomalies(
        models, {"a": (), "b": ("a",), "c": ("a",), "d": ("b",), "e": ("a", "b")}
    )
    assert {(x["model"], x["kind"]) for x in got} == {
        ("c", "missing_base"), ("d", "declared_base_mismatch"), ("e", "undeclared_merge")}  # fmt: skip


# --- the front end on a real zoo ----------------------------------------------------------------


def test_evaluate_script_scores_a_truth_copy_perfectly_and_writes_its_block(tiny_zoo, tmp_path):
    truth = json.loads((tiny_zoo / "truth.json").read_text())
    nodes = []
    for mid, t in truth["models"].items():
        node = _node(mid, t["parents"][0] if t["parents"] else None, t["family"], t["relation"])
        if len(t["parents"]) > 1:
            node["parents"] = t["parents"]
        nodes.append(node)
    (tmp_path / "tree.json").write_text(json.dumps({"nodes": nodes, "edges": []}))
    (tmp_path / "anomalies.json").write_text(json.dumps(truth["anomalies"]))
    out = tmp_path / "eval.md"
    out.write_text(
        "# Keep me\n\n<!-- evaluation:begin -->\nold\n<!-- evaluation:end -->\n\nTail.\n"
    )
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "evaluate.py"), "--zoo", str(tiny_zoo), "--tree",
         str(tmp_path / "tree.json"), "--anomalies", str(tmp_path / "anomalies.json"), "--baselines",
         "declared", "--out", str(out)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    n = len(truth["models"])
    assert f"| tool | 1.00 ({n}/{n}) |" in done.stdout
    assert "| declared |" in done.stdout
    text = out.read_text()
    assert text.startswith("# Keep me") and text.endswith("Tail.\n") and "old" not in text


def test_baselines_produce_scoreable_trees_on_the_zoo(tiny_zoo):
    from lineage.lab.evaluation import load_truth

    truth = load_truth(tiny_zoo)
    results = {r.name: r for r in baselines.run_baselines(tiny_zoo)}
    assert set(results) == {"declared", "minhash", "mother"}
    for res in results.values():
        assert {n["id"] for n in res.tree["nodes"]} == set(truth.models)
        report = evaluate(truth, res.tree, anomalies=res.anomalies, name=res.name)
        assert 0.0 <= report.parents.overall.value <= 1.0
    declared = evaluate(truth, results["declared"].tree).parents
    # The cards are right for every model except the injected lies and omissions.
    assert 0.6 < declared.overall.value < 1.0
    # Exact-value MinHash finds the byte-identical re-uploads...
    minhash = evaluate(truth, results["minhash"].tree).parents
    assert minhash.by_kind["reupload"].value == 1.0
    # ... and L2 distance separates the families, of the models it can read (safetensors floats;
    # the quantized and exported uploads are beyond it)
    from lineage.lab.evaluation import adjusted_rand_index
    from lineage.lab.zoo_plan import FORMAT_KINDS

    readable = sorted(m for m, t in truth.models.items() if t.kind not in FORMAT_KINDS)
    family = {n["id"]: n["family"] for n in results["mother"].tree["nodes"]}
    ari = adjusted_rand_index(
        [truth.models[m].family for m in readable], [family[m] for m in readable]
    )
    assert ari > 0.9
