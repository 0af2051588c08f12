"""Byte-identical copies: the earliest upload among them is the parent of the others and of
their derivatives.

Identical weights tie on every measure of closeness, so without this rule the parent among
copies is decided by download counts or by chance (a 2025 re-upload becoming the parent of the
2021 original's fine-tunes). A child whose card names one of the copies keeps that one: the card
tells which of equal weights it was made from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import networkx as nx

from fingerprint.comparison import PairResult
from hub.records import ModelRecord
from lineage.graph.traits import upload_order


@dataclass(frozen=True, slots=True)
class Copies:
    """Classes of byte-identical models.

    Attributes:
        original: model id -> the earliest upload of its class, for models that have copies.
        records: model id -> metadata (declared bases).
    """

    original: Mapping[str, str]
    records: Mapping[str, ModelRecord]

    def direction(self, a: str, b: str) -> float | None:
        """Within a class: +1 when a is the original, -1 when b is, 0 when neither is (neither
        is the other's parent); None when a and b are not copies of each other."""
        first = self.original.get(a)
        if first is None or self.original.get(b) != first:
            return None
        return 1.0 if a == first else -1.0 if b == first else 0.0

    def may_parent(self, u: str, v: str) -> bool:
        """Whether u may be v's parent: u has no copies, or u is the one of them that stands
        for its class towards v (the copy v's card names, else the original)."""
        first = self.original.get(u)
        if first is None:
            return True
        if self.original.get(v) == first:
            return u == first
        named = [b.id for b in self.records[v].declared_bases if self.original.get(b.id) == first]
        return u == min(named, key=lambda m: upload_order(self.records[m]), default=first)


def copy_classes(pairs: Sequence[PairResult], records: Mapping[str, ModelRecord]) -> Copies:
    """The classes of models connected by "identical" pairs, each with its original.

    Args:
        pairs: per-slot comparisons (an "identical" verdict needs equal bytes and shapes).
        records: model id -> metadata; upload time, then downloads, then id pick the original.
    """
    g = nx.Graph()
    g.add_edges_from((p.a, p.b) for p in pairs if p.verdict == "identical")
    original: dict[str, str] = {}
    for members in nx.connected_components(g):
        first = min(members, key=lambda m: upload_order(records[m]))
        original.update(dict.fromkeys(members, first))
    return Copies(original, records)
