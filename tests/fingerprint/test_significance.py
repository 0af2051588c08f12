import subprocess
import sys
from pathlib import Path

import numpy as np
from scipy.stats import hypergeom

from fingerprint import significance

ROOT = Path(__file__).resolve().parents[2]


def test_combined_null_matches_simulation():
    slots = [(4096, 256), (16384, 256), (8192, 128)]
    rng = np.random.default_rng(0)
    draws = sum(rng.hypergeometric(k, n - k, k, size=200_000) for n, k in slots)
    pmf = significance.null_distribution(slots)
    assert abs(pmf.sum() - 1) < 1e-9
    for s in (20, 25, 30, 35):
        exact = significance.combined_tail(s, slots)
        simulated = float(np.mean(draws >= s))
        assert abs(exact - simulated) < 0.01 + 0.1 * exact


def test_single_slot_tail_is_scipy_hypergeometric():
    for shared in (0, 3, 5, 12):
        assert np.isclose(
            significance.combined_tail(shared, [(1000, 50)]),
            hypergeom.sf(shared - 1, 1000, 50, 50),
            rtol=1e-9,
        )


def test_p_values_are_calibrated_under_the_null():
    # unrelated pairs: independent random bottom-k sets in every slot
    rng = np.random.default_rng(1)
    slots = [(8192, 256)] * 16
    p = []
    for _ in range(600):
        total = 0
        for n, k in slots:
            a = rng.choice(n, k, replace=False)
            b = rng.choice(n, k, replace=False)
            total += np.intersect1d(a, b).size
        p.append(significance.combined_tail(total, slots))
    p = np.array(p)
    for alpha in (0.05, 0.1, 0.2):
        frac = float(np.mean(p <= alpha))
        # discrete test: at most alpha, and not far below it
        assert frac <= alpha + 0.03
        assert frac >= alpha / 2


def test_critical_total_is_the_first_significant_count():
    slots = [(8192, 256)] * 8
    c = significance.critical_total(slots, 1e-6)
    assert significance.combined_tail(c, slots) <= 1e-6
    assert significance.combined_tail(c - 1, slots) > 1e-6


def test_far_tail_underflows_to_zero_with_log_floor():
    slots = [(8192, 256)] * 8
    p = significance.combined_tail(8 * 200, slots)
    assert p == 0.0
    assert significance.log10(p) == significance.LOG10_FLOOR


def test_slot_tail_is_scipy_survival_function_for_every_count():
    # the cached table must give what one scipy call per count gives, edges included
    for n, k in [(1 << 18, 512), (4096, 512), (600, 512), (512, 512), (10, 3), (5, 0)]:
        for shared in range(-2, k + 4):
            want = float(hypergeom.sf(shared - 1, n, k, k))
            got = significance.slot_tail(shared, n, k)
            assert got == want or abs(got - want) <= 1e-12 * abs(want), (n, k, shared)


# (population, k) where the shortcut past scipy.stats must give scipy.stats' floats: the zoo's
# windows (700 to 2^18 positions, k of 7, 256 and 512) and the support's edges (2k - n > 0, k = n,
# k of 0 and 1).
_GRID = [
    (n, k)
    for n in sorted({*np.geomspace(700, 1 << 18, 16).astype(int).tolist(), 700, 1 << 18})
    for k in (0, 1, 7, 256, 512)
] + [(n, k) for k in (7, 256, 512) for n in (k, k + 1, 2 * k - 1, 2 * k, 2 * k + 1)]
# a left tail below TINY for a whole block before the mode (the pmf is cut only past it)
_GRID += [(4096, 2048), (4500, 2048)]


def _scipy_pmf(n: int, k: int) -> np.ndarray:
    pmf = hypergeom.pmf(np.arange(0, k + 1), n, k, k)
    nz = np.nonzero(pmf > significance.TINY)[0]
    return pmf[: nz[-1] + 1] if nz.size else pmf[:1]


def _same_floats(got: np.ndarray, want: np.ndarray) -> bool:
    return got.dtype == want.dtype and got.shape == want.shape and got.tobytes() == want.tobytes()


def test_every_slot_value_is_scipy_stats_hypergeom_to_the_bit():
    # uncached calls: what the shortcut computes now, not what an earlier test left in the cache
    assert significance._ufuncs() is not None  # this scipy has the ufuncs: the shortcut runs
    for n, k in _GRID:
        assert _same_floats(significance.slot_pmf.__wrapped__(n, k), _scipy_pmf(n, k)), (n, k)
        significance._tail.cache_clear()
        tails = np.array([significance.slot_tail(shared, n, k) for shared in range(k + 2)])
        assert _same_floats(tails, hypergeom.sf(np.arange(-1, k + 1), n, k, k)), (n, k)


def _p_values() -> list[float]:
    """Every p-value the grid gives, uncached: slot tails, pair totals and critical totals."""
    for cache in (significance.slot_pmf, significance._tail, significance._null_of):
        cache.cache_clear()
    out = []
    for n, k in _GRID:
        out += [significance.slot_tail(s, n, k) for s in range(-1, k + 2)]
        for slots in ([(n, k)] * 3, [(n, k), (2 * n, k)]):
            out += [significance.combined_tail(s, slots) for s in range(0, 2 * k + 2, 3)]
            out.append(float(significance.critical_total(slots, 1e-4)))
    return out


def test_every_p_value_is_the_scipy_stats_one_where_the_ufuncs_cannot_be_imported(monkeypatch):
    shortcut = _p_values()
    monkeypatch.setitem(sys.modules, "scipy.special._ufuncs", None)  # the import now fails
    significance._ufuncs.cache_clear()
    try:
        assert significance._ufuncs() is None
        scipy_stats = _p_values()  # every value from scipy.stats.hypergeom
    finally:
        monkeypatch.undo()
        for cache in (significance._ufuncs, significance.slot_pmf, significance._tail):
            cache.cache_clear()  # no value of the scipy.stats path stays behind
        significance._null_of.cache_clear()
    assert significance._ufuncs() is not None
    assert np.array(shortcut).tobytes() == np.array(scipy_stats).tobytes()


def test_comparing_signatures_does_not_import_scipy_stats():
    # `import scipy.stats` costs seconds per process: a `lineage compare` must not pay it
    code = (
        "import sys\n"
        "from fingerprint.comparison import compare\n"
        "from fingerprint.records import SignatureParams\n"
        "from lineage.lab.synthetic import synthetic_signatures\n"
        "sigs, _ = synthetic_signatures(6, 2, params=SignatureParams(k=32, window=4096), slots=6)\n"
        "ids = sorted(sigs)\n"
        "p = [compare(sigs[a], sigs[b]).p_value for a in ids for b in ids if a < b]\n"
        "assert min(p) < 1e-4 < max(p), p\n"
        "assert 'scipy.special' in sys.modules\n"
        "assert 'scipy.stats' not in sys.modules, 'scipy.stats was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
