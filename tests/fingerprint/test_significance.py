import numpy as np
from scipy.stats import hypergeom

from fingerprint import significance


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
