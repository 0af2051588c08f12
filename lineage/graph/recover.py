"""The graph steps in order, on pairs the caller computed; and `build_graph` for callers
without a store, which computes the pairs too.

`lineage.build.build_lineage` is the orchestrator for a store: significant pairs, the pair
cache, `recover`, the declared pairs, the anomaly rules. `build_graph` runs the same sequence
with `allpairs.detailed_pairs` in place of the cache.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from fingerprint.comparison import PairResult
from fingerprint.signature import Signature
from hub.records import ModelRecord
from lineage.allpairs import (
    PairStats,
    declared_pairs,
    detailed_pairs,
    index_pairs,
    significant_pairs,
)
from lineage.anomalies import find_anomalies
from lineage.graph.assemble import assemble, with_anomalies
from lineage.graph.branch import branching, candidates
from lineage.graph.clade import lift
from lineage.graph.families import families
from lineage.graph.merges import second_parents
from lineage.graph.orient import edge_directions
from lineage.graph.params import GraphParams, detail_top
from lineage.graph.relations import edge_relations
from lineage.records import LineageGraph

if TYPE_CHECKING:
    from lineage.adapter_links import AdapterLinks


def recover(
    records: Mapping[str, ModelRecord],
    sigs: Mapping[str, Signature],
    stats: PairStats,
    pairs: Sequence[PairResult],
    *,
    params: GraphParams,
) -> LineageGraph:
    """The lineage forest of the models in `sigs`, without anomalies.

    Orient and score candidate edges, branch, find merges, type the edges, group families, and
    say how each edge's direction was decided.

    Args:
        records: model id -> metadata (every id in `sigs` must be here).
        sigs: model id -> signature.
        stats: the significant pairs (`allpairs.significant_pairs`).
        pairs: per-slot comparisons of the candidate pairs (`allpairs.detailed_pairs` or the
            store's cache).
        params: thresholds and weights.
    """
    index = index_pairs(pairs)
    cand = candidates(records, sigs, pairs, params)
    main = lift(branching(cand), index, records)
    parent, second = second_parents(main, cand, index, stats.overlaps(), records, params)
    relations = edge_relations(parent, second, index, records, sigs, params)
    family = families(sigs, parent, second, records)
    directions = edge_directions(relations, records, sigs, params)
    return assemble(
        sigs, records, parent, second, relations, family, index, stats, params, directions
    )


def build_graph(
    records: Mapping[str, ModelRecord],
    sigs: Mapping[str, Signature],
    *,
    params: GraphParams | None = None,
    device: str = "auto",
) -> LineageGraph:
    """Recover the lineage forest and its anomalies, computing every comparison (no store).

    Args:
        records: model id -> metadata (every id in `sigs` must be here).
        sigs: model id -> signature.
        params: thresholds and weights.
        device: for the co-occurrence product.
    """
    params = params or GraphParams()
    stats = significant_pairs(sigs, alpha=params.alpha, device=device)
    pairs = detailed_pairs(sigs, stats, top=detail_top(stats, params))
    return recover_with_anomalies(records, sigs, stats, pairs, params=params)


def recover_with_anomalies(
    records: Mapping[str, ModelRecord],
    sigs: Mapping[str, Signature],
    stats: PairStats,
    pairs: Sequence[PairResult],
    *,
    params: GraphParams,
    adapters: AdapterLinks | None = None,
) -> LineageGraph:
    """`recover`, then the anomaly rules, with the declared bases' pairs the detailed ones lack
    compared once (not stored: they are not candidates). What follows the comparisons, for
    `build_graph` and for `lineage.build.build_lineage` alike.

    `adapters` (`lineage.adapter_links.adapter_links`, read from the adapters' own files): each
    linked adapter placed under its base before the rules run, and the adapter findings that
    accuse given to the rules."""
    graph = recover(records, sigs, stats, pairs, params=params)
    if adapters is not None:
        from lineage.adapter_graph import with_adapter_links

        graph = with_adapter_links(graph, records, adapters, params.confidence)
    declared = declared_pairs(records, sigs, pairs)
    findings = adapters.findings if adapters is not None else ()
    return with_anomalies(graph, find_anomalies(graph, records, pairs, declared, findings))
