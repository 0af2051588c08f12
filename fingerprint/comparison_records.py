"""The records of a comparison: one slot (`SlotComparison`) and one pair (`PairResult`).

Frozen and plain: the pair cache stores thousands of them as JSON (`PairResult.to_dict`), the
graph reads their numbers, and `overlap_interval` derives how stable a pair's mean overlap is
from its slots on demand, so it is never stored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields

import numpy as np

# Fewer comparable slots than this and the result says so.
FEW_SLOTS = 4
# The interval of the mean overlap: resamples of the slots, and the percentiles kept.
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_PERCENTILES = (2.5, 97.5)


@dataclass(frozen=True, slots=True)
class SlotComparison:
    """One slot of a pair: which tensor, how much of bottom-k is shared, how much is identical.

    `same_bytes`: the windows' bytes are equal and so are the tensors' shapes.
    """

    key: str
    tensor: str
    shared: int
    k: int
    n: int
    overlap: float
    identity: float
    p_value: float
    same_bytes: bool
    # the population the null draws from (`fingerprint.structure.effective_population`): `n`,
    # or less where the windows' row or column pattern concentrates the extremes; 0 means `n`
    n_eff: int = 0

    @property
    def population(self) -> int:
        """The null's population for this slot (`p_value` and the pair's p use it)."""
        return self.n_eff or self.n


@dataclass(frozen=True, slots=True)
class PairResult:
    """The comparison of two models.

    `overlap` is the mean bottom-k overlap over comparable slots (the seed's "avg overlap
    ratio"); `identity` the mean estimated fraction of exactly equal weights; `p_value` the exact
    probability of at least this much total overlap between unrelated models.
    How stable the mean is across slots is `interval()`, derived from `per_slot` on demand (it is
    not stored: the graph compares thousands of pairs and reads none of them).
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
    # (layer of A, layer of B) when layers were matched by content (`fingerprint.alignment`)
    layer_map: tuple[tuple[int, int], ...] = ()

    def interval(self) -> tuple[float | None, float | None]:
        """`overlap_interval` of this pair's slots: (low, high), or (None, None) with few slots."""
        return overlap_interval(self.per_slot)

    def to_dict(self) -> dict:
        """The fields by name, per-slot records as dicts, tuples as lists (what `asdict` gives
        once the tuples are listed, field by field rather than through its recursive deep copy:
        the pair cache writes thousands of these, and `asdict` cost more than comparing)."""
        d = {name: getattr(self, name) for name in _PAIR_FIELDS}
        d["per_slot"] = [{name: getattr(s, name) for name in _SLOT_FIELDS} for s in self.per_slot]
        d["warnings"] = list(self.warnings)
        d["layer_map"] = [list(m) for m in self.layer_map]
        return d

    @staticmethod
    def from_dict(d: dict) -> PairResult:
        """Inverse of `to_dict` (JSON round trip)."""
        fields = {**d}
        fields["per_slot"] = tuple(SlotComparison(**s) for s in d["per_slot"])
        fields["warnings"] = tuple(d.get("warnings", ()))
        fields["layer_map"] = tuple((int(i), int(j)) for i, j in d.get("layer_map", ()))
        return PairResult(**fields)


_PAIR_FIELDS = tuple(f.name for f in fields(PairResult))
_SLOT_FIELDS = tuple(f.name for f in fields(SlotComparison))


def overlap_interval(per_slot: tuple[SlotComparison, ...]) -> tuple[float | None, float | None]:
    """A 95% bootstrap interval of the mean overlap over slots: how stable the pair's overlap is.

    The slots are resampled with replacement `BOOTSTRAP_RESAMPLES` times and the 2.5th and 97.5th
    percentiles of the resampled means kept. A bootstrap rather than a split-half: it speaks of
    the mean itself (the number the verdict and the graph read), and its answer does not hang on
    which split was drawn. Slots of one model are not independent (layers share a training run),
    so this tells uniform evidence from evidence resting on a few slots; it is no calibrated
    confidence interval. The seed comes from the sorted slot keys and the slots are taken in key
    order, so the interval is the same on every run and machine, and for (A, B) as for (B, A).

    Returns:
        (low, high), or (None, None) with fewer than `FEW_SLOTS` slots (too few to resample).
    """
    if len(per_slot) < FEW_SLOTS:
        return None, None
    ordered = sorted(per_slot, key=lambda s: s.key)
    keys = "\n".join(s.key for s in ordered).encode()
    seed = int.from_bytes(hashlib.blake2b(keys, digest_size=8).digest(), "little")
    ov = np.array([s.overlap for s in ordered], dtype=np.float64)
    picks = np.random.default_rng(seed).integers(0, ov.size, size=(BOOTSTRAP_RESAMPLES, ov.size))
    low, high = np.percentile(ov[picks].mean(axis=1), BOOTSTRAP_PERCENTILES)
    return float(low), float(high)
