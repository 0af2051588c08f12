"""From signatures and metadata to a directed lineage forest with typed edges.

1. Significant pairs (exact tail, Bonferroni over all pairs) from the inverted index.
2. Direction of each pair from evidence: upload time, declared base, quantized-is-a-leaf,
   down-casting, downloads, and weight kurtosis as the last tie-breaker.
3. Each model's parent by maximum branching (Edmonds) over the directed candidates, weighted by
   overlap and identity; a second parent from another line makes a merge.
4. Relation of each edge from the per-slot comparison (identity pattern, value grid, dtype).
5. Families = connected components; confidence from downloads.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import networkx as nx
import numpy as np

from fingerprint.compare import PairResult
from fingerprint.signature import Signature
from hub.records import ModelRecord
from lineage.allpairs import DEFAULT_ALPHA, PairStats, detailed_pairs, significant_pairs
from lineage.records import Edge, LineageGraph, Node


@dataclass(frozen=True, slots=True)
class Confidence:
    """Download-weighted confidence, the seed's buckets by default: >100: 1.0, >10: 0.7, else 0.3."""

    buckets: tuple[tuple[int, float], ...] = ((100, 1.0), (10, 0.7))
    floor: float = 0.3

    def __call__(self, downloads: int) -> float:
        for threshold, value in self.buckets:
            if downloads > threshold:
                return value
        return self.floor


@dataclass(frozen=True, slots=True)
class GraphParams:
    alpha: float = DEFAULT_ALPHA
    candidates: int = 16
    detail_all: int = 50_000
    # a merge's drift to each parent is below this share of the parents' drift to each other
    merge_between: float = 0.6
    # ... or below this share when the card declares both parents
    merge_between_declared: float = 0.95
    # two fine-tunes of the main parent make a merge only if the child is no closer to that
    # parent than this share of its drift to them
    merge_far: float = 0.8
    # a slot with fewer distinct values per row than this share is on a quantization grid,
    # and a model with this share of such slots is quantized
    coarse_distinct: float = 0.6
    coarse_share: float = 0.25
    identical_slot: float = 0.9
    # in drift units (-ln overlap): see `parent_score`
    declared: float = 0.05
    download_deficit: float = 0.02
    # drift is divided by 1 + popularity x log10(1 + the candidate's downloads)
    popularity: float = 0.3
    # orientation from a download gap of 10x or more: this much per decade, capped
    downloads_orientation: float = 0.75
    downloads_orientation_cap: float = 2.5
    confidence: Confidence = Confidence()


_QUANT_WORDS = re.compile(
    r"(?<![a-z])(gptq|awq|gguf|int8|int4|4bit|8bit|bnb|quantized|exl2|fp8)(?![a-z])", re.I
)
_ADAPTER_WORDS = re.compile(r"(?<![a-z])(lora|peft|adapter|qlora)(?![a-z])", re.I)


def _is_quantized_meta(rec: ModelRecord) -> bool:
    if any(b.relation == "quantized" for b in rec.declared_bases):
        return True
    text = " ".join([rec.id, *rec.tags])
    return bool(_QUANT_WORDS.search(text))


def _is_adapter_meta(rec: ModelRecord) -> bool:
    if rec.extra.get("adapter") or any(b.relation == "adapter" for b in rec.declared_bases):
        return True
    return bool(_ADAPTER_WORDS.search(" ".join([rec.id, *rec.tags])))


def is_coarse(sig: Signature, params: GraphParams) -> bool:
    """Values rounded onto a quantization grid in a good share of slots.

    Trained float weights have ~all-distinct values per row; an int8 round trip leaves at most
    255 levels per row and 4-bit 16 per group. Embeddings are often left unquantized, hence a
    share of slots rather than all.
    """
    if not sig.slots:
        return False
    coarse = sum(s.distinct < params.coarse_distinct for s in sig.slots)
    return coarse >= params.coarse_share * len(sig.slots)


def _mean_kurtosis(sig: Signature) -> float:
    return float(np.mean([s.kurtosis for s in sig.slots])) if sig.slots else 0.0


def _float_bits(sig: Signature) -> float:
    sizes = {"F64": 64, "F32": 32, "F16": 16, "BF16": 16, "F8_E4M3": 8, "F8_E5M2": 8}
    return float(np.mean([sizes.get(s.dtype, 32) for s in sig.slots])) if sig.slots else 32.0


