"""Store -> lineage graph, with per-pair results cached in the store.

Pair results are keyed by both models' revisions: a pair is recomputed only when one of its
models changed (a new revision drops its signature and pairs in the store).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fingerprint.compare import PairResult, compare
from fingerprint.signature import Signature, SignatureParams
from fingerprint.significance import log10
from hub.records import ModelRecord
from lineage.allpairs import PairStats, candidate_pairs
from lineage.errors import LineageError
from lineage.graph import GraphParams, build_graph
from lineage.records import Anomaly, Edge, LineageGraph, Node
from lineage.store import PairRow, Store

# up to this many unrelated pairs get a full per-slot comparison (for the lineage map)
BACKGROUND_DETAIL = 20_000


def load_inputs(
    store: Store, params: SignatureParams | None = None
) -> tuple[dict[str, ModelRecord], dict[str, Signature]]:
    """Models that have a signature at their current revision, and those signatures."""
    records = {r.id: r for r in store.models()}
    sigs = {}
    stale = []
    tag = (params or SignatureParams()).tag()
    for row in store.signatures():
        rec = records.get(row.model_id)
        if rec is None or row.revision != rec.revision:
            continue
        if row.params != tag:
            stale.append(row.model_id)
            continue
        sigs[row.model_id] = Signature.from_bytes(row.blob, model_id=row.model_id)
    if stale:
        raise LineageError(
            f"{len(stale)} signatures (e.g. {stale[0]}) were made with other parameters or an "
            "older version; run `lineage fingerprint` to bring them up to date"
        )
    return records, sigs


def _row(p: PairResult, records: Mapping[str, ModelRecord]) -> PairRow:
    return PairRow(
        a=p.a,
        b=p.b,
        revision_a=records[p.a].revision,
        revision_b=records[p.b].revision,
        overlap=p.overlap,
        identity=p.identity,
        p_value=p.p_value,
        log10_p=p.log10_p,
        slots_compared=p.slots_compared,
        verdict=p.verdict,
        detail={
            "overlap_std": p.overlap_std,
            "overlap_median": p.overlap_median,
            "overlap_min": p.overlap_min,
            "per_slot": [
                {"tensor": s.tensor, "overlap": s.overlap, "identity": s.identity}
                for s in p.per_slot
            ],
            "result": p.to_dict(),
        },
    )


def cached_pairs(
    store: Store,
    records: Mapping[str, ModelRecord],
    sigs: Mapping[str, Signature],
    stats: PairStats,
    counter: dict[str, int] | None = None,
    top: int | None = None,
) -> list[PairResult]:
    """Detailed results for significant pairs, from the store when current.

    `top`: only each model's strongest this-many partners (None: every significant pair).
    `counter["compared"]` (when given) is increased by the comparisons actually computed.
    """
    cache = {(r.a, r.b): r for r in store.pairs()}
    out, fresh = [], []
    for i, j in sorted(candidate_pairs(stats, top)):
        a, b = sorted((stats.ids[i], stats.ids[j]))
        row = cache.get((a, b))
        if (
            row is not None
            and row.revision_a == records[a].revision
            and row.revision_b == records[b].revision
            and "result" in row.detail
        ):
            p = PairResult.from_dict(row.detail["result"])
            if p.a != a:
                p = PairResult.from_dict({**row.detail["result"], "a": a, "b": b})
        else:
            p = compare(sigs[a], sigs[b], alpha=stats.alpha_pair)
            fresh.append(p)
        out.append(p)
    if fresh:
        store.put_pairs(_row(p, records) for p in fresh)
    if counter is not None:
        counter["compared"] = counter.get("compared", 0) + len(fresh)
    if stats.background is not None:
        # unrelated same-architecture pairs, for reports: full per-slot detail while that is
        # cheap, the overlap alone beyond
        bi, bj, bo, bp = stats.background
        rows = [
            (*sorted((stats.ids[i], stats.ids[j])), o, pv)
            for i, j, o, pv in zip(bi.tolist(), bj.tolist(), bo.tolist(), bp.tolist(), strict=True)
        ]
        detailed = [r for r in rows if "result" not in getattr(cache.get(r[:2]), "detail", {})]
        if len(detailed) <= BACKGROUND_DETAIL:
            if counter is not None:
                counter["compared"] += len(detailed)
            store.put_pairs(
                _row(compare(sigs[a], sigs[b], alpha=stats.alpha_pair), records)
                for a, b, _, _ in detailed
            )
        else:  # overlap only, and only for pairs the store does not hold yet
            store.put_pairs(
                PairRow(
                    a,
                    b,
                    records[a].revision,
                    records[b].revision,
                    float(o),
                    None,
                    float(pv),
                    log10(float(pv)),
                    0,
                    "unrelated",
                    {},
                )
                for a, b, o, pv in rows
                if (a, b) not in cache
            )
    return out


def build_lineage(
    store: Store, *, params: GraphParams | None = None, device: str = "auto"
) -> LineageGraph:
    """Recover the lineage of everything the store holds a current signature for.

    `graph.params["pairs_compared"]` says how many pair comparisons this call computed (the
    rest came from the store's cache).
    """
    records, sigs = load_inputs(store)
    if not sigs:
        raise LineageError(
            "no fingerprinted models in the database; run `lineage add PATH` or `lineage crawl` first"
        )
    counter = {"compared": 0}
    graph = build_graph(
        records,
        sigs,
        params=params,
        device=device,
        detail=lambda s, stats, top: cached_pairs(store, records, s, stats, counter, top=top),
    )
    graph.params["pairs_compared"] = counter["compared"]
    return graph


@dataclass(frozen=True, slots=True)
class Audit:
    """Everything `lineage audit ID` says about one model."""

    model: ModelRecord
    node: Node | None
    parent_edges: tuple[Edge, ...]
    children: tuple[str, ...]
    closest: tuple[PairResult, ...]
    anomalies: tuple[Anomaly, ...]

    def to_dict(self) -> dict:
        return {
            "model": self.model.id,
            "declared_base": [b.id for b in self.model.declared_bases],
            "recovered_parents": list(self.node.parents) if self.node else [],
            "family": self.node.family if self.node else None,
            "relation": self.node.relation if self.node else None,
            "children": list(self.children),
            "parent_edges": [{k: getattr(e, k) for k in Edge.__slots__} for e in self.parent_edges],
            "closest": [
                {
                    "model": p.b if p.a == self.model.id else p.a,
                    "overlap": p.overlap,
                    "identity": p.identity,
                    "p_value": p.p_value,
                    "verdict": p.verdict,
                    "shared_layers": [s.tensor for s in p.per_slot if s.identity >= 0.9],
                    "per_slot": [
                        {"tensor": s.tensor, "overlap": s.overlap, "identity": s.identity}
                        for s in p.per_slot
                    ],
                }
                for p in self.closest
            ],
            "anomalies": [a.to_dict() for a in self.anomalies],
        }


def audit(store: Store, model_id: str, *, top: int = 5, device: str = "auto") -> Audit:
    """Declared vs recovered lineage of one model, its closest relatives and anomalies."""
    record = store.require_model(model_id)
    graph = build_lineage(store, device=device)
    node = next((n for n in graph.nodes if n.id == model_id), None)
    pairs = [
        PairResult.from_dict(r.detail["result"])
        for r in store.pairs(model=model_id)
        if "result" in r.detail
    ]
    pairs.sort(key=lambda p: (-p.overlap, p.a, p.b))
    return Audit(
        model=record,
        node=node,
        parent_edges=tuple(e for e in graph.edges if e.child == model_id),
        children=tuple(sorted(e.child for e in graph.edges if e.parent == model_id)),
        closest=tuple(p for p in pairs if p.verdict in ("derived", "identical"))[:top],
        anomalies=tuple(a for a in graph.anomalies if a.model == model_id),
    )
