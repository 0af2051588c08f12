"""Compiled (numba) forms of the integer parts of `fingerprint.kernels`: the same bits, faster.

The numpy path defines the signature format; each function here returns exactly what its numpy
counterpart returns (tests/fingerprint/test_kernels_jit.py holds them equal on the awkward
windows of tests/fingerprint/test_kernels_reference.py):

* `identity_hashes`: the identity MinHash's 63-bit hash of every hashed position, in one loop
  (numpy makes about ten passes over temporaries).
* `distinct_counts`: per row, how many distinct values `kernels.distinct_fraction` counts
  (equal finite neighbours in sorted order are one value, -0.0 equals 0.0, every NaN and every
  infinity counts on its own), with a small hash set of the row's finite values instead of a
  sort. The numbers are small integers, so the fraction made from them is the same float.

Bottom-k stays in numpy: a compiled threshold-and-gather (tried: one branchless pass counting
candidates, one writing their keys) measured no faster than numpy's vectorized `v <= t` and
`flatnonzero` on this machine.

The float moments stay in numpy: a compiled sum adds in another order and would round
differently. numba is optional (`pip install -e '.[fast]'`); this module is imported only when
it is present, and `LINEAGE_NO_JIT=1` keeps the numpy path (`kernels.jit_kernels`). Compiled
code is cached on disk (`cache=True`), so only the first process after an install compiles.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_SIGN = np.uint32(0x80000000)
_ABS = np.uint32(0x7FFFFFFF)
_INF_BITS = np.uint32(0x7F800000)
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_POSITIVE63 = np.uint64((1 << 63) - 1)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_EMPTY = np.uint32(0xFFFFFFFF)  # a NaN pattern: never the key of a finite value
_TABLE_BITS = 11  # 2048 slots for at most 1024 values a row: at most half full


@njit(cache=True, nogil=True, inline="always")
def _splitmix64(z):
    z = z ^ (z >> _S30)
    z = z * _C1
    z = z ^ (z >> _S27)
    z = z * _C2
    return z ^ (z >> _S31)


@njit(cache=True, nogil=True)
def identity_hashes(bits, positions, keys):
    """splitmix64(splitmix64(keys[i] ^ bits[positions[i]]) + golden) & (2^63 - 1) for every i
    (uint64), `keys` being `kernels._identity_keys`; the caller keeps the k smallest (numba's
    own partition and sort took seconds more to compile and ran no faster than numpy's)."""
    m = positions.size
    z = np.empty(m, np.uint64)
    for i in range(m):
        h = _splitmix64(keys[i] ^ np.uint64(bits[positions[i]]))
        z[i] = _splitmix64(h + _GOLDEN) & _POSITIVE63
    return z


@njit(cache=True, nogil=True)
def distinct_counts(bits, rows, cols, width):
    """Per row r (`width` values from r * cols), the distinct values `distinct_fraction` counts:
    one per set of equal finite values (-0.0 is 0.0) plus one per NaN or infinity.

    A row of widened bfloat16 values (the low 16 bits of every one zero, as most checkpoints
    store them) is counted in a bitmap of the 2^16 high halves; any other row in a small hash
    set of its finite values.
    """
    size = 1 << _TABLE_BITS
    table = np.empty(size, np.uint32)
    seen = np.empty(1 << 10, np.uint64)  # 2^16 bits
    out = np.zeros(rows, np.int64)
    for r in range(rows):
        base = r * cols
        low = np.uint32(0)
        for i in range(width):
            low |= bits[base + i]
        if (low & np.uint32(0xFFFF)) == 0:
            out[r] = _distinct_high_halves(bits[base : base + width], seen)
        else:
            out[r] = _distinct_hashed(bits[base : base + width], table)
    return out


@njit(cache=True, nogil=True, inline="always")
def _value_bits(bits):
    """A float32's bits as the distinct count compares them: -0.0 as 0.0; -1 for a NaN or an
    infinity (each counts as a value of its own)."""
    b = np.uint32(bits)
    if (b & _ABS) >= _INF_BITS:
        return np.int64(-1)
    return np.int64(0) if b == _SIGN else np.int64(b)


@njit(cache=True, nogil=True, inline="always")
def _distinct_high_halves(row, seen):
    seen[:] = 0
    distinct = 0
    for i in range(row.size):
        v = _value_bits(row[i])
        if v < 0:  # NaN or an infinity: always its own value
            distinct += 1
            continue
        b = np.uint32(v)
        h = b >> np.uint32(16)
        word = h >> np.uint32(6)
        bit = np.uint64(1) << np.uint64(h & np.uint32(63))
        distinct += (seen[word] & bit) == 0
        seen[word] |= bit
    return distinct


@njit(cache=True, nogil=True, inline="always")
def _distinct_hashed(row, table):
    size = table.size
    table[:] = _EMPTY
    distinct = 0
    for i in range(row.size):
        v = _value_bits(row[i])
        if v < 0:  # NaN or an infinity: always its own value
            distinct += 1
            continue
        b = np.uint32(v)
        slot = np.int64(np.uint32(b * np.uint32(0x9E3779B1)) >> np.uint32(32 - _TABLE_BITS))
        while True:
            held = table[slot]
            if held == _EMPTY:
                table[slot] = b
                distinct += 1
                break
            if held == b:
                break
            slot = (slot + 1) & (size - 1)
    return distinct
