"""What does not add up: declared lineage against recovered lineage, copies, merges.

The rules are one table, `RULES`: each anomaly kind with the function that finds it, its
severity rule, a short label for plots and one line of help for the CLI. A new kind is one
function and one row. Each anomaly has a severity (high / medium / low), a score in [0, 1] and
one sentence of evidence with the numbers behind it.

Rules read only the comparisons they are given: the detailed pairs the graph used and the
declared (base, model) pairs the caller compared up front (`allpairs.declared_pairs`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lineage.records import Anomaly, Edge, LineageGraph, Node, Relative

if TYPE_CHECKING:  # kept light: the CLI reads RULES for its help without numpy or torch
    from fingerprint.comparison import PairResult
    from hub.records import ModelRecord
    from lineage.adapter_links import AdapterFinding

FEW_DOWNLOADS = 10  # seed pattern 1: < 10 downloads and a near-copy of an older model
MANY_DOWNLOADS = 100  # seed pattern 2: > 100 downloads and overlap < 0.1 with the declared base
# The seed used overlap > 0.9 on real Hub pairs, whose fine-tunes sit near 0.5. A light
# fine-tune of a small model can pass 0.9, so a near-copy here means > 0.98 (the seed's 0.9
# list is still printed by `lineage report`). Quantizing is a derivative, not a copy.
COPY_OVERLAP = 0.98
MISLABEL_OVERLAP = 0.1


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


@dataclass(frozen=True, slots=True)
class AnomalyRule:
    """One anomaly kind.

    Attributes:
        kind: the name in outputs (`anomalies --json`, the tree's node lists).
        label: a short label for plots.
        help: one line for the CLI and docs.
        severity: the severity rule, from the model the rule fired on.
        find: the rule: its findings on one model (none, one, or one per declared base).
        order: where its anomalies stand among one model's (the weights' evidence first,
            then the card's).
    """

    kind: str
    label: str
    help: str
    severity: Callable[[Subject], str]
    find: Callable[[Subject], Iterable[Finding]]
    order: int


def _fmt(p: PairResult | None) -> str:
    if p is None:
        return "not comparable"
    pv = f"{p.p_value:.2g}" if p.p_value > 0 else "<1e-300"
    return f"overlap {p.overlap:.3f}, identity {p.identity:.2f}, p {pv}"


def _merge_leaves_out(s: Subject) -> bool:
    # a merge whose card declares a proper subset of its two recovered parents
    return bool(s.declared and s.known and len(s.parents) == 2 and set(s.known) < s.parents)


def _reupload(s: Subject) -> list[Finding]:
    # an export to another file format (an fp32 ONNX, an F16 GGUF) holds the same bytes by
    # design: packaging, not a re-upload (undeclared, it is a missing base)
    if s.best is None or not s.identical or s.best.method:
        return []
    parent = s.best.parent
    evidence = f"weights byte-identical to older {parent} ({_fmt(s.pair(parent))})"
    return [Finding(1.0, evidence, (parent,))]


def _suspicious_copy(s: Subject) -> list[Finding]:
    best = s.best
    if not (
        best is not None
        and s.record.downloads < FEW_DOWNLOADS
        and best.overlap > COPY_OVERLAP
        and best.relation != "quantized"
        # a GGUF or ONNX conversion is packaging, not a copy (an undeclared one is missing_base)
        and not best.method
        and (s.identical or not s.declared)
    ):
        return []
    evidence = (
        f"{s.record.downloads} downloads and overlap {best.overlap:.3f} with older "
        f"{best.parent}: likely a copy or test upload"
    )
    return [Finding(round(best.overlap, 4), evidence, (best.parent,))]


def _missing_base(s: Subject) -> list[Finding]:
    if not s.parents or s.declared:
        return []
    parents = sorted(s.parents)
    main = s.node.parent
    evidence = (
        f"derived from {', '.join(parents)} "
        f"({_fmt(s.pair(main)) if main else ''}) "
        "but declares no base_model"
    )
    return [Finding(round(s.best.overlap if s.best else 0.0, 4), evidence, tuple(parents))]


def _undeclared_merge(s: Subject) -> list[Finding]:
    if not _merge_leaves_out(s):
        return []
    missing = ", ".join(sorted(s.parents - set(s.known)))
    evidence = (
        f"weights combine {' and '.join(sorted(s.parents))}; the card declares only "
        f"{', '.join(s.known)}, not {missing}"
    )
    return [Finding(0.8, evidence, tuple(sorted(s.parents)))]


def _declared_base_mismatch(s: Subject) -> list[Finding]:
    if not s.known or set(s.known) == s.parents or _merge_leaves_out(s):
        return []
    if not s.parents and s.record.extra.get("adapter"):
        # an adapter-only repo's factors share no weight with any base, so finding no parent
        # says nothing: its declared base is checked on its own files (the adapter_* rules)
        return []
    if s.parents <= set(s.known) and all(d in s.parents or _cousin(s.pair(d)) for d in s.known):
        # a student that declares the teacher whose embeddings it took: partial, not false
        return []
    evid = [f"declares {d} ({_fmt(s.pair(d))})" for d in s.known]
    if s.parents:
        evid.append(
            "weights point to " + ", ".join(f"{p} ({_fmt(s.pair(p))})" for p in sorted(s.parents))
        )
    else:
        evid.append("no parent found among the models compared")
    score = 1.0 if s.foreign else 0.6
    return [Finding(score, "; ".join(evid), tuple(sorted(s.parents)) + s.known)]


def _adapter_rule(kind: str) -> Callable[[Subject], list[Finding]]:
    """The findings of `kind` that `lineage.adapter_links` made from the adapter's own files
    (score 1: the shapes or the comparison say it outright)."""

    def find(s: Subject) -> list[Finding]:
        return [
            Finding(1.0, f.evidence, (f.declared,) if f.declared else ())
            for f in s.adapter
            if f.kind == kind
        ]

    return find


def _relatives(s: Subject, related: Sequence[str]) -> tuple[Relative, ...]:
    """The model's comparison with each related model that was compared, as fields."""
    out = []
    for other in related:
        p = s.pair(other)
        if p is not None:
            out.append(Relative(other, p.verdict, p.overlap, p.identity, p.p_value))
    return tuple(out)


def _cousin(p: PairResult | None) -> bool:
    return p is not None and p.verdict == "cousin"


def _mislabeled(s: Subject) -> list[Finding]:
    if s.record.downloads <= MANY_DOWNLOADS:
        return []
    out = []
    for d in s.known:
        p = s.pair(d)
        if p is not None and p.overlap < MISLABEL_OVERLAP and d not in s.parents and not _cousin(p):
            evidence = (
                f"{s.record.downloads} downloads but overlap {p.overlap:.3f} with its "
                f"declared base {d}: the card is likely wrong"
            )
            out.append(Finding(round(1 - p.overlap, 4), evidence, (d,)))
    return out


# most severe first: the CLI lists anomalies in this order, and `--fail-on LEVEL` fails on
# LEVEL and everything before it
SEVERITIES = ("high", "medium", "low")


def at_least(anomalies: Sequence[Anomaly], level: str) -> list[Anomaly]:
    """The anomalies of severity `level` or more severe."""
    worst = SEVERITIES.index(level)
    return [a for a in anomalies if SEVERITIES.index(a.severity) <= worst]


def by_severity(anomalies: Sequence[Anomaly]) -> list[Anomaly]:
    """Most severe first, then by score (highest first), model and kind."""
    return sorted(
        anomalies, key=lambda a: (SEVERITIES.index(a.severity), -a.score, a.model, a.kind)
    )


def _fixed(level: str) -> Callable[[Subject], str]:
    return lambda s: level


# Listed in the order of docs, CLI help and evaluation tables; `order` is the order in which a
# model's anomalies are reported.
RULES: tuple[AnomalyRule, ...] = (
    AnomalyRule(
        kind="declared_base_mismatch",
        label="base mismatch",
        help="a declared base is not a recovered parent, high when it lies in another family",
        severity=lambda s: "high" if s.foreign else "medium",
        find=_declared_base_mismatch,
        order=4,
    ),
    AnomalyRule(
        kind="missing_base",
        label="no base declared",
        help="derived from a recovered parent but the card declares no base_model",
        severity=_fixed("medium"),
        find=_missing_base,
        order=2,
    ),
    AnomalyRule(
        kind="reupload",
        label="re-upload",
        help="every slot byte-identical to an older model, high when the card declares no base",
        severity=lambda s: "medium" if s.declared else "high",
        find=_reupload,
        order=0,
    ),
    AnomalyRule(
        kind="suspicious_copy",
        label="copy?",
        help=f"< {FEW_DOWNLOADS} downloads and overlap > {COPY_OVERLAP} with an older model, "
        "undeclared or byte-identical: the seed's pattern 1",
        severity=_fixed("medium"),
        find=_suspicious_copy,
        order=1,
    ),
    AnomalyRule(
        kind="mislabeled",
        label="mislabeled?",
        help=f"> {MANY_DOWNLOADS} downloads and overlap < {MISLABEL_OVERLAP} with the declared "
        "base: the seed's pattern 2",
        severity=_fixed("high"),
        find=_mislabeled,
        order=5,
    ),
    AnomalyRule(
        kind="undeclared_merge",
        label="undeclared merge",
        help="weights combine two recovered parents, the card declares only one of them",
        severity=_fixed("medium"),
        find=_undeclared_merge,
        order=3,
    ),
    AnomalyRule(
        kind="adapter_base_mismatch",
        label="adapter base?",
        help="an adapter's LoRA updates do not fit the shapes of the base it declares",
        severity=_fixed("high"),
        find=_adapter_rule("adapter_base_mismatch"),
        order=6,
    ),
    AnomalyRule(
        kind="adapter_not_an_update",
        label="not an update",
        help="an adapter's update applied to its declared base's windows leaves them unrelated",
        severity=_fixed("medium"),
        find=_adapter_rule("adapter_not_an_update"),
        order=7,
    ),
)
ANOMALY_KINDS: tuple[str, ...] = tuple(r.kind for r in RULES)
_REPORTED = tuple(sorted(RULES, key=lambda r: r.order))


def _byte_identical(e: Edge, pairs: Pairs) -> bool:
    # a copy edge whose comparison found equal bytes and equal shapes everywhere: a cast or a
    # vocabulary extension keeps most values but is no re-upload
    p = pairs.get(e.parent, e.child)
    return (
        e.relation == "copy" and e.identity >= 0.99 and p is not None and p.verdict == "identical"
    )


def _subjects(
    graph: LineageGraph,
    records: Mapping[str, ModelRecord],
    pairs: Pairs,
    adapter: Mapping[str, Sequence[AdapterFinding]],
) -> Iterable[Subject]:
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


def find_anomalies(
    graph: LineageGraph,
    records: Mapping[str, ModelRecord],
    pairs: Sequence[PairResult],
    declared: Mapping[tuple[str, str], PairResult],
    adapter_findings: Sequence[AdapterFinding] = (),
) -> list[Anomaly]:
    """Compare each model's declared bases with its recovered parents and flag the rest.

    Args:
        graph: the recovered forest (its own anomalies are ignored).
        records: model id -> metadata.
        pairs: the per-slot comparisons the graph was built from.
        declared: (base, model) comparisons of declared bases that `pairs` lacks
            (`allpairs.declared_pairs`).
        adapter_findings: what `lineage.adapter_links` found on adapter-only repos' files.

    Returns:
        The anomalies, model by model in the graph's node order, each model's in rule `order`.
    """
    out: list[Anomaly] = []
    detailed = {frozenset((p.a, p.b)): p for p in pairs}
    by_adapter: dict[str, list[AdapterFinding]] = {}
    for found in adapter_findings:
        by_adapter.setdefault(found.adapter, []).append(found)
    for s in _subjects(graph, records, Pairs(detailed, declared), by_adapter):
        for rule in _REPORTED:
            for f in rule.find(s):
                out.append(
                    Anomaly(
                        s.id,
                        rule.kind,
                        rule.severity(s),
                        f.score,
                        f.evidence,
                        f.related,
                        _relatives(s, f.related),
                    )
                )
    return out
