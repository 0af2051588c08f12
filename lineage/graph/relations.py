"""The relation of each recovered edge: copy, quantized, adapter, partial, finetune or merge.

Read from the per-slot comparison (identity pattern), the value grid, the float width and the
metadata: copy when every slot is byte-identical or a cast kept overlap >= 0.95; quantized on a
coarse value grid; adapter from metadata or when some modules are untouched in every layer;
partial when whole layers are untouched and others trained; else finetune.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from fingerprint.comparison import PairResult, SlotComparison
from fingerprint.signature import Signature
from hub.records import ModelRecord
from lineage.graph.params import GraphParams
from lineage.graph.traits import coarser, float_bits, is_adapter_meta, is_quantized_meta

_LAYER = re.compile(r"(?:layers|h|blocks|layer)\.(\d+)\.")


def relation_of(
    parent: str,
    child: str,
    pair: PairResult,
    records: Mapping[str, ModelRecord],
    sigs: Mapping[str, Signature],
    params: GraphParams,
) -> str:
    """copy, quantized, partial, adapter or finetune for one parent -> child edge.

    Args:
        parent: the parent's id.
        child: the child's id.
        pair: their per-slot comparison.
        records: model id -> metadata.
        sigs: model id -> signature.
        params: the identical-slot and coarse-grid thresholds.
    """
    rc = records[child]
    identical = [s for s in pair.per_slot if s.identity >= params.identical_slot]
    if pair.per_slot and len(identical) == len(pair.per_slot):
        return "copy"
    if coarser(sigs[child], sigs[parent], params) or (is_quantized_meta(rc) and pair.overlap > 0.5):
        return "quantized"
    if float_bits(sigs[child]) != float_bits(sigs[parent]) and pair.overlap >= 0.95:
        return "copy"  # a cast: same extremes, every value rounded
    if is_adapter_meta(rc):
        return "adapter"
    if identical:
        return _partial_or_adapter(pair, identical)
    return "finetune"


def _partial_or_adapter(pair: PairResult, identical: Sequence[SlotComparison]) -> str:
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


def parents_of(v: str, parent: Mapping[str, str], second: Mapping[str, str]) -> tuple[str, ...]:
    """v's recovered parents, the main one first (none for a root, two for a merge)."""
    return tuple(x for x in (parent.get(v), second.get(v)) if x)


def edge_relations(
    parent: Mapping[str, str],
    second: Mapping[str, str],
    by_pair: Mapping[frozenset[str], PairResult],
    records: Mapping[str, ModelRecord],
    sigs: Mapping[str, Signature],
    params: GraphParams,
) -> dict[tuple[str, str], str]:
    """(parent, child) -> relation for every recovered edge; both edges of a merge are "merge"."""
    out: dict[tuple[str, str], str] = {}
    for v in sorted(set(parent) | set(second)):
        ps = parents_of(v, parent, second)
        for u in ps:
            pr = by_pair[frozenset((u, v))]
            out[(u, v)] = "merge" if len(ps) == 2 else relation_of(u, v, pr, records, sigs, params)
    return out
