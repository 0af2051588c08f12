"""Store -> lineage graph, with per-pair results and the graph itself cached in the store.

Pair results are keyed by both models' revisions: a pair is recomputed only when one of its
models changed (a new revision drops its signature and pairs in the store). The built graph is
kept under a key made of the store's state (every model row and signature stamp), the graph
parameters and the code that builds graphs; `tree`, `audit` and `anomalies` on an unchanged
store read it instead of rebuilding.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, cast

from lineage.errors import LineageError
from lineage.records import Anomaly, Edge, LineageGraph, Node
from lineage.store import Store

if TYPE_CHECKING:  # reading a stored graph imports none of these (nor torch, scipy, networkx)
    from collections.abc import Mapping

    from fingerprint.comparison import PairResult
    from fingerprint.signature import Signature
    from hub.records import ModelRecord
    from hub.tensor_index import TensorIndex
    from lineage.adapter_links import AdapterLinks
    from lineage.graph import GraphParams


# The modules whose code decides a graph: a change to any of them rebuilds stored graphs.
_GRAPH_CODE = (
    "fingerprint.comparison",
    "fingerprint.comparison_records",
    "fingerprint.comparison_shapes",
    "fingerprint.comparison_slots",
    "fingerprint.verdict",
    "fingerprint.structure",
    "fingerprint.slot_counts",
    "fingerprint.slot_layouts",
    "fingerprint.compare_jit",
    "fingerprint.alignment",
    "fingerprint.significance",
    "lineage.adapter_graph",
    "lineage.adapter_links",
    "lineage.allpairs",
    "lineage.anomalies",
    "lineage.anomaly_rules",
    "lineage.anomaly_subjects",
    "lineage.build",
    "lineage.graph",
    "lineage.paircache",
    "lineage.records",
)


@cache
def _code_digest() -> str:
    """A digest of the source of `_GRAPH_CODE` (found, not imported)."""
    h = hashlib.sha256()
    for name in _GRAPH_CODE:
        spec = importlib.util.find_spec(name)
        path = Path(spec.origin if spec and spec.origin else "")
        files = sorted(path.parent.glob("*.py")) if path.name == "__init__.py" else [path]
        for f in files:
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def graph_key(store: Store, params: GraphParams | None) -> str:
    """The key a graph built now from `store` with `params` is stored under (None: the
    defaults, which are part of the code digested)."""
    parts = [_code_digest(), "defaults" if params is None else repr(params), store.state_digest()]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _writable(path: str | Path) -> bool:
    """Whether the database file and its folder (SQLite's journal) can be written."""
    return os.access(path, os.W_OK) and os.access(Path(path).parent, os.W_OK)


def build_lineage(
    store: Store,
    *,
    params: GraphParams | None = None,
    device: str = "auto",
    reuse: bool = True,
    refresh_cache: bool = True,
) -> LineageGraph:
    """Recover the lineage of everything the store holds a current signature for.

    The one orchestrator: significant pairs, their per-slot comparisons from the store's cache
    (computing and storing what is missing), then `graph.recover_with_anomalies` (the graph
    steps, the declared bases compared without storing them, the anomaly rules).

    Args:
        store: the database.
        params: thresholds and weights of the graph.
        device: for the co-occurrence product.
        reuse: read the stored graph when the store, the parameters and the code are what it
            was built from (`graph_key`); False always rebuilds (and stores the result).
        refresh_cache: on a read-only store (what `tree`, `audit`, `anomalies` open) whose
            stored graph is stale, store the pairs and the graph through one short writable
            connection when the file can be written, so the next reader is sub-second. Models,
            signatures and runs are never written. False (or a file that cannot be written)
            builds in private TEMP tables that vanish with the connection.

    Returns:
        The graph; `graph.params["pairs_compared"]` says how many pair comparisons this call
        computed (the rest came from the store's cache), `graph.params["reused"]` whether it
        was read from the store.

    Raises:
        LineageError: no model has a current signature.
    """
    key = graph_key(store, params)
    stored = store.get_graph(key) if reuse else None
    if stored is not None:
        graph = LineageGraph.from_dict(json.loads(stored))
        graph.params.update(pairs_compared=0, reused=True)
        return graph
    if store.read_only and refresh_cache and _writable(store.path):
        # derived caches only: the data a reader opened read-only is the same data here
        with Store(store.path) as writer:
            return build_lineage(writer, params=params, device=device, reuse=False)
    from lineage.allpairs import significant_pairs
    from lineage.catalogue import load_inputs
    from lineage.graph import GraphParams, detail_top, recover_with_anomalies
    from lineage.paircache import cached_pairs

    params = params or GraphParams()
    records, sigs = load_inputs(store)
    if not sigs:
        raise LineageError(
            "no fingerprinted models in the database; run `lineage add PATH` or `lineage crawl` first"
        )
    stats = significant_pairs(sigs, alpha=params.alpha, device=device)
    counter = {"compared": 0}
    pairs = cached_pairs(store, records, sigs, stats, counter, top=detail_top(stats, params))
    adapters = _adapter_links(records, sigs)
    graph = recover_with_anomalies(records, sigs, stats, pairs, params=params, adapters=adapters)
    graph.params["pairs_compared"] = counter["compared"]
    graph.params["reused"] = False
    if not store.read_only:  # a reader's store (`mode=ro`) is never written: rebuilt next time
        store.put_graph(key, json.dumps(graph.to_dict()))
    return graph


def _adapter_links(
    records: Mapping[str, ModelRecord], sigs: Mapping[str, Signature]
) -> AdapterLinks:
    """The store's adapter-only repos checked against their declared bases from their own
    files (`lineage.adapter_links`), where both lie on this machine: a graph build never goes
    to the network, so an adapter or base read from the Hub is left unchecked (recorded)."""
    from lineage.adapter_links import adapter_links
    from lineage.pipeline import open_source

    def open_here(record: ModelRecord) -> TensorIndex:
        if record.source in ("local", "cache") and record.path:
            # a folder or the HF cache: open_source gives hub.local's TensorIndex
            return cast("TensorIndex", open_source(record))
        raise LineageError(
            f"{record.id} was read from the Hub: an adapter is checked against its base only "
            "from local files (`lineage add` downloaded copies of both)"
        )

    params = next(iter(sigs.values())).params
    return adapter_links(records, open_here, params=params)


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
            # the file format or quantization the weights were read through ("" for safetensors)
            "format": _file_format(self.model),
            "variants": list(self.model.extra.get("variants", [])),
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
                    # [layer of this model, layer of the other] where layers met by content
                    "layer_map": [
                        [i, j] if p.a == self.model.id else [j, i] for i, j in p.layer_map
                    ],
                    "per_slot": [
                        {"tensor": s.tensor, "overlap": s.overlap, "identity": s.identity}
                        for s in p.per_slot
                    ],
                }
                for p in self.closest
            ],
            "anomalies": [a.to_dict() for a in self.anomalies],
        }


def _file_format(rec: ModelRecord) -> str:
    method = rec.extra.get("quantization")
    return method if isinstance(method, str) else ""


def audit(store: Store, model_id: str, *, top: int = 5, device: str = "auto") -> Audit:
    """Declared vs recovered lineage of one model, its closest relatives and anomalies."""
    from fingerprint.comparison import DERIVED
    from lineage.paircache import pair_result

    record = store.require_model(model_id)
    graph = build_lineage(store, device=device)
    node = next((n for n in graph.nodes if n.id == model_id), None)
    pairs = [p for p in map(pair_result, store.pairs(model=model_id)) if p is not None]
    pairs.sort(key=lambda p: (-p.overlap, p.a, p.b))
    return Audit(
        model=record,
        node=node,
        parent_edges=tuple(e for e in graph.edges if e.child == model_id),
        children=tuple(sorted(e.child for e in graph.edges if e.parent == model_id)),
        closest=tuple(p for p in pairs if p.verdict in (*DERIVED, "cousin"))[:top],
        anomalies=tuple(a for a in graph.anomalies if a.model == model_id),
    )
