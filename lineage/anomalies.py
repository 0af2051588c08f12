"""What does not add up: declared lineage against recovered lineage, copies, merges.

The rules are one table, `RULES`: each anomaly kind with the function that finds it, its
severity rule, a short label for plots and one line of help for the CLI. A new kind is one
function (`lineage.anomaly_rules`) and one row. Each anomaly has a severity (high / medium / low), a score in [0, 1] and
one sentence of evidence with the numbers behind it.

Rules read only the comparisons they are given: the detailed pairs the graph used and the
declared (base, model) pairs the caller compared up front (`allpairs.declared_pairs`).

The parts live beside it: `lineage.anomaly_subjects` (a model as the rules see it) and
`lineage.anomaly_rules` (one function per kind, and the thresholds).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lineage.anomaly_rules import (
    COPY_OVERLAP,
    FEW_DOWNLOADS,
    MANY_DOWNLOADS,
    MISLABEL_OVERLAP,
    adapter_rule,
    declared_base_mismatch,
    fixed,
    mislabeled,
    missing_base,
    reupload,
    suspicious_copy,
    undeclared_merge,
)
from lineage.anomaly_subjects import Finding, Pairs, Subject, relatives, subjects
from lineage.records import Anomaly, LineageGraph

if TYPE_CHECKING:  # kept light: the CLI reads RULES for its help without numpy or torch
    from fingerprint.comparison import PairResult
    from hub.records import ModelRecord
    from lineage.adapter_links import AdapterFinding

__all__ = [
    "ANOMALY_KINDS",
    "COPY_OVERLAP",
    "FEW_DOWNLOADS",
    "MANY_DOWNLOADS",
    "MISLABEL_OVERLAP",
    "RULES",
    "SEVERITIES",
    "AnomalyRule",
    "Finding",
    "Pairs",
    "Subject",
    "at_least",
    "by_severity",
    "find_anomalies",
]


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


# Listed in the order of docs, CLI help and evaluation tables; `order` is the order in which a
# model's anomalies are reported.
RULES: tuple[AnomalyRule, ...] = (
    AnomalyRule(
        kind="declared_base_mismatch",
        label="base mismatch",
        help="a declared base is not a recovered parent, high when it lies in another family",
        severity=lambda s: "high" if s.foreign else "medium",
        find=declared_base_mismatch,
        order=4,
    ),
    AnomalyRule(
        kind="missing_base",
        label="no base declared",
        help="derived from a recovered parent but the card declares no base_model",
        severity=fixed("medium"),
        find=missing_base,
        order=2,
    ),
    AnomalyRule(
        kind="reupload",
        label="re-upload",
        help="every slot byte-identical to an older model, high when the card declares no base",
        severity=lambda s: "medium" if s.declared else "high",
        find=reupload,
        order=0,
    ),
    AnomalyRule(
        kind="suspicious_copy",
        label="copy?",
        help=f"< {FEW_DOWNLOADS} downloads and overlap > {COPY_OVERLAP} with an older model, "
        "undeclared or byte-identical: the seed's pattern 1",
        severity=fixed("medium"),
        find=suspicious_copy,
        order=1,
    ),
    AnomalyRule(
        kind="mislabeled",
        label="mislabeled?",
        help=f"> {MANY_DOWNLOADS} downloads and overlap < {MISLABEL_OVERLAP} with the declared "
        "base: the seed's pattern 2",
        severity=fixed("high"),
        find=mislabeled,
        order=5,
    ),
    AnomalyRule(
        kind="undeclared_merge",
        label="undeclared merge",
        help="weights combine two recovered parents, the card declares only one of them",
        severity=fixed("medium"),
        find=undeclared_merge,
        order=3,
    ),
    AnomalyRule(
        kind="adapter_base_mismatch",
        label="adapter base?",
        help="an adapter's LoRA updates do not fit the shapes of the base it declares",
        severity=fixed("high"),
        find=adapter_rule("adapter_base_mismatch"),
        order=6,
    ),
    AnomalyRule(
        kind="adapter_not_an_update",
        label="not an update",
        help="an adapter's update applied to its declared base's windows leaves them unrelated",
        severity=fixed("medium"),
        find=adapter_rule("adapter_not_an_update"),
        order=7,
    ),
)
ANOMALY_KINDS: tuple[str, ...] = tuple(r.kind for r in RULES)
_REPORTED = tuple(sorted(RULES, key=lambda r: r.order))


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
    for s in subjects(graph, records, Pairs(detailed, declared), by_adapter):
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
                        relatives(s, f.related),
                    )
                )
    return out
