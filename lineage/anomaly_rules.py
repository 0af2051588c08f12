"""The anomaly rules themselves: one function per kind, from a `Subject` to its findings,
and the thresholds they read. `lineage.anomalies.RULES` is the table that names them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from lineage.anomaly_subjects import Finding, Subject

if TYPE_CHECKING:
    from fingerprint.comparison import PairResult

FEW_DOWNLOADS = 10  # seed pattern 1: < 10 downloads and a near-copy of an older model
MANY_DOWNLOADS = 100  # seed pattern 2: > 100 downloads and overlap < 0.1 with the declared base
# The seed used overlap > 0.9 on real Hub pairs, whose fine-tunes sit near 0.5. A light
# fine-tune of a small model can pass 0.9, so a near-copy here means > 0.98 (the seed's 0.9
# list is still printed by `lineage report`). Quantizing is a derivative, not a copy.
COPY_OVERLAP = 0.98
MISLABEL_OVERLAP = 0.1


def _fmt(p: PairResult | None) -> str:
    if p is None:
        return "not comparable"
    pv = f"{p.p_value:.2g}" if p.p_value > 0 else "<1e-300"
    return f"overlap {p.overlap:.3f}, identity {p.identity:.2f}, p {pv}"


def _merge_leaves_out(s: Subject) -> bool:
    # a merge whose card declares a proper subset of its two recovered parents
    return bool(s.declared and s.known and len(s.parents) == 2 and set(s.known) < s.parents)


def reupload(s: Subject) -> list[Finding]:
    # an export to another file format (an fp32 ONNX, an F16 GGUF) holds the same bytes by
    # design: packaging, not a re-upload (undeclared, it is a missing base)
    if s.best is None or not s.identical or s.best.method:
        return []
    parent = s.best.parent
    evidence = f"weights byte-identical to older {parent} ({_fmt(s.pair(parent))})"
    return [Finding(1.0, evidence, (parent,))]


def suspicious_copy(s: Subject) -> list[Finding]:
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


def missing_base(s: Subject) -> list[Finding]:
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


def undeclared_merge(s: Subject) -> list[Finding]:
    if not _merge_leaves_out(s):
        return []
    missing = ", ".join(sorted(s.parents - set(s.known)))
    evidence = (
        f"weights combine {' and '.join(sorted(s.parents))}; the card declares only "
        f"{', '.join(s.known)}, not {missing}"
    )
    return [Finding(0.8, evidence, tuple(sorted(s.parents)))]


def declared_base_mismatch(s: Subject) -> list[Finding]:
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


def adapter_rule(kind: str) -> Callable[[Subject], list[Finding]]:
    """The findings of `kind` that `lineage.adapter_links` made from the adapter's own files
    (score 1: the shapes or the comparison say it outright)."""

    def find(s: Subject) -> list[Finding]:
        return [
            Finding(1.0, f.evidence, (f.declared,) if f.declared else ())
            for f in s.adapter
            if f.kind == kind
        ]

    return find


def _cousin(p: PairResult | None) -> bool:
    return p is not None and p.verdict == "cousin"


def mislabeled(s: Subject) -> list[Finding]:
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


def fixed(level: str) -> Callable[[Subject], str]:
    """A severity rule that gives `level` whatever the model."""
    return lambda s: level
