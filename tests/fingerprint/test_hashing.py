"""fingerprint.hashing: splitmix64 in numpy and in torch give the same bits."""

import numpy as np
import torch

from fingerprint.hashing import signed64, splitmix64, splitmix64_torch


def _inputs() -> np.ndarray:
    rng = np.random.default_rng(3)
    edges = np.array([0, 1, 2**31, 2**32 - 1, 2**63 - 1, 2**63, 2**64 - 1], dtype=np.uint64)
    return np.concatenate([edges, rng.integers(0, 2**64 - 1, 10_000, dtype=np.uint64)])


def test_numpy_and_torch_forms_agree_bit_for_bit():
    x = _inputs()
    want = splitmix64(x)
    got = splitmix64_torch(torch.from_numpy(x.view(np.int64).copy()))
    assert np.array_equal(got.numpy().view(np.uint64), want)


def _reference(z: int) -> int:
    """The finaliser as written in Vigna's splitmix64.c, on Python ints masked to 64 bits."""
    m = 2**64 - 1
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    return z ^ (z >> 31)


def test_matches_the_reference_finaliser():
    x = _inputs()[:200]
    assert [int(v) for v in splitmix64(x)] == [_reference(int(v)) for v in x]
    # splitmix64's first output from state 0 (state += golden ratio, then the finaliser)
    assert _reference(0x9E3779B97F4A7C15) == 0xE220A8397B1DCDAF


def test_signed64_keeps_the_bits():
    for value in (0, 1, 2**63 - 1, 2**63, 2**64 - 1, 0x9E3779B97F4A7C15):
        assert signed64(value) & (2**64 - 1) == value
        assert -(2**63) <= signed64(value) < 2**63
