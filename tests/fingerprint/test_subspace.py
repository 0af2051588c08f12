"""Grassmann similarity of low-rank updates: exact cases, invariances, the random baseline."""

from __future__ import annotations

import numpy as np
import pytest

from fingerprint.subspace import (
    compare_deltas,
    compare_factors,
    dense_subspaces,
    factor_subspaces,
    principal_angles,
    random_baseline,
    random_subspace,
    similarity,
)


def _factors(rng: np.random.Generator, out: int = 48, inp: int = 32, r: int = 4):
    return rng.standard_normal((r, inp)), rng.standard_normal((out, r))


def test_same_subspace_is_one_and_orthogonal_is_zero():
    eye = np.eye(10)
    assert similarity(eye[:, :3], eye[:, :3]) == pytest.approx(1.0)
    assert similarity(eye[:, :3], eye[:, 3:6]) == pytest.approx(0.0)
    # half of one subspace inside the other: 2 of 4 directions shared
    assert similarity(eye[:, :4], eye[:, 2:6]) == pytest.approx(0.5)
    angles = principal_angles(eye[:, :4], eye[:, 2:6])
    assert np.allclose(angles, [0, 0, np.pi / 2, np.pi / 2])
    assert np.mean(np.cos(angles) ** 2) == pytest.approx(0.5)


def test_factors_give_the_subspaces_of_the_product():
    rng = np.random.default_rng(0)
    a, b = _factors(rng)
    sub = factor_subspaces(a, b, scale=2.0)
    dense = dense_subspaces(2.0 * b @ a)
    assert sub.rank == dense.rank == 4
    assert np.allclose(sub.singular_values, dense.singular_values)
    assert similarity(sub.left, dense.left) == pytest.approx(1.0)
    assert similarity(sub.right, dense.right) == pytest.approx(1.0)
    # the left space is B's column space, the right one A's row space
    assert similarity(sub.left, np.linalg.qr(b)[0]) == pytest.approx(1.0)
    assert similarity(sub.right, np.linalg.qr(a.T)[0]) == pytest.approx(1.0)


def test_invariant_to_rotation_and_scaling_of_the_factors():
    """B R and R^-1 A is the same update; so is s B A: the same subspaces."""
    rng = np.random.default_rng(1)
    a, b = _factors(rng)
    mix = rng.standard_normal((4, 4)) + 4 * np.eye(4)
    other = {"layers.0.q_proj": (np.linalg.inv(mix) @ a, 7.5 * b @ mix)}
    r = compare_factors({"layers.0.q_proj": (a, b)}, other)
    assert r.left == pytest.approx(1.0) and r.right == pytest.approx(1.0)
    # rotating the basis of a subspace changes no similarity
    u = random_subspace(30, 5, rng)
    q = np.linalg.qr(rng.standard_normal((5, 5)))[0]
    v = random_subspace(30, 5, rng)
    assert similarity(u @ q, v) == pytest.approx(similarity(u, v))


def test_zero_update_is_skipped_not_scored():
    rng = np.random.default_rng(2)
    a, _ = _factors(rng)
    zero_b = np.zeros((48, 4))
    r = compare_factors({"m": (a, zero_b)}, {"m": _factors(rng)})
    assert r.modules_compared == 0 and r.skipped == ("m: a zero update",)
    assert np.isnan(r.similarity)


def test_modules_matched_by_normalized_name_and_counted():
    rng = np.random.default_rng(3)
    f = _factors(rng)
    a = {"base_model.model.model.layers.0.self_attn.q_proj": f, "model.layers.1.mlp.up_proj": f}
    b = {"model.layers.0.self_attn.q_proj": f, "model.layers.0.mlp.down_proj": f}
    r = compare_factors(a, b)
    assert [m.name for m in r.modules] == ["layers.0.self_attn.q_proj"]
    assert (r.only_a, r.only_b) == (1, 1)
    assert r.similarity == pytest.approx(1.0)


def test_random_baseline_formula():
    assert random_baseline(4, 64) == pytest.approx(4 / 64)
    assert random_baseline(8, 64, 16) == pytest.approx(16 / 64)
    with pytest.raises(ValueError):
        random_baseline(0, 10)


@pytest.mark.parametrize(("k", "d"), [(1, 16), (4, 64), (8, 32), (16, 512)])
def test_random_baseline_matches_simulation(k, d):
    """Over seeds, random pairs average k/d: within 4 standard errors of the simulated mean."""
    values = []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        values += [
            similarity(random_subspace(d, k, rng), random_subspace(d, k, rng)) for _ in range(200)
        ]
    mean, se = np.mean(values), np.std(values) / np.sqrt(len(values))
    assert abs(mean - random_baseline(k, d)) < 4 * se + 1e-9


def test_random_factors_score_near_the_baseline():
    rng = np.random.default_rng(5)
    a = {f"layers.{i}.q_proj": _factors(rng, 64, 64) for i in range(32)}
    b = {f"layers.{i}.q_proj": _factors(rng, 64, 64) for i in range(32)}
    r = compare_factors(a, b)
    assert r.baseline == pytest.approx(4 / 64)
    assert abs(r.similarity - r.baseline) < 0.02


def test_dense_updates_of_two_finetunes():
    """Two noisy copies of one rank-3 update share their top-3 subspace; a third does not."""
    rng = np.random.default_rng(6)
    shared = rng.standard_normal((64, 3)) @ rng.standard_normal((3, 48))
    noise = 0.05 * np.linalg.norm(shared) / np.sqrt(64 * 48)
    a = {"layers.0.q": shared + noise * rng.standard_normal((64, 48))}
    b = {"layers.0.q": shared + noise * rng.standard_normal((64, 48))}
    c = {"layers.0.q": rng.standard_normal((64, 3)) @ rng.standard_normal((3, 48))}
    assert compare_deltas(a, b, k=3).similarity > 0.95
    assert compare_deltas(a, c, k=3).similarity < 0.3


def test_shapes_that_differ_are_skipped():
    rng = np.random.default_rng(7)
    r = compare_factors({"m": _factors(rng, 48)}, {"m": _factors(rng, 40)})
    assert r.modules_compared == 0 and "shapes differ" in r.skipped[0]
