"""Second parents: a model that sits between two others is their merge.

v sits between q1 and q2 when its drift to each is below a share of their drift to each other.
Either the main parent and a candidate from another line, or two fine-tunes of the main parent
when v is no closer to that parent than to them (averaging two fine-tunes lands as far from
their parent as from either; a fine-tune of the parent stays near it). Among pairs that fit,
parents the card declares come first, then the closest.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping

import networkx as nx

from fingerprint.comparison import PairResult
from hub.records import ModelRecord
from lineage.graph.params import GraphParams
from lineage.graph.traits import drift


def second_parents(
    parent: Mapping[str, str],
    cand: nx.DiGraph,
    by_pair: Mapping[frozenset[str], PairResult],
    overlap: Mapping[frozenset[str], float],
    records: Mapping[str, ModelRecord],
    params: GraphParams,
) -> tuple[dict[str, str], dict[str, str]]:
    """Merges among the branching's children.

    Args:
        parent: child -> main parent, from the branching.
        cand: the candidate graph (who may be whose parent).
        by_pair: per-slot comparisons by unordered pair.
        overlap: overlap of every significant pair (`PairStats.overlaps`); a pair absent here
            is as far apart as chance.
        records: model id -> metadata.
        params: merge thresholds.

    Returns:
        (child -> main parent, child -> second parent); a merge found by its two fine-tunes
        replaces the main parent.
    """
    # later children see the merges found before them, as ancestors change
    parent = dict(parent)

    def ancestors(x: str) -> set[str]:
        out = set()
        while x in parent and parent[x] not in out:
            x = parent[x]
            out.add(x)
        return out

    def between(q1: str, q2: str, d1: float, d2: float, declared: set[str]) -> bool:
        # a merge sits between its parents: closer to each than they are to each other
        d12 = -math.log(max(overlap.get(frozenset((q1, q2)), 0.0), 1e-9))  # absent: chance
        limit = params.merge_between_declared if {q1, q2} <= declared else params.merge_between
        return max(d1, d2) < limit * d12

    second: dict[str, str] = {}
    for v, p in sorted(parent.items()):
        d_vp = drift(by_pair[frozenset((p, v))])
        declared = {b.id for b in records[v].declared_bases}
        cands = [
            (q, by_pair[frozenset((q, v))])
            for q in sorted(cand.predecessors(v))
            if q != p and v not in ancestors(q) and frozenset((q, v)) in by_pair
        ]
        best: tuple[float, str, str] | None = None
        # (a) the main parent and one from another line
        for q, pq in cands:
            if q in ancestors(p) or p in ancestors(q):
                continue
            # among candidates that fit, the card's own choice first, then the closest
            score = (q in declared) - drift(pq)
            if between(p, q, d_vp, drift(pq), declared) and (best is None or score > best[0]):
                best = (score, p, q)
        # (b) two fine-tunes of the main parent averaged: the average lies as far from their
        # parent as from either of them, unlike a fine-tune of that parent
        if best is None:
            below = [(q, pq) for q, pq in cands if p in ancestors(q)]
            for (q1, p1), (q2, p2) in itertools.combinations(below, 2):
                if q1 in ancestors(q2) or q2 in ancestors(q1):
                    continue
                d1, d2 = drift(p1), drift(p2)
                if not between(q1, q2, d1, d2, declared) or d_vp < params.merge_far * max(d1, d2):
                    continue
                s1, s2 = (q1 in declared) - d1, (q2 in declared) - d2
                if best is None or s1 + s2 > best[0]:
                    best = (s1 + s2, *((q1, q2) if s1 >= s2 else (q2, q1)))
        if best is not None:
            parent[v], second[v] = best[1], best[2]
    return parent, second
