"""Comparing two signatures: per-slot overlap and identity, an exact p-value, a verdict.

`compare` is the entry point, and this module the one place callers import from: the parts live
in modules of their own and every name callers use is re-exported here.

- `fingerprint.comparison_records`: `SlotComparison`, `PairResult`, `overlap_interval`.
- `fingerprint.comparison_slots`: per-slot counts, identity and tail (`compare_slots`).
- `fingerprint.comparison_shapes`: what differs in shape (`shape_changes`, `structure_changes`).
- `fingerprint.verdict`: the rules from per-slot comparisons to a verdict (`summarize`).
- `fingerprint.alignment`: layers met by content where the two models number them differently
  (pruned or up-scaled depth).
"""

from __future__ import annotations

from fingerprint.alignment import match_slots
from fingerprint.comparison_records import (
    BOOTSTRAP_PERCENTILES,
    BOOTSTRAP_RESAMPLES,
    FEW_SLOTS,
    PairResult,
    SlotComparison,
    overlap_interval,
)
from fingerprint.comparison_shapes import is_position_table, shape_changes, structure_changes
from fingerprint.comparison_slots import (
    compare_slot,
    compare_slots,
    identity_jaccard,
    identity_jaccards,
)
from fingerprint.errors import IncompatibleSignaturesError
from fingerprint.records import Signature
from fingerprint.verdict import (
    DEFAULT_ALPHA,
    DERIVED,
    PART_OVERLAP,
    SPREAD_DROP,
    STRUCTURED_NAMED,
    STRUCTURED_TAIL,
    VERDICTS,
    chance_overlap,
    shared_parts,
    spread_tail,
    summarize,
)

__all__ = [
    "BOOTSTRAP_PERCENTILES",
    "BOOTSTRAP_RESAMPLES",
    "COMPARE_VERSION",
    "DEFAULT_ALPHA",
    "DERIVED",
    "FEW_SLOTS",
    "PART_OVERLAP",
    "SPREAD_DROP",
    "STRUCTURED_NAMED",
    "STRUCTURED_TAIL",
    "VERDICTS",
    "PairResult",
    "SlotComparison",
    "chance_overlap",
    "check_compatible",
    "compare",
    "compare_slot",
    "compare_slots",
    "identity_jaccard",
    "identity_jaccards",
    "is_position_table",
    "overlap_interval",
    "shape_changes",
    "shared_parts",
    "spread_tail",
    "structure_changes",
    "summarize",
]

# The rules that turn two signatures into a PairResult. Bump it with any change that can alter a
# stored comparison (a verdict, a warning, a number): cached pairs made under another version
# are recomputed (lineage.paircache). 2: "identical" needs equal shapes; "derived" must hold
# without the most significant slots. 3: layers matched by content; "cousin"; the blocks
# must carry "derived" when there are blocks. 4: a slot's null draws from the population its
# windows' row or column pattern leaves (`fingerprint.structure`). 5: identity from the
# signature format 3 sketch (a hashed 1-in-8 subset of positions).
COMPARE_VERSION = 5


def check_compatible(a: Signature, b: Signature) -> None:
    """Raise unless both signatures were made with the same parameters."""
    if a.params != b.params:
        raise IncompatibleSignaturesError(
            f"signatures of {a.model_id or 'A'} ({a.params.tag()}) and {b.model_id or 'B'} "
            f"({b.params.tag()}) were made with different parameters; re-fingerprint one of them "
            "with the other's settings"
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
    matched = match_slots(a, b)
    per_slot = compare_slots(matched.pairs, p.identity_k, (a.slots, b.slots))
    return summarize(
        a.model_id,
        b.model_id,
        per_slot,
        len(a.slots),
        len(b.slots),
        alpha=alpha,
        shapes=shape_changes(a, b),
        layer_map=matched.layer_map,
    )
