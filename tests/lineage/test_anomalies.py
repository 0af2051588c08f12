"""The anomaly rules one by one, on hand-made graphs: each fires on its case and not on a near
miss; the rules table is the one list of kinds."""

from __future__ import annotations

import pytest

import lineage.records
from fingerprint.comparison import PairResult
from hub.records import DeclaredBase, ModelRecord
from lineage.adapter_links import AdapterFinding
from lineage.anomalies import ANOMALY_KINDS, RULES, find_anomalies
from lineage.lab import evaluation
from lineage.present import plots_tree
from lineage.records import Anomaly, Edge, LineageGraph, Node


def _pair(
    a: str, b: str, overlap: float, identity: float = 0.0, verdict: str = "derived"
) -> PairResult:
    return PairResult(
        a, b, overlap, overlap, overlap, 0.0, identity, 1e-30, -30.0, 8, 8, 8, verdict, ()
    )


def _edge(parent: str, child: str, overlap: float, relation: str = "finetune", identity=0.0):
    return Edge(parent, child, overlap, identity, 1e-30, -30.0, 1.0, overlap, relation, 8)


def _world(
    *,
    parents: tuple[str, ...] = ("base",),
    declared: tuple[str, ...] = (),
    downloads: int = 50,
    overlap: float = 0.6,
    identity: float = 0.0,
    relation: str = "finetune",
    family: str = "base",
    extra: dict[str, float] | None = None,
    declared_pairs: dict[tuple[str, str], float] | None = None,
    verdict: str = "derived",
    adapter: str | None = None,
) -> list[Anomaly]:
    """Anomalies of model "m" with recovered `parents` (edges at `overlap`), its card declaring
    `declared`. Roots "base", "base2" (family "base") and "other" (family "other") exist;
    `extra` adds detailed pairs (other id -> overlap with m), `declared_pairs` the declared
    (base, m) comparisons handed to the rules; `verdict` is the parents' pairs' verdict;
    `adapter` makes m an adapter-only repo with that finding of `lineage.adapter_links`."""
    roots = {"base": "base", "base2": "base", "other": "other"}
    nodes = [Node(r, fam, None, (), None, 1.0, 1000, None, ()) for r, fam in roots.items()]
    rel = "merge" if len(parents) == 2 else relation
    nodes.append(
        Node(
            "m",
            family if parents else "m",
            parents[0] if parents else None,
            parents,
            rel if parents else None,
            1.0,
            downloads,
            None,
            declared,
        )
    )
    edges = [_edge(p, "m", overlap, rel, identity) for p in parents]
    pairs = [_pair(p, "m", overlap, identity, verdict) for p in parents]
    pairs += [_pair(o, "m", v) for o, v in (extra or {}).items()]
    records = {n.id: ModelRecord(n.id, downloads=n.downloads) for n in nodes}
    records["m"] = ModelRecord(
        "m",
        downloads=downloads,
        declared_bases=tuple(DeclaredBase(d) for d in declared),
        extra={"adapter": True} if adapter else {},
    )
    graph = LineageGraph(tuple(nodes), tuple(edges), ())
    given = {k: _pair(*k, v) for k, v in (declared_pairs or {}).items()}
    findings = [AdapterFinding("m", adapter, declared[0] if declared else None, "its files say")]
    return find_anomalies(graph, records, pairs, given, findings if adapter else ())


def _kinds(found: list[Anomaly]) -> list[str]:
    assert {a.model for a in found} <= {"m"}
    return [a.kind for a in found]


def _one(found: list[Anomaly], kind: str) -> Anomaly:
    (hit,) = [a for a in found if a.kind == kind]
    return hit


# (rule, world that fires it, near miss that must not)
CASES = {
    "reupload": (
        {
            "relation": "copy",
            "identity": 0.995,
            "overlap": 1.0,
            "verdict": "identical",
            "declared": ("base",),
        },
        {
            "relation": "copy",
            "identity": 0.98,
            "overlap": 1.0,
            "verdict": "identical",
            "declared": ("base",),
        },
    ),
    "suspicious_copy": (
        {"downloads": 9, "overlap": 0.985},
        {"downloads": 10, "overlap": 0.985},
    ),
    "missing_base": ({}, {"declared": ("base",)}),
    "undeclared_merge": (
        {"parents": ("base", "base2"), "declared": ("base",), "overlap": 0.7},
        {"parents": ("base", "base2"), "declared": ("base", "base2"), "overlap": 0.7},
    ),
    "declared_base_mismatch": (
        {"declared": ("base2",), "extra": {"base2": 0.3}},
        {"declared": ("base",)},
    ),
    "mislabeled": (
        {"declared": ("other",), "downloads": 101, "extra": {"other": 0.05}},
        {"declared": ("other",), "downloads": 100, "extra": {"other": 0.05}},
    ),
    # an adapter-only repo's own files: only the accusing findings are anomalies
    "adapter_base_mismatch": (
        {"parents": (), "declared": ("base",), "adapter": "adapter_base_mismatch"},
        {"parents": (), "declared": ("base",), "adapter": "adapter_unread"},
    ),
    "adapter_not_an_update": (
        {"parents": (), "declared": ("base",), "adapter": "adapter_not_an_update"},
        {"parents": (), "declared": ("base",), "adapter": "adapter_base_missing"},
    ),
}