def coarser(child: Signature, parent: Signature, params: GraphParams) -> bool:
    """Whether `child` sits on a quantization grid that `parent` does not (quantized)."""
    return is_coarse(child, params) and not is_coarse(parent, params)


def drift(pair: PairResult) -> float:
    """How far apart two related models are: -ln(overlap), shrunk by the identical share.

    Along a chain overlaps multiply, so -ln(overlap) adds up; exactly equal weights (a copy,
    frozen layers) bring it towards zero.
    """
    return -math.log(max(pair.overlap, 1e-9)) * (1.0 - 0.9 * pair.identity)


def orientation(
    u: str,
    v: str,
    records: Mapping[str, ModelRecord],
    sigs: Mapping[str, Signature],
    params: GraphParams,
) -> float:
    """Evidence that u came before v (positive) or after it (negative), from everything but
    the weights' closeness: upload time, declarations, quantization, dtype, downloads."""
    ru, rv = records[u], records[v]
    score = 0.0
    if ru.created_at and rv.created_at and ru.created_at != rv.created_at:
        score += 2.0 if ru.created_at < rv.created_at else -2.0  # true for 99.7% of Hub edges
    if any(b.id == u for b in rv.declared_bases) or any(b.id == v for b in ru.declared_bases):
        # a declaration may name the wrong relative, but rarely points the wrong way
        score += 2.5 if any(b.id == u for b in rv.declared_bases) else -2.5
    su, sv = sigs[u], sigs[v]
    if coarser(sv, su, params) or (_is_quantized_meta(rv) and not _is_quantized_meta(ru)):
        score += 3.0  # quantized models are leaves (99.4%)
    if coarser(su, sv, params) or (_is_quantized_meta(ru) and not _is_quantized_meta(rv)):
        score -= 3.0
    bits_u, bits_v = _float_bits(su), _float_bits(sv)
    if bits_u != bits_v:
        score += 0.75 if bits_u > bits_v else -0.75  # down-casting is common, up-casting rare
    du, dv = ru.downloads or 0, rv.downloads or 0
    ratio = math.log10((1 + du) / (1 + dv))
    if abs(ratio) >= 1:
        # a model used 1,000x less than another is rarely its parent, whatever the dates say
        cap = params.downloads_orientation_cap
        score += math.copysign(min(cap, params.downloads_orientation * abs(ratio)), ratio)
    # last resort: the more kurtotic (less trained) model first, by a hair
    score += 1e-3 * math.tanh(_mean_kurtosis(su) - _mean_kurtosis(sv))
    return score


def parent_score(
    u: str, v: str, pair: PairResult, records: Mapping[str, ModelRecord], params: GraphParams
) -> float:
    """How well u explains v as its parent: closeness of weights plus the declared base, less
    a penalty when u is much less used than v. In drift units."""
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


def relation_of(
    parent: str,
    child: str,
    pair: PairResult,
    records: Mapping[str, ModelRecord],
    sigs: Mapping[str, Signature],
    params: GraphParams,
) -> str:
    """copy, quantized, partial, adapter or finetune for one parent -> child edge."""
    rc = records[child]
    identical = [s for s in pair.per_slot if s.identity >= params.identical_slot]
    if pair.per_slot and len(identical) == len(pair.per_slot):
        return "copy"
    if coarser(sigs[child], sigs[parent], params) or (
        _is_quantized_meta(rc) and pair.overlap > 0.5
    ):
        return "quantized"
    if _float_bits(sigs[child]) != _float_bits(sigs[parent]) and pair.overlap >= 0.95:
        return "copy"  # a cast: same extremes, every value rounded
    if _is_adapter_meta(rc):
        return "adapter"
    if identical:
        return _partial_or_adapter(pair, identical)
    return "finetune"


_LAYER = re.compile(r"(?:layers|h|blocks|layer)\.(\d+)\.")


def _partial_or_adapter(pair: PairResult, identical: list) -> str:
    """Some slots byte-identical: frozen layers (partial) or untouched modules (adapter).

    A layer-frozen fine-tune leaves whole layers identical; a merged LoRA changes the same
    projections in every layer and leaves the rest identical.
    """
    same = {s.tensor for s in identical}
    layers: dict[int, list[bool]] = {}
    for s in pair.per_slot:
        m = _LAYER.search(s.tensor)
        if m:
            layers.setdefault(int(m.group(1)), []).append(s.tensor in same)
    fully_same = [n for n, flags in layers.items() if all(flags)]
    fully_changed = [n for n, flags in layers.items() if not any(flags)]
    if fully_same and fully_changed:
        return "partial"
    return "adapter"


