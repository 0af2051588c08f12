"""Compiled (numba) forms of `fingerprint.kernels`: the same bits, faster.

The numpy path defines the signature format; each function here returns exactly what its numpy
counterpart returns (tests/fingerprint/test_kernels_jit.py holds them equal on the awkward
windows of tests/fingerprint/test_kernels_reference.py). Every function reads a window as its
stored bits: `a` is a uint32 array of float32 bit patterns (shift 0) or a uint16 array of
bfloat16 ones (shift 16: the float32 bits are a << 16, which is how bfloat16 widens), so a
bfloat16 window is never widened into a new array. Bottom-k reads flag bytes eight at a time as
one little-endian word, so the module runs only on little-endian machines
(`kernels.jit_kernels`).

* `sign_window`: a window's whole signature but its digest, in one call:
  - `bottom_k`: the k smallest (value, position) without touching most values twice: a
    threshold from a strided sample, then one pass that compares each block of 64 stored values
    against the threshold's range of bit patterns and lists the few inside it. When the
    threshold is not a negative finite value, or leaves fewer than k values, it returns nothing
    and numpy's `kernels.bottom_k_positions` decides (the same answer, slower);
  - `identity_smallest`: the identity MinHash, keeping only hashes under a bound that about
    k + 4 sqrt(k) + 16 of them pass (nothing when fewer than k do: numpy decides);
  - `_sums_of`: the moments' lane sums over the sampled values (gathered once for the identity
    hashes too), in `kernels.LANES` lanes in the order `kernels.lane_sums` adds them;
  - `distinct_counts`: per row, how many distinct values `kernels.distinct_fraction` counts
    (equal finite neighbours in sorted order are one value, -0.0 equals 0.0, every NaN and
    every infinity counts on its own), with a bitmap of high halves for bfloat16 rows and a
    small hash set otherwise, instead of a sort.

Float sums are written without fastmath: numba keeps their order, so they round as numpy's.
numba is optional (`pip install -e '.[fast]'`); this module is imported only when it is present,
and `LINEAGE_NO_JIT=1` keeps the numpy path (`kernels.jit_kernels`). Compiled code is cached on
disk (`cache=True`), so only the first process after an install compiles.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros

from fingerprint.kernels import LANES

_SIGN = np.uint32(0x80000000)
_ABS = np.uint32(0x7FFFFFFF)
_INF_BITS = np.uint32(0x7F800000)
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_POSITIVE63 = np.uint64((1 << 63) - 1)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_EMPTY = np.uint32(0xFFFFFFFF)  # a NaN pattern: never the key of a finite value
# bottom-k's threshold comes from about this many values spread evenly over the window (numpy's
# `kernels._candidates` samples every 16th: which threshold is used changes how fast, never
# what is found)
_SAMPLE_SIZE = 8192
_GATHER_BYTES = np.uint64(0x0102040810204080)
_TABLE_BITS = 11  # 2048 slots for at most 1024 values a row: at most half full


@njit(cache=True, nogil=True, inline="always")
def _splitmix64(z):
    z = z ^ (z >> _S30)
    z = z * _C1
    z = z ^ (z >> _S27)
    z = z * _C2
    return z ^ (z >> _S31)


@njit(cache=True, nogil=True, inline="always")
def _key(b):
    """float32 bits -> int32 order key (`kernels.order_keys`: NaN as +inf, -0.0 below +0.0)."""
    b = _INF_BITS if (b & _ABS) > _INF_BITS else b
    s = np.int32(b)
    return s ^ ((s >> np.int32(31)) & np.int32(0x7FFFFFFF))


@njit(cache=True, nogil=True)
def _jth_smallest(keys, count, j):
    """The j-th smallest of keys[:count] (1 <= j <= count), through a sorted buffer of j."""
    buf = np.empty(j, np.int32)
    for m in range(j):
        key = keys[m]
        p = m
        while p > 0 and buf[p - 1] > key:
            buf[p] = buf[p - 1]
            p -= 1
        buf[p] = key
    top = buf[j - 1]
    for i in range(j, count):
        key = keys[i]
        if key < top:
            p = j - 1
            while p > 0 and buf[p - 1] > key:
                buf[p] = buf[p - 1]
                p -= 1
            buf[p] = key
            top = buf[j - 1]
    return top


@njit(cache=True, nogil=True)
def _in_range(a, lo, hi):
    """Positions i, in order, with lo <= a[i] <= hi (int32); empty when there are more than
    n / 16 + 64 of them (a threshold that loose leaves the decision to numpy).

    One pass stores a byte per value, a[i] >= lo (a loop the compiler vectorizes); a second
    reads those bytes eight at a time and, for the few blocks of 64 that have any, packs them
    into a 64-bit mask (multiplying a word by 0x0102040810204080 gathers its eight flags into
    its top byte) and lists the set bits whose value is also <= hi.
    """
    n = a.size
    whole = n - n % 64
    flags = np.empty(whole, np.uint8)
    for i in range(whole):
        flags[i] = np.uint8(a[i] >= lo)
    words = flags.view(np.uint64)
    out = np.empty(n // 16 + 64, np.int32)
    c = 0
    for b in range(whole // 64):
        q = b * 8
        seen = np.uint64(0)
        for t in range(8):
            seen |= words[q + t]
        if seen:
            mask = np.uint64(0)
            for t in range(8):
                mask |= ((words[q + t] * _GATHER_BYTES) >> np.uint64(56)) << np.uint64(8 * t)
            base = b * 64
            while mask:
                i = base + trailing_zeros(mask)
                mask &= mask - np.uint64(1)
                if a[i] <= hi:
                    if c == out.size:
                        return out[:0]
                    out[c] = i
                    c += 1
    for i in range(whole, n):
        if (a[i] >= lo) & (a[i] <= hi):
            if c == out.size:
                return out[:0]
            out[c] = i
            c += 1
    return out[:c]


@njit(cache=True, nogil=True)
def bottom_k(a, shift, k):
    """Sorted positions of the k smallest values (ties: lower position first), or an empty
    array when this route cannot decide (see the module's docstring)."""
    n = a.size
    sh = np.uint32(shift)
    stride = max(1, n // _SAMPLE_SIZE)
    count = n // stride
    share = k * count // n + 1 if n > 0 else 1
    j = share + 4 * int(np.sqrt(share)) + 8
    if k <= 0 or j >= count:
        return np.empty(0, np.uint32)
    keys = np.empty(max(count, 2 * k), np.int32)
    for i in range(count):
        keys[i] = _key(np.uint32(a[i * stride]) << sh)
    t = _jth_smallest(keys, count, j)
    if t >= 0:
        return np.empty(0, np.uint32)
    # keys <= t (a negative value) are the bit patterns from t's down to -inf's: NaN is out
    lo = np.uint32(t ^ np.int32(0x7FFFFFFF)) >> sh
    hi = np.uint32(0xFF800000) >> sh
    cand = _in_range(a, a.dtype.type(lo), a.dtype.type(hi))
    c = cand.size
    if c < k:
        return np.empty(0, np.uint32)
    if c > keys.size:
        keys = np.empty(c, np.int32)
    for i in range(c):
        keys[i] = _key(np.uint32(a[cand[i]]) << sh)
    kth = np.partition(keys[:c], k - 1)[k - 1]
    equal = k
    for i in range(c):
        equal -= keys[i] < kth
    out = np.empty(k, np.uint32)
    o = 0
    for i in range(c):  # candidates are in position order, so the output is sorted
        key = keys[i]
        if key < kth or (key == kth and equal > 0):
            equal -= key == kth
            out[o] = cand[i]
            o += 1
    return out


@njit(cache=True, nogil=True)
def _gather(a, shift, positions):
    """The float32 bit patterns at `positions` (uint32)."""
    sh = np.uint32(shift)
    bits = np.empty(positions.size, np.uint32)
    for i in range(positions.size):
        bits[i] = np.uint32(a[positions[i]]) << sh
    return bits


@njit(cache=True, nogil=True)
def identity_smallest(a, shift, positions, keys, k):
    """The k smallest of splitmix64(keys[i] ^ bits[positions[i]]) & (2^63 - 1), sorted
    (uint64; `keys` being `kernels._identity_keys`), or an empty array when fewer than k fall
    under the bound kept."""
    return _identity_of(_gather(a, shift, positions), keys, k)


@njit(cache=True, nogil=True)
def _identity_of(bits, keys, k):
    m = bits.size
    share = (k + 4.0 * np.sqrt(k) + 16.0) / m if m > 0 else 1.0
    bound = _POSITIVE63 if share >= 1.0 else np.uint64(share * 9.2233720368547758e18)
    hashes = np.empty(m, np.uint64)
    for i in range(m):
        hashes[i] = _splitmix64(keys[i] ^ np.uint64(bits[i])) & _POSITIVE63
    kept = np.empty(m, np.uint64)
    c = 0
    for i in range(m):
        kept[c] = hashes[i]
        c += hashes[i] <= bound
    if c < k or k <= 0:
        return np.empty(0, np.uint64)
    return np.sort(kept[:c])[:k]


@njit(cache=True, nogil=True, inline="always")
def _lane_total(lanes):
    """`kernels.lane_total`: the lanes added pairwise, neighbours first."""
    width = lanes.size
    while width > 1:
        width //= 2
        for i in range(width):
            lanes[i] = lanes[2 * i] + lanes[2 * i + 1]
    return lanes[0]


@njit(cache=True, nogil=True)
def _sums_of(bits):
    """(lane total of the finite sampled values, of their squared deviations from the mean,
    of those squared, how many are finite, their largest |value|) as
    `kernels.sample_moments` adds them."""
    m = bits.size
    x = bits.view(np.float32)
    count = 0
    top = np.zeros(1, np.uint32)  # the largest |value|'s bits: finite floats order like them
    for i in range(m):
        magnitude = np.uint32(bits[i] & _ABS)
        finite = magnitude < _INF_BITS
        count += finite
        top[0] = max(top[0], np.uint32(magnitude * finite))
    if count == 0:
        return 0.0, 0.0, 0.0, 0, 0.0
    absmax = np.float64(top.view(np.float32)[0])
    all_finite = count == m
    if not all_finite:  # NaN or infinities: 0.0 in their lanes, which adds nothing
        x = x.copy()
        for i in range(m):
            if (bits[i] & _ABS) >= _INF_BITS:
                x[i] = 0.0
    # lane j adds x[j], x[j + LANES], ... in order: whole rows of LANES first (a loop the
    # compiler vectorizes), then the last, partial row
    whole = m - m % LANES
    lanes = np.zeros(LANES)
    for i in range(0, whole, LANES):
        for j in range(LANES):
            lanes[j] += np.float64(x[i + j])
    for i in range(whole, m):
        lanes[i - whole] += np.float64(x[i])
    total = _lane_total(lanes)
    mean = total / count
    squares = np.zeros(LANES)
    fourths = np.zeros(LANES)
    if all_finite:
        for i in range(0, whole, LANES):
            for j in range(LANES):
                d = np.float64(x[i + j]) - mean
                sq = d * d
                squares[j] += sq
                fourths[j] += sq * sq
        start = whole
    else:
        start = 0
    for i in range(start, m):  # the partial row, or every value when some are skipped
        if (bits[i] & _ABS) < _INF_BITS:
            d = np.float64(x[i]) - mean
            sq = d * d
            squares[i % LANES] += sq
            fourths[i % LANES] += sq * sq
    return total, _lane_total(squares), _lane_total(fourths), count, absmax


@njit(cache=True, nogil=True)
def sign_window(a, shift, k, positions, keys, identity_k, rows, cols, width):
    """(bottom-k positions, identity hashes, sample sums, distinct values summed over the
    rows) of one window; an empty positions or identity array means numpy decides that part."""
    sampled = _gather(a, shift, positions)
    return (
        bottom_k(a, shift, k),
        _identity_of(sampled, keys, identity_k),
        _sums_of(sampled),
        distinct_counts(a, shift, rows, cols, width).sum(),
    )


@njit(cache=True, nogil=True)
def distinct_counts(a, shift, rows, cols, width):
    """Per row r (`width` values from r * cols), the distinct values `distinct_fraction` counts:
    one per set of equal finite values (-0.0 is 0.0) plus one per NaN or infinity.

    A row of bfloat16 values (stored so, or widened: the low 16 bits of every one zero) is
    counted in a table of the 2^16 high halves that holds, for each, the last row that had it
    (no clearing between rows); any other row in a small hash set of its finite values.
    """
    table = np.empty(1 << _TABLE_BITS, np.uint32)
    last_row = np.zeros(1 << 16, np.uint16)
    out = np.zeros(rows, np.int64)
    sh = np.uint32(shift)
    for r in range(rows):
        row = a[r * cols : r * cols + width]
        low = np.uint32(0)
        if shift != 16:  # stored bfloat16 has no low halves to look at
            for i in range(width):
                low |= np.uint32(row[i]) << sh
        if (low & np.uint32(0xFFFF)) == 0 and r < 0xFFFF:
            out[r] = _distinct_high_halves(row, sh, last_row, np.uint16(r + 1))
        else:
            out[r] = _distinct_hashed(row, sh, table)
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
def _distinct_high_halves(row, sh, last_row, stamp):
    distinct = 0
    for i in range(row.size):
        v = _value_bits(np.uint32(row[i]) << sh)
        if v < 0:  # NaN or an infinity: always its own value
            distinct += 1
            continue
        h = np.uint32(v) >> np.uint32(16)
        distinct += last_row[h] != stamp
        last_row[h] = stamp
    return distinct


@njit(cache=True, nogil=True, inline="always")
def _distinct_hashed(row, sh, table):
    size = table.size
    table[:] = _EMPTY
    distinct = 0
    for i in range(row.size):
        v = _value_bits(np.uint32(row[i]) << sh)
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
