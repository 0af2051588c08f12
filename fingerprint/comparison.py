"""Comparing two signatures: per-slot overlap and identity, an exact p-value, a verdict."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from fingerprint import significance
from fingerprint.errors import IncompatibleSignaturesError
from fingerprint.records import Signature, SlotSignature

VERDICTS = ("identical", "derived", "unrelated", "incomparable")
DEFAULT_ALPHA = 1e-4
# Fewer comparable slots than this and the result says so.
FEW_SLOTS = 4


@dataclass(frozen=True, slots=True)
class SlotComparison:
    """One slot of a pair: which tensor, how much of bottom-k is shared, how much is identical."""

    key: str
    tensor: str
    shared: int
    k: int
    n: int
    overlap: float
    identity: float
    p_value: float
    same_bytes: bool


@dataclass(frozen=True, slots=True)
class PairResult:
    """The comparison of two models.

    `overlap` is the mean bottom-k overlap over comparable slots (the seed's "avg overlap
    ratio"); `identity` the mean estimated fraction of exactly equal weights; `p_value` the exact
    probability of at least this much total overlap between unrelated models.
    """

    a: str
    b: str
    overlap: float
    overlap_median: float
    overlap_min: float
    overlap_std: float
    identity: float
    p_value: float
    log10_p: float
    slots_compared: int
    slots_a: int
    slots_b: int
    verdict: str
    per_slot: tuple[SlotComparison, ...]
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["per_slot"] = [asdict(s) for s in self.per_slot]
        d["warnings"] = list(self.warnings)
        return d

    @staticmethod
    def from_dict(d: dict) -> PairResult:
        """Inverse of `to_dict` (JSON round trip)."""
        fields = {**d}
        fields["per_slot"] = tuple(SlotComparison(**s) for s in d["per_slot"])
        fields["warnings"] = tuple(d.get("warnings", ()))
        return PairResult(**fields)


def check_compatible(a: Signature, b: Signature) -> None:
    """Raise unless both signatures were made with the same parameters."""
    if a.params != b.params:
        raise IncompatibleSignaturesError(
            f"signatures of {a.model_id or 'A'} ({a.params.tag()}) and {b.model_id or 'B'} "
            f"({b.params.tag()}) were made with different parameters; re-fingerprint one of them "
            "with the other's settings"
        )


def identity_jaccard(x: np.ndarray, y: np.ndarray, k: int) -> float:
    """Bottom-k MinHash estimate of Jaccard similarity from two sorted sketches."""
    if x.size == 0 or y.size == 0:
        return 0.0
    union = np.union1d(x, y)[: min(k, x.size, y.size)]
    both = np.intersect1d(np.intersect1d(union, x, assume_unique=True), y, assume_unique=True)
    return float(both.size / union.size)


def compare_slot(sa: SlotSignature, sb: SlotSignature, k: int, identity_k: int) -> SlotComparison:
    shared = int(np.intersect1d(sa.positions, sb.positions, assume_unique=True).size)
    kk = min(sa.positions.size, sb.positions.size)
    return SlotComparison(
        key=sa.key,
        tensor=sa.tensor,
        shared=shared,
        k=kk,
        n=sa.n,
        overlap=shared / kk if kk else 0.0,
        identity=identity_jaccard(sa.identity, sb.identity, identity_k),
        p_value=significance.slot_tail(shared, sa.n, kk),
        same_bytes=sa.digest == sb.digest,
    )


def compare(a: Signature, b: Signature, *, alpha: float = DEFAULT_ALPHA) -> PairResult:
    """Compare two signatures made with the same parameters.

    Args:
        a, b: signatures (their `model_id`s name the pair).
        alpha: significance level for the verdict "derived".

    Raises:
        IncompatibleSignaturesError: the parameters differ.
    """
    check_compatible(a, b)
    p = a.params
    by_key = {s.key: s for s in b.slots}
    per_slot = tuple(
        compare_slot(sa, by_key[sa.key], p.k, p.identity_k)
        for sa in a.slots
        # a window no larger than k says nothing: every position is in bottom-k
        if sa.key in by_key and sa.positions.size < sa.n
    )
    return summarize(a.model_id, b.model_id, per_slot, len(a.slots), len(b.slots), alpha=alpha)


def summarize(
    a: str,
    b: str,
    per_slot: tuple[SlotComparison, ...],
    slots_a: int,
    slots_b: int,
    *,
    alpha: float = DEFAULT_ALPHA,
) -> PairResult:
    """Pair-level numbers and the verdict from per-slot comparisons."""
    warnings = []
    if not per_slot:
        return PairResult(
            a,
            b,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            1.0,
            0.0,
            0,
            slots_a,
            slots_b,
            "incomparable",
            (),
            ("no slot in common: different architectures (or no eligible tensors)",),
        )
    if len(per_slot) < FEW_SLOTS:
        warnings.append(f"only {len(per_slot)} comparable slots; the estimate is unstable")
    ov = np.array([s.overlap for s in per_slot])
    shared_total = sum(s.shared for s in per_slot)
    p_value = significance.combined_tail(shared_total, ((s.n, s.k) for s in per_slot))
    identity = float(np.mean([s.identity for s in per_slot]))
    if all(s.same_bytes for s in per_slot):
        verdict = "identical"
    elif p_value <= alpha:
        verdict = "derived"
    else:
        verdict = "unrelated"
    return PairResult(
        a=a,
        b=b,
        overlap=float(ov.mean()),
        overlap_median=float(np.median(ov)),
        overlap_min=float(ov.min()),
        overlap_std=float(ov.std()),
        identity=identity,
        p_value=p_value,
        log10_p=significance.log10(p_value),
        slots_compared=len(per_slot),
        slots_a=slots_a,
        slots_b=slots_b,
        verdict=verdict,
        per_slot=per_slot,
        warnings=tuple(warnings),
    )
