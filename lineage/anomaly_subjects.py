"""Each model as the anomaly rules see it (`Subject`): its recovered parents and declared bases,
with the comparisons the rules may read (`Pairs`), and what a rule returns (`Finding`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lineage.records import Edge, LineageGraph, Node, Relative

if TYPE_CHECKING:  # kept light: the CLI reads the rules for its help without numpy or torch
    from fingerprint.comparison import PairResult
    from hub.records import ModelRecord
    from lineage.adapter_links import AdapterFinding


@dataclass(frozen=True, slots=True)
class Pairs:
    """The comparisons the rules may read."""

    detailed: Mapping[frozenset[str], PairResult]
    declared: Mapping[tuple[str, str], PairResult]

    def get(self, a: str, b: str) -> PairResult | None:
        """The comparison of a with b: a detailed pair (either order), else a declared
        (base a, model b) pair, else None (not comparable)."""
        got = self.detailed.get(frozenset((a, b)))
        return got if got is not None else self.declared.get((a, b))


@dataclass(frozen=True, slots=True)
class Subject:
    """One model as the rules see it: its recovered and its declared lineage."""

    node: Node
    record: ModelRecord
    declared: tuple[str, ...]  # the bases its card declares
    known: tuple[str, ...]  # ... those that have a signature (are in the graph)
    foreign: tuple[str, ...]  # ... those in another family
    parents: frozenset[str]  # recovered parents
    best: Edge | None  # the recovered parent edge of highest overlap
    identical: bool  # every parent edge a byte-identical copy (equal bytes and shapes)
    pairs: Pairs
    # what its own files said of an adapter-only repo and its declared base (`adapter_links`)
    adapter: tuple[AdapterFinding, ...] = ()

    @property
    def id(self) -> str:
        return self.node.id

    def pair(self, other: str) -> PairResult | None:
        """This model's comparison with `other` (its parent or declared base)."""
        return self.pairs.get(other, self.id)


@dataclass(frozen=True, slots=True)
class Finding:
    """What a rule found: the anomaly less its model, kind and severity."""

    score: float
    evidence: str
    related: tuple[str, ...]


def relatives(s: Subject, related: Sequence[str]) -> tuple[Relative, ...]:
    """The model's comparison with each related model that was compared, as fields."""
    out = []
    for other in related:
        p = s.pair(other)
        if p is not None:
            out.append(Relative(other, p.verdict, p.overlap, p.identity, p.p_value))
    return tuple(out)


def _byte_identical(e: Edge, pairs: Pairs) -> bool:
    # a copy edge whose comparison found equal bytes and equal shapes everywhere: a cast or a
    # vocabulary extension keeps most values but is no re-upload
    p = pairs.get(e.parent, e.child)
    return (
        e.relation == "copy" and e.identity >= 0.99 and p is not None and p.verdict == "identical"
    )


def subjects(
    graph: LineageGraph,
    records: Mapping[str, ModelRecord],
    pairs: Pairs,
    adapter: Mapping[str, Sequence[AdapterFinding]],
) -> Iterable[Subject]:
    """One `Subject` per node of `graph`, in node order."""
    family = {n.id: n.family for n in graph.nodes}
    into: dict[str, list[Edge]] = {}
    for e in graph.edges:
        into.setdefault(e.child, []).append(e)
    for n in graph.nodes:
        known = tuple(d for d in n.declared_base if d in family)
        main = into.get(n.id, [])
        yield Subject(
            node=n,
            record=records[n.id],
            declared=n.declared_base,
            known=known,
            foreign=tuple(d for d in known if family[d] != n.family),
            parents=frozenset(n.parents),
            best=max(main, key=lambda e: e.overlap) if main else None,
            identical=bool(main) and all(_byte_identical(e, pairs) for e in main),
            pairs=pairs,
            adapter=tuple(adapter.get(n.id, ())),
        )
