"""Linked adapters placed in the lineage graph (`lineage.adapter_links` finds them).

Applied after `lineage.graph.recover` and before the anomaly rules (`graph.recover_with_anomalies`):
a linked adapter then has its declared base as its recovered parent, so no rule reads the
missing edge as a mismatch; the findings that accuse are the rules `adapter_base_mismatch` and
`adapter_not_an_update` of `lineage.anomalies`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from hub.records import ModelRecord
from lineage.adapter_links import AdapterLinks
from lineage.records import Edge, LineageGraph, Node


def with_adapter_links(
    graph: LineageGraph,
    records: Mapping[str, ModelRecord],
    links: AdapterLinks,
    confidence: Callable[[int], float],
) -> LineageGraph:
    """The graph with each linked adapter under its base: a `base -> adapter` edge (relation
    `adapter`, method `lora:r16`, direction by evidence) and the adapter's node in the base's
    family, unless its weights already gave it a parent. Sibling notes go to
    `graph.params["adapter_siblings"]`; nothing else changes. Apply before the anomaly rules,
    so a linked adapter's declared base is its recovered parent.

    Args:
        graph: the recovered graph.
        records: model id -> metadata (the adapters' downloads set the edges' confidence).
        links: `adapter_links(...)`.
        confidence: downloads -> confidence (`GraphParams.confidence`).
    """
    nodes = {n.id: n for n in graph.nodes}
    edges = list(graph.edges)
    for link in links.edges:
        node, base = nodes.get(link.adapter), nodes.get(link.base)
        if base is None or (node is not None and node.parent is not None):
            continue
        rec = records[link.adapter]
        conf = confidence(rec.downloads or 0)
        p = link.pair
        edges.append(
            Edge(
                parent=link.base,
                child=link.adapter,
                overlap=p.overlap,
                identity=p.identity,
                p_value=p.p_value,
                log10_p=p.log10_p,
                confidence=conf,
                score=p.overlap * conf,
                relation="adapter",
                slots_compared=p.slots_compared,
                direction="evidence",
                direction_by=link.evidence,
                notes=(f"update {link.update_norm:.2f} of the base windows' norm", *link.notes),
                method=link.method,
            )
        )
        nodes[link.adapter] = Node(
            id=link.adapter,
            family=base.family,
            parent=link.base,
            parents=(link.base,),
            relation="adapter",
            confidence=conf,
            downloads=rec.downloads or 0,
            created_at=rec.created_at,
            declared_base=tuple(b.id for b in rec.declared_bases),
            anomalies=node.anomalies if node is not None else (),
            status=node.status if node is not None else "ok",
        )
    params = dict(graph.params)
    if links.siblings:  # only then: a store without adapters builds what build_graph builds
        params["adapter_siblings"] = [dataclasses.asdict(s) for s in links.siblings]
    return dataclasses.replace(
        graph,
        nodes=tuple(sorted(nodes.values(), key=lambda n: n.id)),
        edges=tuple(edges),
        params=params,
    )