def test_every_rule_has_a_case():
    assert set(CASES) == set(ANOMALY_KINDS)


def test_an_adapter_left_a_root_is_not_a_base_mismatch():
    """Finding no parent for a model that declares a base is a mismatch, unless the model is an
    adapter-only repo, whose factors share no weight with any base."""
    world = {"parents": (), "declared": ("base",), "extra": {"base": 0.1}}
    assert "declared_base_mismatch" in _kinds(_world(**world))
    assert "declared_base_mismatch" not in _kinds(_world(**world, adapter="adapter_unread"))


@pytest.mark.parametrize("kind", sorted(CASES))
def test_rule_fires_on_its_case_and_not_on_a_near_miss(kind):
    hit, miss = CASES[kind]
    assert kind in _kinds(_world(**hit))
    assert kind not in _kinds(_world(**miss))


def test_reupload_needs_equal_bytes_and_shapes_everywhere():
    # every window identical but a tensor grew (rows appended): the comparison says "derived"
    grown = {"relation": "copy", "identity": 1.0, "overlap": 1.0, "verdict": "derived"}
    assert "reupload" not in _kinds(_world(**grown))
    assert "reupload" in _kinds(_world(**grown | {"verdict": "identical"}))


def test_reupload_is_high_without_a_declared_base():
    copy = {"relation": "copy", "identity": 1.0, "overlap": 1.0, "verdict": "identical"}
    found = _world(**copy)
    assert _one(found, "reupload").severity == "high"
    assert _one(found, "reupload").evidence.startswith("weights byte-identical to older base (")
    assert _one(_world(**copy, declared=("base",)), "reupload").severity == "medium"


def test_suspicious_copy_needs_a_near_copy_that_is_not_quantized():
    assert "suspicious_copy" not in _kinds(_world(downloads=2, overlap=0.98))
    assert "suspicious_copy" not in _kinds(_world(downloads=2, overlap=0.99, relation="quantized"))
    # a declared near-copy that is not byte-identical is a light fine-tune, not a copy
    assert "suspicious_copy" not in _kinds(_world(downloads=2, overlap=0.99, declared=("base",)))
    assert _one(_world(downloads=2, overlap=0.99), "suspicious_copy").score == 0.99


def test_declared_base_mismatch_is_high_only_across_families():
    same = _one(_world(declared=("base2",), extra={"base2": 0.3}), "declared_base_mismatch")
    assert (same.severity, same.score) == ("medium", 0.6)
    assert same.related == ("base", "base2")
    foreign = _one(_world(declared=("other",), extra={"other": 0.3}), "declared_base_mismatch")
    assert (foreign.severity, foreign.score) == ("high", 1.0)


def test_a_merge_that_leaves_a_parent_out_is_not_also_a_mismatch():
    found = _world(parents=("base", "base2"), declared=("base",), overlap=0.7)
    assert _kinds(found) == ["undeclared_merge"]
    assert _one(found, "undeclared_merge").evidence.endswith("declares only base, not base2")


def test_rules_read_the_declared_pairs_they_are_given_and_compute_none():
    # the declared base is not among the detailed pairs: its numbers come from `declared`
    world = {"declared": ("other",), "downloads": 500}
    given = _world(**world, declared_pairs={("other", "m"): 0.02})
    assert _one(given, "mislabeled").score == 0.98
    assert "declares other (overlap 0.020" in _one(given, "declared_base_mismatch").evidence
    # not given: not comparable, and nothing is guessed
    missing = _world(**world)
    assert "mislabeled" not in _kinds(missing)
    assert "declares other (not comparable)" in _one(missing, "declared_base_mismatch").evidence


def test_a_model_s_anomalies_come_weights_first_then_the_card():
    found = _world(relation="copy", identity=1.0, overlap=1.0, downloads=2, verdict="identical")
    assert _kinds(found) == ["reupload", "suspicious_copy", "missing_base"]
    order = [r.kind for r in sorted(RULES, key=lambda r: r.order)]
    assert order.index("reupload") < order.index("missing_base") < order.index("mislabeled")


def test_the_rules_table_is_the_one_list_of_kinds():
    assert tuple(r.kind for r in RULES) == ANOMALY_KINDS
    assert len(set(ANOMALY_KINDS)) == len(RULES)
    assert sorted(r.order for r in RULES) == list(range(len(RULES)))
    for r in RULES:
        assert r.help and "\n" not in r.help and r.label
    # the evaluation and the plot labels read the same table; records holds no second copy
    assert not hasattr(lineage.records, "ANOMALY_KINDS")
    assert evaluation.ANOMALY_KINDS is ANOMALY_KINDS
    assert {r.kind: r.label for r in RULES} == plots_tree.ANOMALY_SHORT


def test_severity_order_and_threshold():
    from lineage.anomalies import at_least, by_severity
    from lineage.records import Anomaly

    found = [
        Anomaly("b", "reupload", "low", 0.5, "e"),
        Anomaly("a", "missing_base", "medium", 0.9, "e"),
        Anomaly("c", "declared_base_mismatch", "high", 0.6, "e"),
        Anomaly("d", "missing_base", "medium", 0.95, "e"),
    ]
    assert [a.model for a in by_severity(found)] == ["c", "d", "a", "b"]
    assert [a.model for a in at_least(found, "medium")] == ["a", "c", "d"]
    assert at_least(found, "low") == found
