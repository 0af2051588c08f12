"""Each model's main parent: candidate edges scored by closeness and priors, then Edmonds'
maximum branching, which keeps the result a forest."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import networkx as nx

from fingerprint.comparison import DERIVED, PairResult
from fingerprint.signature import Signature
from hub.records import ModelRecord
from lineage.graph.copies import copy_classes
from lineage.graph.orient import orientation
from lineage.graph.params import GraphParams
from lineage.graph.traits import drift

# keeps every candidate weight positive: a maximum branching leaves out edges that would lower
# its total, and a model needs a parent whenever one is related
_OFFSET = 10.0


def parent_score(
    u: str, v: str, pair: PairResult, records: Mapping[str, ModelRecord], params: GraphParams
) -> float:
    """How well u explains v as its parent, in drift units.

    Closeness of the weights, plus the declared base, less a penalty when u is much less used
    than v.

    Args:
        u: the candidate parent.
        v: the child.
        pair: their per-slot comparison.
        records: model id -> metadata.
        params: the prior weights.
    """
    # most derivatives on the Hub hang off widely used models: near-ties go to the popular one
    score = -drift(pair) / (1.0 + params.popularity * math.log10(1 + (records[u].downloads or 0)))
    if any(b.id == u for b in records[v].declared_bases):
        score += params.declared
    deficit = math.log10(1 + (records[v].downloads or 0)) - math.log10(
        1 + (records[u].downloads or 0)
    )
    if deficit > 0:
        score -= params.download_deficit * deficit  # parents are rarely less used than children
    return score


def candidates(
    records: Mapping[str, ModelRecord],
    sigs: Mapping[str, Signature],
    pairs: Sequence[PairResult],
    params: GraphParams,
) -> nx.DiGraph:
    """Candidate parent -> child edges: related pairs in the direction the evidence gives
    (both ways when it says nothing), weighted by `parent_score`.

    Byte-identical copies are one set of weights (`copies`): the earliest upload is the parent
    of the others, and the one that stands for them as a parent.

    Args:
        records: model id -> metadata.
        sigs: model id -> signature; every id becomes a node.
        pairs: per-slot comparisons; only derived and identical ones become candidates.
        params: weights.
    """
    cand = nx.DiGraph()
    cand.add_nodes_from(sorted(sigs))
    copies = copy_classes(pairs, records)
    for p in pairs:
        if p.verdict not in DERIVED:
            continue
        o = copies.direction(p.a, p.b)
        if o is None:
            o = orientation(p.a, p.b, records, sigs, params)
        for u, v in (
            ((p.a, p.b), (p.b, p.a)) if o == 0 else ((p.a, p.b),) if o > 0 else ((p.b, p.a),)
        ):
            if copies.may_parent(u, v):
                cand.add_edge(u, v, weight=_OFFSET + parent_score(u, v, p, records, params))
    return cand


def branching(cand: nx.DiGraph) -> dict[str, str]:
    """Each model's main parent (child -> parent) by maximum branching over the candidates."""
    best = nx.maximum_branching(cand, attr="weight", preserve_attrs=True)
    return {v: u for u, v in best.edges()}
