"""A store's first build (comparisons counted for all slots at once, the pair cache read a batch
at a time) stores the pair rows and the graph that the slot-by-slot comparison gives, and a
rebuild from the cache gives them again."""

from __future__ import annotations

import dataclasses

import pytest

from fingerprint.alignment import match_slots
from fingerprint.comparison import DEFAULT_ALPHA, PairResult, compare_slot, shape_changes, summarize
from fingerprint.signature import Signature
from lineage.allpairs import candidate_pairs, significant_pairs
from lineage.build import build_lineage
from lineage.catalogue import load_inputs
from lineage.graph import GraphParams, detail_top, recover_with_anomalies
from lineage.lab.synthetic import store_synthetic, synthetic_signatures
from lineage.paircache import pair_row
from lineage.store import Store
from lineage.store.rows import pack_detail


def _reference(a: Signature, b: Signature, alpha: float = DEFAULT_ALPHA) -> PairResult:
    """`compare` one slot at a time, as it was before the vectorized counts."""
    matched = match_slots(a, b)
    per_slot = tuple(
        compare_slot(sa, sb, a.params.k, a.params.identity_k) for sa, sb in matched.pairs
    )
    return summarize(
        a.model_id, b.model_id, per_slot, len(a.slots), len(b.slots), alpha=alpha,
        shapes=shape_changes(a, b), layer_map=matched.layer_map,
    )  # fmt: skip


@pytest.fixture
def db(tmp_path):
    """A store of 48 synthetic models in 4 families (as scripts/bench_queries.py makes them),
    every other model's windows get their own digest, so verdicts vary."""
    sigs, _ = synthetic_signatures(48, 4, slots=6, seed=3)  # the store's own parameters
    path = tmp_path / "l.db"
    for i, mid in enumerate(sorted(sigs)):
        if i % 2:
            slots = tuple(
                dataclasses.replace(s, digest=f"{mid}|{s.key}".encode()[:16].ljust(16, b"."))
                for s in sigs[mid].slots
            )
            sigs[mid] = dataclasses.replace(sigs[mid], slots=slots)
    store_synthetic(path, sigs)
    return path


def _without_run_counts(graph_dict: dict) -> dict:
    graph_dict["params"] = {
        k: v for k, v in graph_dict["params"].items() if k not in ("pairs_compared", "reused")
    }
    return graph_dict


def test_the_first_build_stores_what_the_slot_by_slot_comparison_gives(db):
    params = GraphParams()
    with Store(db) as store:
        graph = build_lineage(store, device="cpu")
        records, sigs = load_inputs(store)
        stored = {(r.a, r.b): r for r in store.pairs()}
    stats = significant_pairs(sigs, alpha=params.alpha, device="cpu")
    wanted = [
        tuple(sorted((stats.ids[i], stats.ids[j])))
        for i, j in sorted(candidate_pairs(stats, detail_top(stats, params)))
    ]
    reference = [_reference(sigs[a], sigs[b], alpha=stats.alpha_pair) for a, b in wanted]
    expected = recover_with_anomalies(records, sigs, stats, reference, params=params)
    assert _without_run_counts(graph.to_dict()) == _without_run_counts(expected.to_dict())
    assert len({p.verdict for p in reference}) > 1
    detailed = [key for key, row in stored.items() if row.detail]
    assert set(wanted) <= set(detailed) and len(detailed) > len(wanted)  # background too
    for a, b in detailed:
        assert stored[a, b] == pair_row(
            _reference(sigs[a], sigs[b], alpha=stats.alpha_pair), records
        )


def test_a_rebuild_reads_the_cached_pairs_back(db):
    with Store(db) as store:
        first = build_lineage(store, device="cpu")
        again = build_lineage(store, device="cpu", reuse=False)
        assert list(store.iter_pairs(batch=7)) == store.pairs()
    assert first.params["pairs_compared"] > 0 and again.params["pairs_compared"] == 0
    assert _without_run_counts(first.to_dict()) == _without_run_counts(again.to_dict())


def test_rows_written_as_columns_are_the_bytes_of_the_plain_rows(db):
    """`pair_row(..., columns=True)` (what a build writes) packs to the bytes `pair_row` does:
    both orders of a pair, an incomparable pair (no slots) and pairs with warnings."""
    with Store(db) as store:
        records, sigs = load_inputs(store)
    ids = sorted(sigs)
    empty = dataclasses.replace(sigs[ids[1]], slots=())
    results = [_reference(sigs[a], sigs[b]) for a in ids[:6] for b in ids[:6] if a != b]
    results.append(_reference(sigs[ids[0]], empty))
    assert any(not p.per_slot for p in results) and any(p.warnings for p in results)
    for p in results:
        plain, columns = pair_row(p, records), pair_row(p, records, columns=True)
        assert pack_detail(columns.detail) == pack_detail(plain.detail)
        assert dataclasses.replace(columns, detail={}) == dataclasses.replace(plain, detail={})
