"""The compiled kernels (`fingerprint.kernels_jit`, numba) against the numpy path, which defines
the format: the same positions, identity hashes, distinct fractions and whole signature bytes,
on the awkward windows of test_kernels_reference (NaN, infinities, -0.0, ties, odd shapes) in
every stored float dtype. Skipped where numba is not installed."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from fingerprint import kernels
from fingerprint.records import SignatureParams
from fingerprint.signature import compute_signature
from tests.fingerprint.test_kernels_reference import CASES, DTYPES, _decoded, _Source, _windows

pytest.importorskip("numba")


@pytest.fixture
def paths(monkeypatch):
    """Run a function once on the numpy path and once compiled; returns both results."""

    def both(fn):
        kernels.use_jit(False)
        assert kernels.jit_kernels() is None
        numpy_result = fn()
        kernels.use_jit(True)
        assert kernels.jit_kernels() is not None
        return numpy_result, fn()

    monkeypatch.delenv(kernels.NO_JIT_ENV, raising=False)
    yield both
    kernels.use_jit(None)


def test_the_environment_turns_the_compiled_kernels_off(monkeypatch):
    kernels.use_jit(True)
    try:
        monkeypatch.setenv(kernels.NO_JIT_ENV, "1")
        assert kernels.jit_kernels() is None
        monkeypatch.setenv(kernels.NO_JIT_ENV, "0")
        assert kernels.jit_kernels() is not None
    finally:
        kernels.use_jit(None)


def test_a_big_endian_machine_keeps_the_numpy_path(monkeypatch):
    # the compiled pass reads stored bytes and flag bytes as little-endian words
    kernels.use_jit(True)
    try:
        monkeypatch.delenv(kernels.NO_JIT_ENV, raising=False)
        monkeypatch.setattr(kernels, "_LITTLE_ENDIAN", False)
        assert kernels.jit_kernels() is None
        x = np.arange(5000, dtype=np.uint32)
        assert kernels.sign_stored(x, 0, x.tobytes(), 100, 7, (16, 1, 1 << 16)) is None
    finally:
        kernels.use_jit(None)


def test_a_process_turns_to_the_compiled_kernels_only_after_many_windows(monkeypatch):
    import subprocess
    import sys

    # `lineage compare` of two small models must not pay numba's import (JIT_AFTER_WINDOWS)
    code = (
        "import sys, numpy as np\n"
        "from fingerprint import kernels\n"
        "x = np.arange(70000, dtype=np.float32)\n"
        "for _ in range(100):\n"
        "    kernels.identity_minhash(x, 256, 1); kernels.window_stats(x, x.tobytes(), 700, 1)\n"
        "assert kernels.jit_kernels() is None and 'numba' not in sys.modules\n"
        # a process that has signed enough windows turns to the compiled kernels
        "kernels._windows_signed = kernels.JIT_AFTER_WINDOWS\n"
        "assert kernels.jit_kernels() is not None and 'numba' in sys.modules\n"
    )
    monkeypatch.delenv(kernels.NO_JIT_ENV, raising=False)
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(("window", "dtype"), CASES)
@pytest.mark.parametrize("k", [512, 7])
def test_compiled_kernels_give_the_numpy_bits(paths, window, dtype, k):
    values, cols = _windows()[window]
    with np.errstate(over="ignore"):
        decoded, raw = _decoded(values, DTYPES[dtype])
    x = kernels.to_device(decoded, "cpu")

    def run():
        return (
            kernels.bottom_k_positions(x, k),
            kernels.identity_minhash(x, 256, 0x6C696E65, 1 << 16),
            kernels.identity_minhash(x, k, 11, 333),  # a short span, another seed
            kernels.window_stats(x, raw, cols, 0x6C696E65, 1 << 16),
            [kernels.distinct_fraction(x, c, rows) for c in (1, 3, cols, 2000) for rows in (1, 64)],
        )

    want, got = paths(run)
    for w, g in zip(want[:3], got[:3], strict=True):
        assert g.dtype == w.dtype and np.array_equal(g, w)
    assert np.array_equal(np.array(got[3][:5]), np.array(want[3][:5]), equal_nan=True)
    assert got[3][5] == want[3][5]
    assert got[4] == want[4]


@pytest.mark.parametrize(("window", "dtype"), [c for c in CASES if c[1] in ("bf16", "f32")])
@pytest.mark.parametrize("k", [512, 7])
def test_the_pass_over_stored_bits_gives_the_numpy_bits(paths, window, dtype, k):
    # what `compute_signature` runs on a float32 or bfloat16 window: its stored bits, read
    # without a float32 copy, against the numpy kernels on the widened values
    values, cols = _windows()[window]
    with np.errstate(over="ignore"):
        decoded, raw = _decoded(values, DTYPES[dtype])
    stored = np.frombuffer(raw, dtype="<u2" if dtype == "bf16" else "<u4")
    shift = 16 if dtype == "bf16" else 0
    x = kernels.to_device(decoded, "cpu")
    identity = (256, 0x6C696E65, 1 << 16)

    def run():
        if kernels.jit_kernels() is None:
            return (
                kernels.bottom_k_positions(x, k),
                kernels.identity_minhash(x, *identity),
                kernels.window_stats(x, raw, cols, *identity[1:]),
            )
        return kernels.sign_stored(stored, shift, raw, cols, k, identity)

    want, got = paths(run)
    assert got[0].dtype == np.uint32 and np.array_equal(got[0], want[0])
    assert got[1].dtype == np.uint64 and np.array_equal(got[1], want[1])
    assert struct.pack("<5d", *got[2][:5]) == struct.pack("<5d", *want[2][:5])
    assert got[2][5] == want[2][5]


def test_random_ties_and_specials_match(paths):
    rng = np.random.default_rng(5)
    for trial in range(40):
        n = int(rng.integers(1, 1 << 17))
        levels = rng.choice([2, 17, 255, 1 << 20])
        x = (rng.integers(0, levels, n) - levels // 2).astype(np.float32) / np.float32(levels)
        special = rng.random(n) < rng.choice([0.0, 0.01, 0.5])
        x[special] = rng.choice(
            np.array([np.nan, np.inf, -np.inf, -0.0, 0.0], np.float32), special.sum()
        )
        k = int(rng.integers(1, 600))
        cols = int(rng.integers(1, 3000))
        limit = int(rng.integers(1, 1 << 17))
        want, got = paths(
            lambda x=x, k=k, cols=cols, trial=trial, limit=limit: (
                kernels.bottom_k_positions(x, k),
                kernels.identity_minhash(x, k, trial),
                kernels.distinct_fraction(x[: 1 << 16], cols),
                kernels.window_stats(x, b"", cols, trial, limit),
            )
        )
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
        assert got[2] == want[2]
        assert struct.pack("<5d", *got[3][:5]) == struct.pack("<5d", *want[3][:5])


def test_whole_signatures_are_the_same_bytes(paths):
    rng = np.random.default_rng(6)
    tensors = {}
    for i, (dtype, (name, (values, cols))) in enumerate(
        (d, w) for d in DTYPES for w in _windows().items()
    ):
        rows = max(1, values.size // cols)
        shape = (rows, cols) if rows * cols <= values.size else (1, values.size)
        if shape[0] * shape[1] >= 4096:
            tensors[f"layers.{i}.{name.replace(' ', '_')}.weight"] = (
                values[: shape[0] * shape[1]],
                shape,
                dtype,
            )
    tensors["embed.weight"] = (rng.standard_normal(300 * 96).astype(np.float32), (300, 96), "bf16")
    source = _Source(tensors)
    want, got = paths(lambda: compute_signature(source, params=SignatureParams(), device="cpu"))
    assert len(got.slots) > 20
    assert got.to_bytes() == want.to_bytes()
