"""The verdict of a pair from its per-slot comparisons: a table of rules, in order.

"identical" means byte-identical everywhere the signatures can tell: every window's bytes, every
tensor's shape and the same slots on both sides. Windows read the first rows only, so a tensor
with rows appended (a vocabulary extension) has the same window; its shape tells them apart.

"derived" needs more than an exact p-value at or below alpha: the null takes positions to be
exchangeable, and structured tensors break that (position embeddings, trained rotary q/k
projections put their extremes in the same places whatever the init). One such slot alone can
carry the total below alpha, so the evidence must also hold without the `SPREAD_DROP` most
significant slots, and the mean overlap must be above chance (docs/design.md, "Significance").
Where a model has numbered blocks, they must carry it: two models that share only tensors
outside the blocks (word embeddings from one teacher, everything else trained apart) are
"cousin"s, related through a common source and neither derived from the other.
"""

from __future__ import annotations

import numpy as np

from fingerprint import significance
from fingerprint.alignment import split_key
from fingerprint.comparison_records import FEW_SLOTS, PairResult, SlotComparison
from fingerprint.comparison_shapes import is_position_table, layer_lines

VERDICTS = ("identical", "derived", "cousin", "unrelated", "incomparable")
# the verdicts that say one model's weights come from the other's (parent edges, matches)
DERIVED = ("identical", "derived")
DEFAULT_ALPHA = 1e-4
# "derived" must hold without this many of the most significant slots (at least one slot is
# kept): unrelated same-config pairs reach p < 1e-4 on one or two structured slots (a GPT-2's
# position embedding; a Llama's layer-0 q_proj and k_proj), a real relation is in every slot.
SPREAD_DROP = 3
# A slot outside the blocks "shares a part" at this overlap: far above what the structured
# tensors of unrelated models reach (0.057 for a GPT-2 position embedding, 0.074 for a trained
# layer-0 q_proj under RoPE, issue 14), far below a copied or fine-tuned tensor's.
PART_OVERLAP = 0.25
# A left-out slot whose own tail is below this is named in the warnings as structured.
STRUCTURED_TAIL = 1e-3
STRUCTURED_NAMED = 5  # at most this many of them


def summarize(
    a: str,
    b: str,
    per_slot: tuple[SlotComparison, ...],
    slots_a: int,
    slots_b: int,
    *,
    alpha: float = DEFAULT_ALPHA,
    shapes: tuple[str, ...] = (),
    layer_map: tuple[tuple[int, int], ...] = (),
) -> PairResult:
    """Pair-level numbers and the verdict from per-slot comparisons.

    Args:
        a, b: the models' ids.
        per_slot: the comparable slots.
        slots_a, slots_b: each side's slot count.
        alpha: significance level for "derived".
        shapes: `shape_changes` of the pair; any rules out "identical" and becomes a warning.
        layer_map: (layer of A, layer of B) matched by content, when not by number.
    """
    warnings = [*shapes, *layer_lines(layer_map)]
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
    overlap = float(ov.mean())
    p_value = _tail(per_slot)
    identity = float(np.mean([s.identity for s in per_slot]))
    if all(s.same_bytes for s in per_slot) and not shapes:
        verdict = "identical"
    elif p_value <= alpha:
        verdict, why = _beyond_chance(per_slot, overlap, p_value, alpha)
        warnings.extend(why)
    else:
        verdict = "unrelated"
    return PairResult(
        a=a,
        b=b,
        overlap=overlap,
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
        layer_map=layer_map,
    )


def _tail(per_slot: tuple[SlotComparison, ...]) -> float:
    """Exact P(total shared >= observed) over these slots under independence, each slot's
    null drawn from its `population`."""
    return significance.combined_tail(
        sum(s.shared for s in per_slot), ((s.population, s.k) for s in per_slot)
    )


def spread_tail(
    per_slot: tuple[SlotComparison, ...], drop: int = SPREAD_DROP
) -> tuple[float, tuple[SlotComparison, ...]]:
    """The exact tail without the `drop` most significant slots (at least one slot is kept).

    Returns:
        The tail over the remaining slots, and the slots left out (most significant first).
    """
    ranked = sorted(per_slot, key=lambda s: (s.p_value, s.key))
    cut = min(drop, len(ranked) - 1)
    return _tail(tuple(ranked[cut:])), tuple(ranked[:cut])


def chance_overlap(per_slot: tuple[SlotComparison, ...]) -> float:
    """The mean overlap unrelated models have on average: k / population per slot, averaged."""
    return float(np.mean([s.k / s.population for s in per_slot]))


def _beyond_chance(
    per_slot: tuple[SlotComparison, ...], overlap: float, p_value: float, alpha: float
) -> tuple[str, list[str]]:
    """The verdict of a pair with p <= alpha, and why it is not "derived" when it is not.

    `overlap` is the pair's mean overlap over `per_slot`. The rows, in order: at or below chance
    overlap is no relation; when the pair has blocks to tell, the blocks must carry the relation
    without their most significant slots, else what is shared outside them (embeddings, head)
    makes cousins, or nothing; without blocks, all slots must carry it.
    """
    chance = chance_overlap(per_slot)
    if overlap <= chance:
        return "unrelated", [
            f"not derived: p = {p_value:.2g}, but the mean overlap {overlap:.4f} is at or below "
            f"chance ({chance:.4f})"
        ]
    blocks = tuple(s for s in per_slot if split_key(s.key) is not None)
    if len(blocks) >= FEW_SLOTS:
        p_blocks, left_out = spread_tail(blocks)
        if p_blocks <= alpha:
            return "derived", []
        parts = shared_parts(per_slot)
        if parts:
            return "cousin", [
                "cousin: shares "
                + ", ".join(f"{s.tensor} ({s.overlap:.2f})" for s in parts)
                + f" but none of its {len(blocks)} block slots: a common source of those "
                "tensors, neither model derived from the other"
            ]
        return "unrelated", _few_slots(per_slot, p_value, p_blocks, len(left_out), "block ")
    p_rest, left_out = spread_tail(per_slot)
    if p_rest <= alpha:
        return "derived", []
    return "unrelated", _few_slots(per_slot, p_value, p_rest, len(left_out), "")


def shared_parts(per_slot: tuple[SlotComparison, ...]) -> tuple[SlotComparison, ...]:
    """The slots outside numbered blocks that share a part (overlap >= `PART_OVERLAP`).

    Position embeddings never count: fixed tables (sinusoidal, stored as weights) are the same
    in unrelated models, and learned ones are structured alike.
    """
    return tuple(
        s
        for s in per_slot
        if split_key(s.key) is None
        and s.overlap >= PART_OVERLAP
        and not is_position_table(s.tensor)
    )


def _few_slots(
    per_slot: tuple[SlotComparison, ...], p_value: float, p_rest: float, dropped: int, what: str
) -> list[str]:
    """Why a significant total is not "derived", naming the slots that carry it."""
    carriers = sorted((s for s in per_slot if s.p_value < STRUCTURED_TAIL), key=lambda s: s.p_value)
    return [
        f"not derived: p = {p_value:.2g} rests on a few slots; without the {dropped} most "
        f"significant {what}slots p = {p_rest:.2g}",
        *(
            f"{s.tensor}: structured, shared {s.shared} of {s.k} where "
            f"{s.k * s.k / s.n:.0f} expected"
            + (
                f" ({s.k * s.k / s.population:.0f} from its row or column pattern)"
                if s.population < s.n
                else ""
            )
            for s in carriers[:STRUCTURED_NAMED]
        ),
    ]
