"""Comparing two signatures: per-slot overlap and identity, an exact p-value, a verdict.

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

Layers meet by content where the two models number them differently (pruned or up-scaled
depth: `fingerprint.alignment`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, fields

import numpy as np

from fingerprint import significance
from fingerprint.alignment import match_slots, split_key
from fingerprint.errors import IncompatibleSignaturesError
from fingerprint.records import Signature, SlotSignature
from fingerprint.structure import shared_and_population, slot_counts

VERDICTS = ("identical", "derived", "cousin", "unrelated", "incomparable")
# the verdicts that say one model's weights come from the other's (parent edges, matches)
DERIVED = ("identical", "derived")
DEFAULT_ALPHA = 1e-4
# The rules that turn two signatures into a PairResult. Bump it with any change that can alter a
# stored comparison (a verdict, a warning, a number): cached pairs made under another version
# are recomputed (lineage.paircache). 2: "identical" needs equal shapes; "derived" must hold
# without the most significant slots. 3: layers matched by content; "cousin"; the blocks
# must carry "derived" when there are blocks. 4: a slot's null draws from the population its
# windows' row or column pattern leaves (`fingerprint.structure`). 5: identity from the
# signature format 3 sketch (a hashed 1-in-8 subset of positions).
COMPARE_VERSION = 5
# Fewer comparable slots than this and the result says so.
FEW_SLOTS = 4
# The interval of the mean overlap: resamples of the slots, and the percentiles kept.
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_PERCENTILES = (2.5, 97.5)
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
# What rows appended to a tensor extend, by its name (first match); other tensors "reshaped".
# `shared.weight` as in the plan's roles (T5's embedding), not MoE `shared_experts`.
_POSITIONS = re.compile(r"position|wpe")
_ROWS_OF = (
    (_POSITIONS, "positions"),
    (re.compile(r"embed|wte|lm_head|shared\.weight|(?:^|\.)output\.weight$"), "vocabulary"),
)


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


def identity_jaccards(
    pairs: tuple[tuple[SlotSignature, SlotSignature], ...], k: int
) -> list[float]:
    """`identity_jaccard` of every pair of slots, the same floats: pairs whose sketches have
    equal sizes (the rule: `identity_k` hashes each) are merged row-wise in one sort, where the
    common hashes stand next to each other; the bottom-k union is the distinct ranks below k."""
    out = [0.0] * len(pairs)
    groups: dict[tuple[int, int], list[int]] = {}
    for j, (sa, sb) in enumerate(pairs):
        if sa.identity.size and sb.identity.size:
            groups.setdefault((sa.identity.size, sb.identity.size), []).append(j)
    for (nx, ny), js in groups.items():
        x = np.stack([pairs[j][0].identity for j in js])
        y = np.stack([pairs[j][1].identity for j in js])
        m = min(k, nx, ny)
        if m < 1 or np.any(x[:, 1:] <= x[:, :-1]) or np.any(y[:, 1:] <= y[:, :-1]):
            for j in js:  # not sorted unique sketches: the plain sets answer (or raise)
                out[j] = identity_jaccard(pairs[j][0].identity, pairs[j][1].identity, k)
            continue
        z = np.sort(np.concatenate([x, y], axis=1), axis=1)
        twice = z[:, 1:] == z[:, :-1]  # the second copy of a hash both sketches hold
        rank = np.cumsum(~twice, axis=1)  # distinct ranks of z[:, 1:] (z[:, 0] has rank 0)
        both = np.count_nonzero(twice & (rank < m), axis=1)
        for j, c in zip(js, both.tolist(), strict=True):
            out[j] = c / m
    return out


def compare_slots(
    pairs: tuple[tuple[SlotSignature, SlotSignature], ...],
    identity_k: int,
    layouts: tuple[tuple[SlotSignature, ...], tuple[SlotSignature, ...]] | None = None,
) -> tuple[SlotComparison, ...]:
    """`compare_slot` of every matched pair of slots, counted for all slots at once
    (`structure.slot_counts`, `identity_jaccards`): the same records, a fraction of the cost.
    `layouts`: both signatures' slots (`structure.slot_counts`)."""
    shared, population = slot_counts(pairs, layouts=layouts)
    identity = identity_jaccards(pairs, identity_k)
    tail = significance.slot_tail
    out = []
    for (sa, sb), both, pop, ident in zip(pairs, shared, population, identity, strict=True):
        kk = min(sa.positions.size, sb.positions.size)
        # `_slot_comparison`'s record, its fields in order (thousands of pairs, dozens of slots)
        out.append(
            SlotComparison(
                sa.key,
                sa.tensor,
                both,
                kk,
                sa.n,
                both / kk if kk else 0.0,
                ident,
                tail(both, pop, kk),
                sa.digest == sb.digest and sa.shape == sb.shape,
                pop,
            )
        )
    return tuple(out)