def _bases(rec: ModelRecord) -> tuple[str, ...]:
    return tuple(b.id for b in rec.declared_bases)


def build_graph(
    records: Mapping[str, ModelRecord],
    sigs: Mapping[str, Signature],
    *,
    params: GraphParams | None = None,
    detail: Callable[[Mapping[str, Signature], PairStats, int | None], list[PairResult]]
    | None = None,
    device: str = "auto",
) -> LineageGraph:
    """Recover the lineage forest of the models that have signatures.

    Args:
        records: model id -> metadata (every id in `sigs` must be here).
        sigs: model id -> signature.
        params: thresholds and weights.
        detail: how to get per-slot comparisons for candidate pairs, called as
            (sigs, stats, top) (lets the pipeline serve them from the store's cache); default
            `allpairs.detailed_pairs`.
        device: for the co-occurrence product.
    """
    from lineage.anomalies import find_anomalies

    params = params or GraphParams()
    stats = significant_pairs(sigs, alpha=params.alpha, device=device)
    # every significant pair while that is affordable; beyond, each model's strongest few
    top = None if stats.i.size <= params.detail_all else params.candidates
    pairs = detailed_pairs(sigs, stats, top=top) if detail is None else detail(sigs, stats, top)
    by_pair: dict[frozenset[str], PairResult] = {frozenset((p.a, p.b)): p for p in pairs}
    overlap = {
        frozenset((stats.ids[i], stats.ids[j])): float(o)
        for i, j, o in zip(stats.i.tolist(), stats.j.tolist(), stats.overlap.tolist(), strict=True)
    }

    cand = nx.DiGraph()
    cand.add_nodes_from(sorted(sigs))
    for p in pairs:
        if p.verdict not in ("derived", "identical"):
            continue
        o = orientation(p.a, p.b, records, sigs, params)
        for u, v in (
            ((p.a, p.b), (p.b, p.a)) if o == 0 else ((p.a, p.b),) if o > 0 else ((p.b, p.a),)
        ):
            cand.add_edge(u, v, weight=10.0 + parent_score(u, v, p, records, params))
    branching = nx.maximum_branching(cand, attr="weight", preserve_attrs=True)
    parent = {v: u for u, v in branching.edges()}

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

    forest = nx.Graph()
    forest.add_nodes_from(sigs)
    forest.add_edges_from(parent.items())
    forest.add_edges_from(second.items())
    family_of: dict[str, str] = {}
    for comp in nx.connected_components(forest):
        roots = sorted(
            (m for m in comp if m not in parent),
            key=lambda m: (records[m].created_at or "9999", -(records[m].downloads or 0), m),
        )
        fam = roots[0] if roots else min(comp)
        for m in comp:
            family_of[m] = fam

    edges: list[Edge] = []
    nodes: list[Node] = []
    for v in sorted(sigs):
        rec = records[v]
        conf = params.confidence(rec.downloads or 0)
        ps = tuple(x for x in (parent.get(v), second.get(v)) if x)
        relation = None
        for u in ps:
            pr = by_pair[frozenset((u, v))]
            rel = "merge" if len(ps) == 2 else relation_of(u, v, pr, records, sigs, params)
            relation = rel
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
                    relation=rel,
                    slots_compared=pr.slots_compared,
                    identical_slots=sum(s.identity >= params.identical_slot for s in pr.per_slot),
                )
            )
        nodes.append(
            Node(
                id=v,
                family=family_of[v],
                parent=parent.get(v),
                parents=ps,
                relation=relation,
                confidence=conf,
                downloads=rec.downloads or 0,
                created_at=rec.created_at,
                declared_base=_bases(rec),
            )
        )
    anomalies = find_anomalies(nodes, edges, records, by_pair, sigs)
    flagged: dict[str, list[str]] = {}
    for a in anomalies:
        flagged.setdefault(a.model, []).append(a.kind)
    nodes = [
        Node(
            **{
                **{f: getattr(n, f) for f in Node.__slots__},
                "anomalies": tuple(flagged.get(n.id, ())),
            }
        )
        for n in nodes
    ]
    return LineageGraph(
        nodes=tuple(nodes),
        edges=tuple(edges),
        anomalies=tuple(anomalies),
        params={
            "alpha": params.alpha,
            "alpha_pair": stats.alpha_pair,
            "pairs_tested": stats.pairs_tested,
            "significant_pairs": int(stats.i.size),
            "mode": stats.mode,
        },
    )
