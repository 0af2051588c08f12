"""The stability of a pair's overlap: a bootstrap interval of the mean over slots."""

import json

import numpy as np

from fingerprint.comparison import (
    FEW_SLOTS,
    PairResult,
    SlotComparison,
    overlap_interval,
    summarize,
)

K, N = 512, 24576


def _slots(shared: list[int]) -> tuple[SlotComparison, ...]:
    return tuple(
        SlotComparison(
            key=f"h.{i}.mlp|{N}",
            tensor=f"h.{i}.mlp.weight",
            shared=s,
            k=K,
            n=N,
            overlap=s / K,
            identity=0.0,
            p_value=0.5,
            same_bytes=False,
        )
        for i, s in enumerate(shared)
    )


def _result(shared: list[int]) -> PairResult:
    per_slot = _slots(shared)
    return summarize("a", "b", per_slot, len(per_slot), len(per_slot))


def _mixed(n: int = 39) -> list[int]:
    return [int(x) for x in np.random.default_rng(7).integers(0, K, n)]


def test_the_interval_holds_the_mean():
    r = _result(_mixed())
    low, high = r.interval()
    assert low < r.overlap < high


def test_uniform_slots_give_a_narrow_interval_and_mixed_ones_a_wide_one():
    uniform = _result([300 + (i % 3) for i in range(39)])
    mixed = _result(_mixed())
    (u_low, u_high), (m_low, m_high) = uniform.interval(), mixed.interval()
    assert u_high - u_low < 0.005
    assert m_high - m_low > 0.1


def test_identical_overlaps_give_a_point():
    r = _result([K] * 10)
    low, high = r.interval()
    assert low == high == 1.0


def test_the_interval_is_deterministic_and_ignores_slot_order():
    per_slot = _slots(_mixed())
    first = overlap_interval(per_slot)
    assert overlap_interval(per_slot) == first
    assert overlap_interval(tuple(reversed(per_slot))) == first


def test_few_slots_give_no_interval_and_keep_the_warning():
    r = _result([400] * (FEW_SLOTS - 1))
    assert r.interval() == (None, None)
    assert any("comparable slots" in w for w in r.warnings)
    assert _result([400] * FEW_SLOTS).interval()[0] is not None


def test_the_interval_survives_a_json_round_trip():
    r = _result(_mixed())
    back = PairResult.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r
    few = _result([400] * 2)
    assert PairResult.from_dict(json.loads(json.dumps(few.to_dict()))) == few


def test_a_stored_result_gives_the_same_interval_as_a_fresh_one():
    # the interval is derived from the slots, never stored: a result read back from JSON (the
    # store keeps none of it) answers the same
    r = _result(_mixed())
    assert "overlap_low" not in r.to_dict()
    assert PairResult.from_dict(r.to_dict()).interval() == r.interval()
    few = _result([400] * 2).to_dict()
    assert PairResult.from_dict(few).interval() == (None, None)