def compare_slot(sa: SlotSignature, sb: SlotSignature, k: int, identity_k: int) -> SlotComparison:
    shared, population = shared_and_population(sa, sb)
    identity = identity_jaccard(sa.identity, sb.identity, identity_k)
    return _slot_comparison(sa, sb, shared, population, identity)


def _slot_comparison(
    sa: SlotSignature, sb: SlotSignature, shared: int, population: int, identity: float
) -> SlotComparison:
    kk = min(sa.positions.size, sb.positions.size)
    return SlotComparison(
        key=sa.key,
        tensor=sa.tensor,
        shared=shared,
        k=kk,
        n=sa.n,
        overlap=shared / kk if kk else 0.0,
        identity=identity,
        p_value=significance.slot_tail(shared, population, kk),
        # appended rows leave the window as it was: equal bytes need equal shapes as well
        same_bytes=sa.digest == sb.digest and sa.shape == sb.shape,
        n_eff=population,
    )


def shape_changes(a: Signature, b: Signature) -> tuple[str, ...]:
    """What differs in shape between two signatures, one line each (empty: nothing).

    A tensor resized from A to B (rows appended to an embedding or head: "vocabulary
    extended"), and slots that only one side has (a head added or removed, layers dropped).
    """
    by_key = {s.key: s for s in b.slots}
    out = []
    for sa in a.slots:
        sb = by_key.get(sa.key)
        if sb is None or sa.shape == sb.shape:
            continue
        # matched slot keys carry the trailing dimensions, so only the row count can differ
        rows = next((what for pat, what in _ROWS_OF if pat.search(sa.tensor)), None)
        if rows:
            grown = "extended" if sb.shape[0] > sa.shape[0] else "shrunk"
            out.append(f"{sa.tensor}: {rows} {grown}, {sa.shape[0]} -> {sb.shape[0]} rows")
        else:
            out.append(f"{sa.tensor}: reshaped, {list(sa.shape)} -> {list(sb.shape)}")
    only_a = {s.key for s in a.slots} - set(by_key)
    only_b = set(by_key) - {s.key for s in a.slots}
    for side, keys in (("A", only_a), ("B", only_b)):
        if keys:
            out.append(
                f"{len(keys)} slots only in {side} (a head added or removed, layers dropped)"
            )
    return tuple(out)


def _layer_line(layer_map: tuple[tuple[int, int], ...]) -> tuple[str, ...]:
    if not layer_map:
        return ()
    return ("layers matched by content (A -> B): " + ", ".join(f"{i}->{j}" for i, j in layer_map),)


def structure_changes(a: Signature, b: Signature, pair: PairResult) -> tuple[str, ...]:
    """What differs in structure from A to B, whichever way round `pair` was compared: the
    notes of an edge A -> B ("vocabulary extended", slots on one side only, layers matched by
    content), one line each."""
    layer_map = pair.layer_map
    if pair.a != a.model_id:
        layer_map = tuple(sorted((j, i) for i, j in layer_map))
    return (*shape_changes(a, b), *_layer_line(layer_map))


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
    warnings = [*shapes, *_layer_line(layer_map)]
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
    p_value = _tail(per_slot)
    identity = float(np.mean([s.identity for s in per_slot]))
    if all(s.same_bytes for s in per_slot) and not shapes:
        verdict = "identical"
    elif p_value <= alpha:
        verdict, why = _beyond_chance(per_slot, float(ov.mean()), p_value, alpha)
        warnings.extend(why)
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
        layer_map=layer_map,
    )


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


def is_position_table(tensor: str) -> bool:
    """Whether a tensor is a position embedding (a GPT-2 `wpe`, BERT `position_embeddings`)."""
    return bool(_POSITIONS.search(tensor))


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
