"""The verdict's guard: "derived" needs evidence spread over slots, not one structured slot."""

import numpy as np

from fingerprint.comparison import (
    SPREAD_DROP,
    PairResult,
    SlotComparison,
    compare,
    spread_tail,
    summarize,
)
from fingerprint.signature import Signature, SignatureParams, SlotSignature

N, K = 24576, 512  # a GPT-2 position embedding's window and the default k: 10.7 expected
NAMES = ("transformer.wpe.weight", "transformer.h.0.attn.c_attn.weight") + tuple(
    f"transformer.h.{i}.mlp.c_fc.weight" for i in range(12)
)


def _slot(name: str, positions: np.ndarray, seed: int) -> SlotSignature:
    return SlotSignature(
        key=f"{name}|{N}",
        tensor=name,
        dtype="F32",
        shape=(N // 768, 768),
        n=N,
        positions=np.sort(positions).astype(np.uint32),
        identity=np.sort(np.random.default_rng(seed).integers(0, 2**63, 256, dtype=np.uint64)),
        mean=0.0,
        std=0.02,
        kurtosis=3.0,
        absmax=0.1,
        distinct=0.99,
        digest=seed.to_bytes(16, "little"),
    )


def _pair(
    shared: dict[str, int], seed: int = 0, names: tuple[str, ...] = NAMES
) -> tuple[Signature, Signature]:
    """Two signatures over NAMES; B shares exactly `shared[name]` of A's positions in that slot
    and is independent of A elsewhere."""
    rng = np.random.default_rng(seed)
    slots_a, slots_b = [], []
    for i, name in enumerate(names):
        pa = rng.choice(N, K, replace=False)
        if name in shared:
            outside = rng.permutation(np.setdiff1d(np.arange(N), pa))[: K - shared[name]]
            pb = np.concatenate([rng.permutation(pa)[: shared[name]], outside])
        else:
            pb = rng.choice(N, K, replace=False)
        slots_a.append(_slot(name, pa, 2 * i))
        slots_b.append(_slot(name, pb, 2 * i + 1))
    params = SignatureParams()
    return Signature(params, tuple(slots_a), model_id="a"), Signature(
        params, tuple(slots_b), model_id="b"
    )


def test_one_structured_slot_cannot_make_a_pair_derived():
    a, b = _pair({"transformer.wpe.weight": 70})
    r = compare(a, b)
    assert r.p_value <= 1e-4  # the exact test alone would call it derived
    assert r.verdict == "unrelated"
    assert any("rests on a few slots" in w for w in r.warnings)
    assert any(
        w.startswith("transformer.wpe.weight: structured, shared 70 of 512 where 11 expected")
        for w in r.warnings
    )


def test_two_structured_slots_cannot_either():
    a, b = _pair({NAMES[0]: 60, NAMES[1]: 60}, seed=1)
    r = compare(a, b)
    assert r.p_value <= 1e-4
    assert r.verdict == "unrelated"
    assert sum("structured" in w for w in r.warnings) == 2


def test_a_pair_related_in_every_slot_stays_derived():
    a, b = _pair(dict.fromkeys(NAMES, 200), seed=2)
    r = compare(a, b)
    assert r.verdict == "derived"
    assert not any("not derived" in w for w in r.warnings)


def test_a_weak_relation_spread_over_slots_is_derived():
    # 24 of 512 where 10.7 expected: no slot stands out much, together they do
    a, b = _pair(dict.fromkeys(NAMES, 24), seed=3)
    r = compare(a, b)
    assert r.verdict == "derived"
    assert spread_tail(r.per_slot)[0] <= 1e-4


def test_no_derived_at_or_below_the_chance_overlap():
    def slot(key, shared, n, k):
        return SlotComparison(key, key, shared, k, n, shared / k, 0.0, 0.0, False)

    # one huge excess in a wide window, fewer than chance in three small ones: p is tiny, the
    # mean overlap (0.24) is below the chance level (0.38)
    per_slot = (slot("big", 100, 1_000_000, 512),) + tuple(
        slot(f"s{i}", 4, 32, 16) for i in range(3)
    )
    r = summarize("a", "b", per_slot, 4, 4)
    assert r.p_value <= 1e-4
    assert r.verdict == "unrelated"
    assert any("at or below chance" in w for w in r.warnings)


def test_spread_tail_keeps_at_least_one_slot():
    a, b = _pair({NAMES[0]: 300})
    one = compare(a, b).per_slot[:1]
    p, left_out = spread_tail(one)
    assert left_out == ()
    assert p <= 1e-100
    _, left_out = spread_tail(compare(a, b).per_slot)
    assert len(left_out) == SPREAD_DROP
    assert left_out[0].tensor == NAMES[0]


def test_identical_is_unchanged():
    a, _ = _pair({})
    r = compare(a, Signature(a.params, a.slots, model_id="b"))
    assert r.verdict == "identical"


def test_old_pair_result_dicts_still_load():
    old = {
        "a": "org/a",
        "b": "org/b",
        "overlap": 0.5,
        "overlap_median": 0.5,
        "overlap_min": 0.4,
        "overlap_std": 0.05,
        "identity": 0.1,
        "p_value": 0.0,
        "log10_p": -300.0,
        "slots_compared": 1,
        "slots_a": 1,
        "slots_b": 1,
        "verdict": "derived",
        "per_slot": [
            {
                "key": "w|8192",
                "tensor": "w",
                "shared": 256,
                "k": 512,
                "n": 8192,
                "overlap": 0.5,
                "identity": 0.1,
                "p_value": 0.0,
                "same_bytes": False,
            }
        ],
    }
    r = PairResult.from_dict(old)
    assert (r.verdict, r.warnings, r.per_slot[0].shared) == ("derived", (), 256)
    assert PairResult.from_dict(r.to_dict()) == r


def test_a_part_shared_outside_the_blocks_makes_cousins_not_derived():
    # the token embedding is copied (400 of 512 shared), every block at chance: a common source
    names = ("transformer.wte.weight", *NAMES[1:])
    a, b = _pair({"transformer.wte.weight": 400}, seed=4, names=names)
    r = compare(a, b)
    assert r.p_value < 1e-100
    assert r.verdict == "cousin"
    assert "shares transformer.wte.weight (0.78)" in r.warnings[0]


def test_a_shared_position_table_alone_is_no_relation():
    # fixed (sinusoidal) position tables are the same in unrelated models
    a, b = _pair({"transformer.wpe.weight": 512}, seed=6)
    r = compare(a, b)
    assert r.verdict == "unrelated"


def test_blocks_that_carry_the_relation_keep_derived_whatever_is_shared_outside():
    a, b = _pair(dict.fromkeys(NAMES, 120), seed=5)
    assert compare(a, b).verdict == "derived"
