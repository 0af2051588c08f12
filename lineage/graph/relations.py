"""The relation of each recovered edge: copy, quantized, adapter, partial, finetune or merge.

Each relation is one row of `RELATION_RULES`, tried in order; the first that holds names the
edge, and finetune is what is left. Read from the per-slot comparison (identity pattern), the
tensors' shapes, the value grid, the float width and the metadata.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fingerprint.comparison import PairResult, shape_changes
from fingerprint.signature import Signature
from hub.records import ModelRecord
from lineage.graph.params import GraphParams
from lineage.graph.traits import coarser, float_bits, is_adapter_meta, is_quantized_meta

_LAYER = re.compile(r"(?:layers|h|blocks|layer)\.(\d+)\.")


@dataclass(frozen=True, slots=True)
class EdgeView:
    """One parent -> child edge as the relation rules see it."""

    pair: PairResult
    parent: Signature
    child: Signature
    record: ModelRecord  # the child's
    params: GraphParams

    @property
    def reshaped(self) -> bool:
        """Some tensor changed shape, or a slot is on one side only (rows appended, ...)."""
        return bool(shape_changes(self.parent, self.child))

    def untouched(self) -> set[str]:
        """The tensors whose slot is byte-identical (as far as identity can tell)."""
        return {s.tensor for s in self.pair.per_slot if s.identity >= self.params.identical_slot}


@dataclass(frozen=True, slots=True)
class RelationRule:
    """One relation and when it holds (rules are tried in `RELATION_RULES` order)."""

    relation: str
    when: str  # for docs and readers: the condition in words
    holds: Callable[[EdgeView], bool]


def _copy(e: EdgeView) -> bool:
    slots = e.pair.per_slot
    same = all(s.identity >= e.params.identical_slot for s in slots)
    return bool(slots) and same and not e.reshaped


def _quantized(e: EdgeView) -> bool:
    meta = is_quantized_meta(e.record) and e.pair.overlap > 0.5
    return coarser(e.child, e.parent, e.params) or meta


def _cast(e: EdgeView) -> bool:
    wider = float_bits(e.child) != float_bits(e.parent)
    return wider and e.pair.overlap >= 0.95 and not e.reshaped


def _blocks(e: EdgeView) -> dict[int, dict[str, bool]]:
    """Layer number -> module (the tensor name without its layer) -> untouched, for the slots
    inside the transformer blocks; embeddings, pooler and heads are outside."""
    same = e.untouched()
    out: dict[int, dict[str, bool]] = {}
    for s in e.pair.per_slot:
        m = _LAYER.search(s.tensor)
        if m:
            module = s.tensor[: m.start()] + s.tensor[m.end() :]
            out.setdefault(int(m.group(1)), {})[module] = s.tensor in same
    return out


def _partial(e: EdgeView) -> bool:
    # a layer-frozen fine-tune: whole layers untouched, whole layers trained
    layers = [set(mods.values()) for mods in _blocks(e).values()]
    return {True} in layers and {False} in layers


def _adapter(e: EdgeView) -> bool:
    # a merged adapter changes the same modules in every layer and leaves the others untouched
    # in every layer; untouched tensors outside the blocks (a pooler no loss reaches, a head, the
    # embeddings) are what full fine-tunes leave too
    modules: dict[str, set[bool]] = {}
    for mods in _blocks(e).values():
        for module, untouched in mods.items():
            modules.setdefault(module, set()).add(untouched)
    return {True} in modules.values() and {False} in modules.values()


RELATION_RULES: tuple[RelationRule, ...] = (
    RelationRule("copy", "every slot byte-identical, every shape equal", _copy),
    RelationRule("quantized", "a coarse value grid the parent lacks, or metadata", _quantized),
    RelationRule("copy", "a cast: another float width, overlap >= 0.95, shapes equal", _cast),
    RelationRule(
        "adapter", "the files, card or name say adapter", lambda e: is_adapter_meta(e.record)
    ),
    # rows appended to a vocabulary and the rest untouched is still a new model
    RelationRule(
        "finetune", "a tensor changed shape (vocabulary extended, ...)", lambda e: e.reshaped
    ),
    RelationRule("partial", "whole layers untouched, others trained", _partial),
    RelationRule("adapter", "some modules untouched in every layer, others changed", _adapter),
)


def relation_of(
    parent: str,
    child: str,
    pair: PairResult,
    records: Mapping[str, ModelRecord],
    sigs: Mapping[str, Signature],
    params: GraphParams,
) -> str:
    """copy, quantized, adapter, partial or finetune for one parent -> child edge.

    Args:
        parent: the parent's id.
        child: the child's id.
        pair: their per-slot comparison.
        records: model id -> metadata.
        sigs: model id -> signature.
        params: the identical-slot and coarse-grid thresholds.
    """
    view = EdgeView(pair, sigs[parent], sigs[child], records[child], params)
    return next((r.relation for r in RELATION_RULES if r.holds(view)), "finetune")


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
