"""Exact p-values for bottom-k overlaps under independence.

For one slot, two unrelated models each choose k positions out of a window of n; their
intersection X is hypergeometric (population n, k marked, k drawn). Slots are independent under
the null, so the total S = sum of X over slots has the convolution of their distributions, and
P(S >= s) is exact. No normal or Fisher approximation: those are badly off in the far tail.

The hypergeometric values are scipy's, to the bit: `scipy.stats.hypergeom.pmf` and `.sf` are
Boost's `_hypergeom_pmf` / `_hypergeom_sf` ufuncs from `scipy.special._ufuncs`, applied on the
support (zero or one outside it) and clipped to [0, 1]. Those ufuncs are called here the same
way, because `import scipy.stats` costs seconds per process (most of a `lineage compare`) and
`scipy.special` a fraction of that. They are private scipy API and no public function gives the
same floats, so tests/fingerprint/test_significance.py checks every value against
`scipy.stats.hypergeom` on a grid (a scipy upgrade that changes them fails there), and where
the import fails, or the arguments are outside what the shortcut covers, scipy.stats answers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from functools import lru_cache

import numpy as np

# Below this a probability is zero for us; also where p-values are reported as 0.0.
TINY = 1e-300
LOG10_FLOOR = -300.0


@lru_cache(maxsize=1)
def _ufuncs() -> tuple[Callable[..., np.ndarray], Callable[..., np.ndarray]] | None:
    """scipy's hypergeometric pmf and sf ufuncs (arguments: x, marked, drawn, population), or
    None where this scipy has none by those names."""
    try:
        from scipy.special._ufuncs import _hypergeom_pmf, _hypergeom_sf
    except ImportError:
        return None
    return _hypergeom_pmf, _hypergeom_sf


def _direct(n: int, k: int) -> tuple[Callable[..., np.ndarray], Callable[..., np.ndarray]] | None:
    """The ufuncs where they give `scipy.stats.hypergeom`'s values for population n, k marked
    and k drawn (its arguments checked: 0 <= k <= n, n >= 1), else None."""
    return _ufuncs() if 0 <= k <= n and n >= 1 else None


# The pmf is evaluated this many values at a time, from the support's low end, until a block
# past the mode lies wholly at or below TINY: beyond the mode it only falls, so the rest would be
# trimmed anyway (Boost takes up to 0.2 ms a value for n below about 10^5, and with k = 512 half
# to two thirds of the values are trimmed).
_BLOCK = 32


@lru_cache(maxsize=4096)
def slot_pmf(n: int, k: int) -> np.ndarray:
    """P(X = x) for x = 0..m, trimmed where the tail falls below TINY."""
    x = np.arange(0, k + 1)
    direct = _direct(n, k)
    if direct is None:
        from scipy.stats import hypergeom  # on first use: reading stored results needs no scipy

        pmf = hypergeom.pmf(x, n, k, k)
    else:
        low = max(2 * k - n, 0)  # the support is low..k: hypergeom.pmf is 0 below it
        mode = (k + 1) * (k + 1) // (n + 2)
        pmf = np.zeros(k + 1)
        for start in range(low, k + 1, _BLOCK):
            block = np.clip(direct[0](x[start : start + _BLOCK], k, k, n), 0, 1)
            pmf[start : start + _BLOCK] = block
            if start > mode and not np.any(block > TINY):
                break
    nz = np.nonzero(pmf > TINY)[0]
    return pmf[: nz[-1] + 1] if nz.size else pmf[:1]


@lru_cache(maxsize=1 << 16)
def _tail(n: int, k: int, s: int) -> float:
    """P(X > s), that is P(X >= s + 1): `hypergeom.sf(s, n, k, k)`, one value at a time (a pair
    asks for one per slot, and a table of every s cost far more than the comparison)."""
    direct = _direct(n, k)
    if direct is None:
        from scipy.stats import hypergeom

        return float(hypergeom.sf(s, n, k, k))
    # below the support's low end P(X > s) is 1, from k on 0 (as hypergeom.sf gives them)
    if s < max(2 * k - n, 0):
        return 1.0
    if s >= k:
        return 0.0
    return float(np.clip(direct[1](s, k, k, n), 0, 1))


def slot_tail(shared: int, n: int, k: int) -> float:
    """P(X >= shared) for one slot."""
    return _tail(n, k, min(max(shared, 0), k + 1) - 1)


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
