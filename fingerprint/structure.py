"""How many shared positions a slot's row and column pattern explains, between any two models.

Bottom-k positions are the window's most negative values. The null of the pair test takes them
to be exchangeable: k of n, anywhere. Trained tensors break this where some rows or columns have
a larger scale in every model of a configuration: a GPT-2's early positions in its position
embedding, rotary dimensions of q/k projections. Their extremes then fall in the same rows in
unrelated models, and the two models share more positions than k^2/n for no reason of lineage
(measured on the zoo: 34 shared where 10.7 are expected, and 31.2 are expected from the two
models' own row counts alone).

The pattern is measured on the positions the two models do not share (so a relation does not
count as structure): among pairs (p of A, q of B), p != q, the share that fall in one row is
(cols - 1) / (n - 1) when positions are exchangeable; `f` is how many times that share is seen
(likewise for columns; the larger of the two counts). Extremes confined to a share 1/f of the
window behave as if drawn from a population of n / f positions: `effective_population` is that
population, and the slot's exact test uses it in place of n. That moves the null's mean to what
the pattern explains and widens it as concentrated sampling does (a shift of the mean alone left
unrelated models with a hot-row pattern in every layer "derived"). Below `MIN_FACTOR` nothing
changes; above it the population is rounded down to a geometric grid (conservative, and the
null distributions stay cacheable). Between related models (hundreds of positions shared) the
population shrinks a little and the evidence stays overwhelming.

This module is the rule, one pair of slots at a time; `fingerprint.slot_counts` applies it to
every slot of a pair of models at once and gives the same integers.
"""

from __future__ import annotations

import math

import numpy as np

from fingerprint.records import SlotSignature

# pseudo-count of pairs in the factor's estimate (see `_factor`)
PRIOR = 10.0
# a factor below this is no pattern (an unstructured window's estimate varies by a few percent)
MIN_FACTOR = 1.25
# the population is rounded down to powers of 2^(1 / GRID)
GRID = 4


def window_grid(s: SlotSignature) -> tuple[int, int]:
    """(rows, cols) of the slot's window (its positions index the flattened window)."""
    cols = math.prod(s.shape[1:]) if len(s.shape) > 1 else s.n
    cols = max(1, min(cols, s.n))
    return max(1, s.n // cols), cols


def _factor(a: np.ndarray, b: np.ndarray, classes: int, per_class: int, n: int) -> float:
    """How many times more often than exchangeable a pair of distinct positions shares a class
    (a row when `classes` are rows), or 1.0 when a class holds a single cell.

    `PRIOR` pairs at the exchangeable rate are added to both counts, so that a few unshared
    positions (a near copy) cannot make a large factor out of one coincidence.
    """
    if per_class < 2:
        return 1.0
    same = float(np.dot(np.bincount(a, minlength=classes), np.bincount(b, minlength=classes)))
    expected = a.size * b.size * (per_class - 1) / (n - 1)
    return (same + PRIOR) / (expected + PRIOR)


def grid_floor(x: float) -> int:
    """The largest power of 2^(1/4) at or below x (x >= 1)."""
    step = math.floor(math.log2(x) * GRID)
    return max(1, math.floor(2 ** (step / GRID)))


def split_shared(pa: np.ndarray, pb: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """(positions in both, A's positions not in B, B's not in A) of two sorted unique arrays."""
    if pa.size == 0 or pb.size == 0:
        return 0, pa, pb
    in_b = pb[np.minimum(np.searchsorted(pb, pa), pb.size - 1)] == pa
    in_a = pa[np.minimum(np.searchsorted(pa, pb), pa.size - 1)] == pb
    return int(in_b.sum()), pa[~in_b], pb[~in_a]


def shared_and_population(sa: SlotSignature, sb: SlotSignature) -> tuple[int, int]:
    """How many positions the two slots share, and the population their bottom-k behave as
    drawn from: n, or less where the windows' row or column pattern concentrates the extremes
    (never below k). One split of the positions serves both."""
    shared, a, b = split_shared(sa.positions.astype(np.int64), sb.positions.astype(np.int64))
    rows, cols = window_grid(sa)
    if rows * cols != sa.n or sa.n != sb.n or sa.n < 2:
        return shared, sa.n
    f = pattern_factor(a, b, rows, cols, sa.n)
    if f < MIN_FACTOR:
        return shared, sa.n
    k = max(sa.positions.size, sb.positions.size)
    return shared, max(k, grid_floor(sa.n / f))


def pattern_factor(a: np.ndarray, b: np.ndarray, rows: int, cols: int, n: int) -> float:
    """The larger `_factor` of two sides' unshared positions in a rows x cols window of n:
    by rows or by columns, whichever concentrates the extremes more."""
    return max(
        _factor(a // cols, b // cols, rows, cols, n),
        _factor(a % cols, b % cols, cols, rows, n),
    )


def effective_population(sa: SlotSignature, sb: SlotSignature) -> int:
    """The population of `shared_and_population`."""
    return shared_and_population(sa, sb)[1]
