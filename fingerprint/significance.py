"""Exact p-values for bottom-k overlaps under independence.

For one slot, two unrelated models each choose k positions out of a window of n; their
intersection X is hypergeometric (population n, k marked, k drawn). Slots are independent under
the null, so the total S = sum of X over slots has the convolution of their distributions, and
P(S >= s) is exact. No normal or Fisher approximation: those are badly off in the far tail.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import lru_cache

import numpy as np

# Below this a probability is zero for us; also where p-values are reported as 0.0.
TINY = 1e-300
LOG10_FLOOR = -300.0


@lru_cache(maxsize=4096)
def slot_pmf(n: int, k: int) -> np.ndarray:
    """P(X = x) for x = 0..m, trimmed where the tail falls below TINY."""
    from scipy.stats import hypergeom  # on first use: reading stored results needs no scipy

    x = np.arange(0, k + 1)
    pmf = hypergeom.pmf(x, n, k, k)
    nz = np.nonzero(pmf > TINY)[0]
    return pmf[: nz[-1] + 1] if nz.size else pmf[:1]


@lru_cache(maxsize=4096)
def _slot_tails(n: int, k: int) -> np.ndarray:
    """P(X >= s) for s = 0..k+1, from one vectorized `hypergeom.sf`: the same floats as one
    call per s, and comparisons ask once per slot per pair, so scipy runs once per (n, k)."""
    from scipy.stats import hypergeom

    tails = hypergeom.sf(np.arange(-1, k + 1), n, k, k)
    tails.setflags(write=False)
    return tails


def slot_tail(shared: int, n: int, k: int) -> float:
    """P(X >= shared) for one slot."""
    return float(_slot_tails(n, k)[min(max(shared, 0), k + 1)])


@lru_cache(maxsize=256)
def _null_of(multiset: tuple[tuple[int, int], ...]) -> np.ndarray:
    pmf = np.ones(1)
    for n, k in multiset:
        pmf = np.convolve(pmf, slot_pmf(n, k))
        nz = np.nonzero(pmf > TINY)[0]
        pmf = pmf[: nz[-1] + 1]
    return pmf


def null_distribution(slots: Iterable[tuple[int, int]]) -> np.ndarray:
    """PMF of the total intersection over slots given as (window n, k) pairs."""
    return _null_of(tuple(sorted(slots)))


def combined_tail(shared_total: int, slots: Iterable[tuple[int, int]]) -> float:
    """P(S >= shared_total) under independence; 0.0 when below TINY."""
    pmf = null_distribution(slots)
    if shared_total <= 0:
        return 1.0
    if shared_total >= pmf.size:
        return 0.0
    return float(min(1.0, pmf[shared_total:].sum()))


def critical_total(slots: Iterable[tuple[int, int]], alpha: float) -> int:
    """Smallest s with P(S >= s) <= alpha: pairs at or above it are significant."""
    pmf = null_distribution(slots)
    tail = np.cumsum(pmf[::-1])[::-1]  # tail[s] = P(S >= s)
    above = np.nonzero(tail <= alpha)[0]
    return int(above[0]) if above.size else int(pmf.size)


def log10(p: float) -> float:
    return LOG10_FLOOR if p <= 0 else max(LOG10_FLOOR, math.log10(p))
