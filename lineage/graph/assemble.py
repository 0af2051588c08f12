"""The graph's records: nodes and edges from the steps' results, and the anomalies flagged on
their nodes."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from fingerprint.comparison import PairResult, shared_parts, structure_changes
from fingerprint.signature import Signature
from hub.records import ModelRecord
from lineage.allpairs import PairStats
from lineage.graph.params import GraphParams
from lineage.graph.relations import parents_of
from lineage.graph.traits import file_format
from lineage.records import Anomaly, Cousin, Edge, LineageGraph, Node


def assemble(
    sigs: Mapping[str, Signature],
    records: Mapping[str, ModelRecord],
    parent: Mapping[str, str],
    second: Mapping[str, str],
    relations: Mapping[tuple[str, str], str],
    family: Mapping[str, str],
    by_pair: Mapping[frozenset[str], PairResult],
    stats: PairStats,
    params: GraphParams,
    directions: Mapping[tuple[str, str], tuple[str, tuple[str, ...]]],
) -> LineageGraph:
    """The lineage graph of the steps' results, without anomalies.

    Args:
        sigs: every model in the graph, with its signature (nodes come out sorted by id).
        records: model id -> metadata.
        parent: child -> main parent.
        second: child -> second parent (merges).
        relations: (parent, child) -> relation of each edge.
        family: model id -> family id.
        by_pair: per-slot comparisons by unordered pair (every edge's pair is here).
        stats: the significant pairs (for the graph's params).
        params: confidence buckets and the identical-slot threshold.
        directions: (parent, child) -> how its direction was decided, for every edge
            (`orient.edge_directions`).
    """
    edges: list[Edge] = []
    nodes: list[Node] = []
    for v in sorted(sigs):
        rec = records[v]
        conf = params.confidence(rec.downloads or 0)
        ps = parents_of(v, parent, second)
        for u in ps:
            pr = by_pair[frozenset((u, v))]
            direction, direction_by = directions[u, v]
            edges.append(
                Edge(
                    parent=u,
                    child=v,
                    overlap=pr.overlap,
                    identity=pr.identity,
                    p_value=pr.p_value,
                    log10_p=pr.log10_p,
                    confidence=conf,
                    score=pr.overlap * conf,
                    relation=relations[(u, v)],
                    slots_compared=pr.slots_compared,
                    identical_slots=sum(s.identity >= params.identical_slot for s in pr.per_slot),
                    direction=direction,
                    direction_by=direction_by,
                    notes=structure_changes(sigs[u], sigs[v], pr),
                    method=file_format(rec),
                )
            )
        nodes.append(
            Node(
                id=v,
                family=family[v],
                parent=parent.get(v),
                parents=ps,
                relation=relations[(ps[-1], v)] if ps else None,
                confidence=conf,
                downloads=rec.downloads or 0,
                created_at=rec.created_at,
                declared_base=tuple(b.id for b in rec.declared_bases),
            )
        )
    return LineageGraph(
        nodes=tuple(nodes),
        edges=tuple(edges),
        anomalies=(),
        params={
            "alpha": params.alpha,
            "alpha_pair": stats.alpha_pair,
            "pairs_tested": stats.pairs_tested,
            "significant_pairs": int(stats.i.size),
            "mode": stats.mode,
        },
        cousins=cousins(by_pair.values()),
    )


def cousins(pairs: Iterable[PairResult]) -> tuple[Cousin, ...]:
    """The pairs whose verdict is "cousin", as undirected links sorted by their ends."""
    out = []
    for p in pairs:
        if p.verdict != "cousin":
            continue
        a, b = sorted((p.a, p.b))
        parts = shared_parts(p.per_slot)
        out.append(
            Cousin(
                a=a,
                b=b,
                overlap=float(sum(s.overlap for s in parts) / len(parts)) if parts else 0.0,
                p_value=p.p_value,
                shared=tuple(s.tensor for s in parts),
            )
        )
    return tuple(sorted(out, key=lambda c: (c.a, c.b)))


def with_anomalies(graph: LineageGraph, anomalies: Sequence[Anomaly]) -> LineageGraph:
    """The graph with `anomalies`, each node listing the kinds flagged on it.

    The params dict is the graph's own (not a copy): callers may add to it afterwards.
    """
    flagged: dict[str, list[str]] = {}
    for a in anomalies:
        flagged.setdefault(a.model, []).append(a.kind)
    nodes = tuple(
        dataclasses.replace(n, anomalies=tuple(flagged.get(n.id, ()))) for n in graph.nodes
    )
    return LineageGraph(
        nodes=nodes,
        edges=graph.edges,
        anomalies=tuple(anomalies),
        params=graph.params,
        cousins=graph.cousins,
    )
