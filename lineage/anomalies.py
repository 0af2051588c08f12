"""What does not add up: declared lineage against recovered lineage, copies, merges.

Each anomaly has a kind (lineage.records.ANOMALY_KINDS), a severity (high / medium / low), a
score in [0, 1] and one sentence of evidence with the numbers behind it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fingerprint.compare import PairResult, compare
from fingerprint.signature import Signature
from hub.records import ModelRecord
from lineage.records import Anomaly, Edge, Node

FEW_DOWNLOADS = 10  # seed pattern 1: < 10 downloads and a near-copy of an older model
MANY_DOWNLOADS = 100  # seed pattern 2: > 100 downloads and overlap < 0.1 with the declared base
# The seed used overlap > 0.9 on real Hub pairs, whose fine-tunes sit near 0.5. A light
# fine-tune of a small model can pass 0.9, so a near-copy here means > 0.98 (the seed's 0.9
# list is still printed by `lineage report`). Quantizing is a derivative, not a copy.
COPY_OVERLAP = 0.98
MISLABEL_OVERLAP = 0.1


def _pair(
    a: str, b: str, by_pair: Mapping[frozenset[str], PairResult], sigs: Mapping[str, Signature]
) -> PairResult | None:
    got = by_pair.get(frozenset((a, b)))
    if got is None and a in sigs and b in sigs:
        got = compare(sigs[a], sigs[b])
    return got


def _fmt(p: PairResult | None) -> str:
    if p is None:
        return "not comparable"
    pv = f"{p.p_value:.2g}" if p.p_value > 0 else "<1e-300"
    return f"overlap {p.overlap:.3f}, identity {p.identity:.2f}, p {pv}"


def find_anomalies(
    nodes: Sequence[Node],
    edges: Sequence[Edge],
    records: Mapping[str, ModelRecord],
    by_pair: Mapping[frozenset[str], PairResult],
    sigs: Mapping[str, Signature],
) -> list[Anomaly]:
    """Compare each model's declared bases with its recovered parents and flag the rest."""
    family = {n.id: n.family for n in nodes}
    into: dict[str, list[Edge]] = {}
    for e in edges:
        into.setdefault(e.child, []).append(e)
    out: list[Anomaly] = []
    for n in nodes:
        rec = records[n.id]
        parents = set(n.parents)
        declared = list(n.declared_base)
        known = [d for d in declared if d in sigs]
        main = into.get(n.id, [])
        best = max(main, key=lambda e: e.overlap) if main else None
        identical = bool(main) and all(e.relation == "copy" and e.identity >= 0.99 for e in main)

        if best is not None and identical:
            out.append(
                Anomaly(
                    n.id,
                    "reupload",
                    "high" if not declared else "medium",
                    1.0,
                    f"weights byte-identical to older {best.parent} ({_fmt(_pair(best.parent, n.id, by_pair, sigs))})",
                    (best.parent,),
                )
            )
        if (
            best is not None
            and rec.downloads < FEW_DOWNLOADS
            and best.overlap > COPY_OVERLAP
            and best.relation != "quantized"
            and (identical or not declared)
        ):
            out.append(
                Anomaly(
                    n.id,
                    "suspicious_copy",
                    "medium",
                    round(best.overlap, 4),
                    f"{rec.downloads} downloads and overlap {best.overlap:.3f} with older "
                    f"{best.parent}: likely a copy or test upload",
                    (best.parent,),
                )
            )
        if parents and not declared:
            out.append(
                Anomaly(
                    n.id,
                    "missing_base",
                    "medium",
                    round(best.overlap if best else 0.0, 4),
                    f"derived from {', '.join(sorted(parents))} "
                    f"({_fmt(_pair(n.parent, n.id, by_pair, sigs)) if n.parent else ''}) "
                    "but declares no base_model",
                    tuple(sorted(parents)),
                )
            )
        elif declared and known and len(parents) == 2 and set(known) < parents:
            missing = ", ".join(sorted(parents - set(known)))
            out.append(
                Anomaly(
                    n.id,
                    "undeclared_merge",
                    "medium",
                    0.8,
                    f"weights combine {' and '.join(sorted(parents))}; the card declares only "
                    f"{', '.join(known)}, not {missing}",
                    tuple(sorted(parents)),
                )
            )
        elif known and set(known) != parents:
            evid = [f"declares {d} ({_fmt(_pair(d, n.id, by_pair, sigs))})" for d in known]
            if parents:
                evid.append(
                    "weights point to "
                    + ", ".join(
                        f"{p} ({_fmt(_pair(p, n.id, by_pair, sigs))})" for p in sorted(parents)
                    )
                )
            else:
                evid.append("no parent found among the models compared")
            foreign = [d for d in known if family.get(d) != n.family]
            out.append(
                Anomaly(
                    n.id,
                    "declared_base_mismatch",
                    "high" if foreign else "medium",
                    1.0 if foreign else 0.6,
                    "; ".join(evid),
                    tuple(sorted(parents)) + tuple(known),
                )
            )
        if rec.downloads > MANY_DOWNLOADS:
            for d in known:
                p = _pair(d, n.id, by_pair, sigs)
                if p is not None and p.overlap < MISLABEL_OVERLAP and d not in parents:
                    out.append(
                        Anomaly(
                            n.id,
                            "mislabeled",
                            "high",
                            round(1 - p.overlap, 4),
                            f"{rec.downloads} downloads but overlap {p.overlap:.3f} with its "
                            f"declared base {d}: the card is likely wrong",
                            (d,),
                        )
                    )
    return out
