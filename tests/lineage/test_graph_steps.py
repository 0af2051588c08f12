"""Graph steps on hand-made data: merges, families, parent scores and the detail budget."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from fingerprint.comparison import PairResult
from hub.records import DeclaredBase, ModelRecord
from lineage.allpairs import PairStats
from lineage.graph import (
    GraphParams,
    copy_classes,
    detail_top,
    drift,
    families,
    parent_score,
    second_parents,
)


def _pair(
    a: str, b: str, overlap: float, identity: float = 0.0, verdict: str = "derived"
) -> PairResult:
    return PairResult(
        a, b, overlap, overlap, overlap, 0.0, identity, 1e-30, -30.0, 8, 8, 8, verdict, ()
    )


def _merge_world(parents_apart: float, declared: tuple[str, ...] = ()):
    """m's main parent is a; b is another candidate; m is at overlap 0.5 from both, and a and b
    are at `parents_apart` from each other."""
    cand = nx.DiGraph([("a", "m"), ("b", "m")])
    by_pair = {frozenset(("a", "m")): _pair("a", "m", 0.5), frozenset(("b", "m")): _pair("b", "m", 0.5)}  # fmt: skip
    overlap = {frozenset(("a", "b")): parents_apart}
    records = {
        "a": ModelRecord("a"),
        "b": ModelRecord("b"),
        "m": ModelRecord("m", declared_bases=tuple(DeclaredBase(d) for d in declared)),
    }
    return second_parents({"m": "a"}, cand, by_pair, overlap, records, GraphParams())


def test_a_model_between_two_distant_parents_is_their_merge():
    # drift to each is -ln 0.5 = 0.69; the parents are -ln 0.01 = 4.6 apart
    assert _merge_world(0.01) == ({"m": "a"}, {"m": "b"})


def test_parents_closer_to_each_other_than_the_share_make_no_merge():
    # -ln 0.4 = 0.92 apart: 0.69 is not below 0.6 x 0.92
    assert _merge_world(0.4) == ({"m": "a"}, {})
    # ... but is below 0.95 x 0.92 when the card declares both
    assert _merge_world(0.4, declared=("a", "b")) == ({"m": "a"}, {"m": "b"})


def test_second_parents_leave_their_input_alone():
    parent = {"m": "a"}
    cand = nx.DiGraph([("a", "m")])
    second_parents(parent, cand, {frozenset(("a", "m")): _pair("a", "m", 0.5)}, {},
                   {"a": ModelRecord("a"), "m": ModelRecord("m")}, GraphParams())  # fmt: skip
    assert parent == {"m": "a"}


def test_a_family_is_named_by_its_earliest_root():
    records = {
        "late": ModelRecord("late", created_at="2024-05-01"),
        "early": ModelRecord("early", created_at="2024-01-01"),
        "child": ModelRecord("child", created_at="2024-06-01"),
        "alone": ModelRecord("alone"),
    }
    # child merges two roots: one family, named by the older
    got = families(records, {"child": "late"}, {"child": "early"}, records)
    assert got == {"late": "early", "early": "early", "child": "early", "alone": "alone"}


def test_parent_score_prefers_the_declared_and_the_popular_parent():
    params = GraphParams()
    p = _pair("u", "v", 0.6)
    plain = {"u": ModelRecord("u"), "v": ModelRecord("v")}
    declared = {**plain, "v": ModelRecord("v", declared_bases=(DeclaredBase("u"),))}
    popular = {**plain, "u": ModelRecord("u", downloads=10_000)}
    base = parent_score("u", "v", p, plain, params)
    assert base == pytest.approx(-drift(p))
    assert parent_score("u", "v", p, declared, params) == pytest.approx(base + params.declared)
    assert parent_score("u", "v", p, popular, params) > base
    # a parent much less used than its child loses a little per decade
    unpopular = {**plain, "v": ModelRecord("v", downloads=999)}
    assert parent_score("u", "v", p, unpopular, params) == pytest.approx(
        base - params.download_deficit * 3
    )


def test_every_significant_pair_is_detailed_up_to_the_budget():
    def stats(n: int) -> PairStats:
        z = np.zeros(n, dtype=np.int64)
        return PairStats(("a", "b"), z, z, z, np.zeros(n), np.zeros(n), n, 0.01, "exact")

    params = GraphParams(detail_all=3, candidates=2)
    assert detail_top(stats(3), params) is None
    assert detail_top(stats(4), params) == 2


def test_copies_stand_behind_their_earliest_upload_or_the_copy_a_card_names():
    records = {
        "a": ModelRecord("a", downloads=0),
        "b": ModelRecord("b", downloads=10),
        "c": ModelRecord("c", downloads=10),
        "x": ModelRecord("x"),
        "y": ModelRecord("y", declared_bases=(DeclaredBase("c"),)),
    }
    pairs = [
        _pair("a", "b", 1.0, 1.0, "identical"),
        _pair("c", "b", 1.0, 1.0, "identical"),
        _pair("a", "x", 0.5),  # related, not a copy
    ]
    copies = copy_classes(pairs, records)
    # no upload dates: the most downloaded, then the smallest id
    assert dict(copies.original) == {"a": "b", "b": "b", "c": "b"}
    assert copies.direction("a", "b") == -1.0 and copies.direction("b", "c") == 1.0
    assert copies.direction("a", "c") == 0.0 and copies.direction("a", "x") is None
    # within the class only the original is a parent; outside, it stands for the class ...
    assert [u for u in "abc" if copies.may_parent(u, "a")] == ["b"]
    assert [u for u in "abc" if copies.may_parent(u, "x")] == ["b"]
    # ... unless the child's card names another copy; models without copies are not concerned
    assert [u for u in "abc" if copies.may_parent(u, "y")] == ["c"]
    assert copies.may_parent("x", "a")
    dated = {**records, "a": ModelRecord("a", created_at="2021-01-01")}
    assert copy_classes(pairs, dated).original["c"] == "a"


def _clade(to_sibling: float, declared: tuple[str, ...] = ()):
    """p has children s (gentle) and t; branching hung m under s at overlap 0.68, m is at 0.65
    from p and at `to_sibling` from t."""
    from lineage.graph.clade import lift

    pairs = [_pair("m", "s", 0.68), _pair("m", "p", 0.65), _pair("m", "t", to_sibling)]
    records = {i: ModelRecord(i) for i in "pst"}
    records["m"] = ModelRecord("m", declared_bases=tuple(DeclaredBase(d) for d in declared))
    return lift({"s": "p", "t": "p", "m": "s"}, {frozenset((x.a, x.b)): x for x in pairs}, records)


def test_a_child_as_close_to_its_parents_sibling_hangs_off_the_grandparent():
    assert _clade(0.69)["m"] == "p"


def test_a_child_closer_to_its_parent_than_to_any_sibling_stays():
    assert _clade(0.60)["m"] == "s"


def test_a_declared_parent_is_kept_even_when_a_sibling_is_as_close():
    assert _clade(0.69, declared=("s",))["m"] == "s"
