"""The per-window computations: numpy on the CPU, torch on a GPU, the same bits either way.

Everything that is stored is integer arithmetic on exact float32 bit patterns, or float64 sums
in a fixed order (`LANES` lanes, `lane_total`) that any code adding the same numbers in that
order reproduces bit for bit: nothing depends on where it ran.

A window on the CPU stays a numpy array and torch is never imported: every step is a pass or
two over a few hundred thousand values, which numpy does at memory speed on one thread (no
thread to wait for on a busy machine), and a process that only compares two models does not
pay the seconds torch takes to import. Torch runs the same steps when the window is on a GPU;
tests/fingerprint/test_kernels_reference.py holds both to a reference of the format, bit for bit.

Where numba is installed, a CPU window can be signed in one compiled pass over its stored bits
(`sign_window`, `fingerprint.kernels_jit`: the same bits, tests/fingerprint/test_kernels_jit.py);
a process turns to it only once it has signed `JIT_AFTER_WINDOWS` windows, since importing
numba costs more than it saves on a model or two.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import xxhash

from fingerprint import jit
from fingerprint.device import use_kernel_threads
from fingerprint.hashing import signed64, splitmix64, splitmix64_torch

if TYPE_CHECKING:
    import torch

    Values = np.ndarray | torch.Tensor
else:
    Values = Any

_M32 = 0xFFFFFFFF
_POSITIVE63 = (1 << 63) - 1
# the identity sketch hashes one element in IDENTITY_RATE of its span (positions chosen by hash)
IDENTITY_RATE = 8
# bottom-k looks for its threshold in every SAMPLE_STRIDE-th value first (`_candidates`)
SAMPLE_STRIDE = 16
# the moments are float64 sums in this many lanes: value i of the sample goes to lane i % LANES,
# in order, and the lanes are added pairwise (`lane_total`): one order wherever it runs
LANES = 16
# `distinct` counts the first this-many rows of a window (at most 1024 values each)
DISTINCT_ROWS = 16
NO_JIT_ENV = jit.NO_JIT_ENV
# The compiled pass saves about 1 ms a window (a 64-window 1 GB model: 43 against 112 ms with a
# busy loop beside it, docs/benchmarks.md), but a process pays about 1 s to import numba and
# load its cached code. So a process starts on numpy and turns to it once the work numpy did
# would have paid for the import (about 1,000 windows: 16 such models; a rule that switches when
# the extra cost reaches the switch's cost is never worse than twice the best choice in
# hindsight), or at once when numba is already imported.
JIT_AFTER_WINDOWS = 1024

_LITTLE_ENDIAN = sys.byteorder == "little"
_windows_signed = 0  # windows whose stats this process computed (approximate across threads)
_jit_choice: bool | None = None  # use_jit's choice; None: decide by the work done (above)


def use_jit(on: bool | None) -> None:
    """Use the compiled kernels from now on (True), never (False), or when they pay (None,
    the default: see JIT_AFTER_WINDOWS). $LINEAGE_NO_JIT=1 turns them off regardless; without
    numba the numpy code runs anyway. Either way the results are the same bits."""
    global _jit_choice
    _jit_choice = on


def jit_kernels() -> ModuleType | None:
    """`fingerprint.kernels_jit` (compiled, the same bits) when it is installed, allowed
    ($LINEAGE_NO_JIT unset or 0), chosen (`use_jit`) and this is a little-endian machine (it
    reads stored bytes and flag bytes as little-endian words); None: the numpy code here, which
    defines the format."""
    if _jit_choice is False or not _LITTLE_ENDIAN or not jit.allowed():
        return None
    if _jit_choice is None and not jit.worth(_windows_signed, JIT_AFTER_WINDOWS):
        return None
    return jit.compiled("fingerprint.kernels_jit")


def _bits(x: np.ndarray) -> np.ndarray | None:
    """A float32 array's bit patterns as a 1-D uint32 view (no copy), or None for another
    dtype or layout (the compiled kernels take only that)."""
    if x.dtype != np.float32 or x.ndim != 1 or not x.flags.c_contiguous:
        return None
    return x.view(np.uint32)


def to_device(values: np.ndarray, device: str) -> Values:
    """A window's float32 values (as a source decoded them), ready for the kernels on `device`:
    a 1-D numpy array on the CPU (no copy when already one), a torch tensor on a GPU."""
    if device == "cpu":
        return np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    return to_torch(values, device)


def to_torch(values: np.ndarray, device: str) -> torch.Tensor:
    """The values as a 1-D float32 torch tensor on `device` (the kernels' torch path).

    Every window that enters torch comes through here, so this is where torch is told its
    thread count.
    """
    import torch

    use_kernel_threads()
    # torch.from_numpy shares memory and wants it writable: copy once, only when needed
    values = np.require(values, dtype=np.float32, requirements=["C", "W"])
    return torch.from_numpy(values.reshape(-1)).to(device)


def order_keys(x: Values) -> Values:
    """float32 -> int64 keys with the same order (NaN treated as +inf; -0.0 just below +0.0).

    Positive floats order like their bit patterns; negative ones in reverse. Mapping to a signed
    32-bit range lets us pack (key, position) into one int64 without overflow.
    """
    return _order_keys_numpy(x) if isinstance(x, np.ndarray) else _order_keys_torch(x)


def _order_keys_numpy(x: np.ndarray) -> np.ndarray:
    v = np.where(np.isnan(x), np.float32(np.inf), x)
    bits = v.view(np.uint32).astype(np.int64)
    return np.where(bits >= (1 << 31), _M32 - bits, bits + (1 << 31)) - (1 << 31)


def _order_keys_torch(x: torch.Tensor) -> torch.Tensor:
    import torch

    x = torch.nan_to_num(x, nan=float("inf"), posinf=float("inf"), neginf=float("-inf"))
    bits = x.contiguous().view(torch.int32).to(torch.int64) & _M32
    return torch.where(bits >= (1 << 31), _M32 - bits, bits + (1 << 31)) - (1 << 31)


def bottom_k_positions(x: Values, k: int) -> np.ndarray:
    """Sorted positions of the k smallest values, ties broken by lower position.

    A sort by value alone is not stable under ties (bf16 and quantized weights are full of
    them), so the few candidates are ranked by a composite key (value order, position) that has
    no ties at all.
    """
    if k <= 0 or len(x) == 0:
        return np.zeros(0, np.uint32)
    k = min(k, len(x))
    jit = jit_kernels() if isinstance(x, np.ndarray) else None
    bits = _bits(x) if jit is not None and isinstance(x, np.ndarray) else None
    if jit is not None and bits is not None:
        found = jit.bottom_k(bits, 0, k)
        if found.size:
            return found
    smallest = _bottom_k_numpy(x, k) if isinstance(x, np.ndarray) else _bottom_k_torch(x, k)
    positions = (smallest & _M32).astype(np.uint32)
    positions.sort()
    return positions


def _bottom_k_numpy(v: np.ndarray, k: int) -> np.ndarray:
    """The k smallest composite keys (value order << 32 | position), in no order."""
    pos = _candidates(v, k)
    if pos is None:
        pos = np.arange(v.size, dtype=np.int64)
        composite = _order_keys_numpy(v) * (1 << 32) + pos
    else:
        composite = _order_keys_numpy(v[pos]) * (1 << 32) + pos
    return np.partition(composite, k - 1)[:k] if composite.size > k else composite


def _bottom_k_torch(x: torch.Tensor, k: int) -> np.ndarray:
    """`_bottom_k_numpy` in torch, for a window on a GPU: the same keys."""
    import torch

    x = torch.nan_to_num(x, nan=float("inf"), posinf=float("inf"), neginf=float("-inf"))
    cut = torch.topk(x, k, largest=False, sorted=False).values.max()
    pos = torch.nonzero(x <= cut).flatten()
    composite = _order_keys_torch(x[pos]) * (1 << 32) + pos
    return torch.topk(composite, k, largest=False, sorted=False).values.cpu().numpy()


def _candidates(v: np.ndarray, k: int) -> np.ndarray | None:
    """Positions holding every one of the k smallest values (and a few more), or None: all.

    A threshold t from a strided sample, then `v <= t`: when t is finite and at least k values
    are at or below it, every value above t (NaN ranks as +inf) is larger than all of those, so
    none of them can be among the k smallest and the answer is exactly the one a full sort
    gives. Otherwise (a sample that missed, infinities or NaN at the threshold) the plain k-th
    value is used, as a full partition finds it.
    """
    n = v.size
    sample = v[::SAMPLE_STRIDE]
    if n >= 8 * k * SAMPLE_STRIDE:
        # about twice the sample's expected share of the k smallest, plus a margin for chance
        j = min(sample.size - 1, 2 * -(-k * sample.size // n) + 16)
        t = np.partition(sample, j)[j]
        if np.isfinite(t):
            pos = np.flatnonzero(v <= t)
            if pos.size >= k:
                return pos
    t = np.partition(v, k - 1)[k - 1]
    return np.flatnonzero(v <= t) if np.isfinite(t) else None


@lru_cache(maxsize=64)
def identity_positions(n: int, seed: int) -> np.ndarray:
    """The positions below n that the identity sketch hashes: those whose splitmix64 of
    (position xor seed) is 0 mod IDENTITY_RATE (int64, read-only).

    The same for every model, and a shorter span keeps exactly the longer span's positions
    below it, so two windows of different lengths still hash the same positions where they
    overlap. Hashed rather than strided, so no column of a matrix is favoured.
    """
    pos = np.arange(n, dtype=np.uint64)
    keep = splitmix64(pos ^ np.uint64(seed & ((1 << 64) - 1))) % np.uint64(IDENTITY_RATE) == 0
    out = np.flatnonzero(keep).astype(np.int64)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=64)
def _identity_keys(n: int, seed: int) -> np.ndarray:
    """(identity position << 32) ^ seed, as uint64: the half of each hashed key that does not
    depend on the window (the value bits fill the low half)."""
    out = (identity_positions(n, seed).astype(np.uint64) << np.uint64(32)) ^ np.uint64(
        seed & ((1 << 64) - 1)
    )
    out.setflags(write=False)
    return out


def identity_minhash(x: Values, k: int, seed: int, limit: int | None = None) -> np.ndarray:
    """Bottom-k MinHash of the set {(position, exact float32 bits)}: the k smallest 63-bit hashes.

    Two windows share a hash exactly where they hold the same value at the same position, so
    the sketch estimates the fraction of byte-identical weights. Only the first `limit`
    elements are in the set, and of those one in IDENTITY_RATE (`identity_positions`, the same
    for every model): the fraction is estimated just as well, since k hashes are kept from
    thousands either way, at a fraction of the cost. Each element is hashed by one splitmix64
    of ((position << 32) | bits) xor seed (format v5; v3-v4 hashed twice).
    """
    span = len(x) if limit is None else min(limit, len(x))
    pos = identity_positions(span, seed)
    k = min(k, pos.size)
    if k <= 0:
        return np.zeros(0, np.uint64)
    jit = jit_kernels() if isinstance(x, np.ndarray) else None
    bits = _bits(x) if jit is not None and isinstance(x, np.ndarray) else None
    if jit is not None and bits is not None:
        out = jit.identity_smallest(bits, 0, pos, _identity_keys(span, seed), k)
        if out.size:
            return out
    if isinstance(x, np.ndarray):
        # (position << 32 | bits) ^ seed: the position half is the same for every window
        z = splitmix64(_identity_keys(span, seed) ^ x[pos].view(np.uint32))
        z &= np.uint64(_POSITIVE63)
        out = np.partition(z, k - 1)[:k] if z.size > k else z
    else:
        import torch

        tpos = torch.from_numpy(pos.copy()).to(x.device)
        tbits = x[tpos].contiguous().view(torch.int32).to(torch.int64) & _M32
        tz = splitmix64_torch((tpos * (1 << 32) + tbits) ^ signed64(seed & ((1 << 64) - 1)))
        out = torch.topk(tz & _POSITIVE63, k, largest=False, sorted=False).values.cpu().numpy()
    out = out.astype(np.uint64)
    out.sort()
    return out


Stats = tuple[float, float, float, float, float, bytes]


def window_stats(x: Values, raw: bytes, cols: int, seed: int, limit: int | None = None) -> Stats:
    """(mean, std, kurtosis, absmax, distinct, 16-byte digest of the raw bytes), on the CPU.

    The digest covers the whole window. The moments and absmax are taken over the values the
    identity sketch hashes (`identity_positions` of the first `limit` elements and `seed`: one
    in IDENTITY_RATE, spread over the rows), skipping NaN and infinities; `distinct` over the
    first DISTINCT_ROWS rows.

    `distinct` is the mean fraction of distinct values per row over the first rows: about 1 for
    trained float weights, far lower for weights rounded onto a quantization grid (int8: at
    most 255 levels per row, 4-bit: 16 per group), which is how a quantize/dequantize round trip
    saved as float is told apart from a light fine-tune.

    The sums are float64 in LANES fixed lanes (`lane_total`), so the compiled pass
    (`kernels_jit.sign_window`), which adds the same numbers in the same order, gives the same
    bits; on a GPU the few sampled values come back to numpy first.
    """
    digest = window_digest(raw)
    global _windows_signed
    _windows_signed += 1
    _, rows = distinct_shape(len(x), cols)
    head = x[: rows * cols]
    head = head if isinstance(head, np.ndarray) else head.cpu().numpy()
    distinct = distinct_fraction(head, cols)
    sample = identity_positions(len(x) if limit is None else min(limit, len(x)), seed)
    picked = x[sample] if isinstance(x, np.ndarray) else x[_torch_index(sample, x)].cpu().numpy()
    return (*sample_moments(np.asarray(picked, np.float32)), distinct, digest)


def _torch_index(positions: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.from_numpy(np.array(positions, np.int64)).to(like.device)  # a writable copy


def sample_moments(v: np.ndarray) -> tuple[float, float, float, float]:
    """(mean, std, kurtosis m4/m2^2, absmax) of the finite values of a float32 sample, from
    float64 sums in LANES lanes (`lane_sums`); zeros when none is finite."""
    finite = np.isfinite(v)
    count = int(finite.sum())
    if count == 0:
        return 0.0, 0.0, 0.0, 0.0
    # float32 extremes are exact; abs() makes a largest value of -0.0 the +0.0 of |v|
    absmax = float(abs(np.abs(v[finite]).max()))
    with np.errstate(invalid="ignore"):  # a signalling NaN warns as it widens; it is skipped
        w = v.astype(np.float64)
    if count < v.size:
        w[~finite] = 0.0  # a skipped value adds nothing to its lane
    total = lane_total(lane_sums(w))
    d = w - total / count
    if count < v.size:
        d[~finite] = 0.0
    sq = d * d
    return finish_moments(
        total, lane_total(lane_sums(sq)), lane_total(lane_sums(sq * sq)), count, absmax
    )


def finish_moments(
    total: float, squares: float, fourths: float, count: int, absmax: float
) -> tuple[float, float, float, float]:
    """(mean, std, kurtosis, absmax) from the lane totals of the values, of their squared
    deviations from the mean (total / count) and of those squared; the one place both paths
    finish in, so the last roundings are the same."""
    var = squares / count
    kurt = (fourths / count) / (var * var) if var > 0 else 0.0
    return total / count, var**0.5, kurt, absmax


def lane_sums(w: np.ndarray) -> np.ndarray:
    """float64 sums of w[i] over i = j mod LANES, for each lane j, adding in order of i.

    numpy adds the rows of a C-ordered 2-D array one after the other when it reduces over the
    first axis (no pairwise summation across rows): that is this order, from +0.0 (tests hold
    it against an explicit loop)."""
    pad = -w.size % LANES
    if pad:
        w = np.concatenate([w, np.zeros(pad)])
    return np.add.reduce(w.reshape(-1, LANES), axis=0)


def lane_total(lanes: np.ndarray) -> float:
    """The lanes added pairwise, neighbours first: ((l0 + l1) + (l2 + l3)) + ..."""
    while lanes.size > 1:
        lanes = lanes[0::2] + lanes[1::2]
    return float(lanes[0])


def sign_stored(
    a: np.ndarray,
    shift: int,
    raw: bytes,
    cols: int,
    k: int,
    identity: tuple[int, int, int],
    jit: ModuleType | None = None,
) -> tuple[np.ndarray, np.ndarray, Stats] | None:
    """(bottom-k positions, identity MinHash, stats) of a window from its stored bits in one
    compiled pass, or None where the compiled kernels are not in use (`jit_kernels`).

    `a`: the window's float32 bit patterns (uint32, shift 0) or its bfloat16 ones (uint16,
    shift 16), read straight from the stored bytes; `identity`: (identity_k, seed,
    identity_window); `jit`: `jit_kernels()` when the caller asked already (once per model).
    The same bits as `bottom_k_positions`, `identity_minhash` and `window_stats` give on the
    widened values; where the compiled route cannot decide a part (see
    `fingerprint.kernels_jit`), those compute it.
    """
    jit = jit or jit_kernels()
    if jit is None:
        return None
    identity_k, seed, identity_window = identity
    if a.flags.writeable:  # one compiled form: stored bytes arrive read-only
        a = a.view()
        a.flags.writeable = False
    n = a.size
    span = min(identity_window, n)
    sample = identity_positions(span, seed)
    width, rows = distinct_shape(n, cols)
    positions, hashes, sums, distinct = jit.sign_window(
        a, shift, min(k, n), sample, _identity_keys(span, seed), min(identity_k, sample.size),
        rows, cols, width,
    )  # fmt: skip
    if positions.size == 0 and min(k, n) > 0:
        positions = bottom_k_positions(_widen(a, shift), k)
    if hashes.size == 0 and min(identity_k, sample.size) > 0:
        hashes = identity_minhash(_widen(a, shift), identity_k, seed, identity_window)
    total, squares, fourths, count, absmax = sums
    moments = finish_moments(total, squares, fourths, count, absmax) if count else (0.0,) * 4
    share = _distinct_share(int(distinct), rows, width)
    global _windows_signed
    _windows_signed += 1
    return positions, hashes, (*moments, share, window_digest(raw))


def _widen(a: np.ndarray, shift: int) -> np.ndarray:
    """The float32 values of stored bits (`sign_stored`'s `a`)."""
    if shift:
        return np.left_shift(a, shift, dtype=np.uint32).view(np.float32)
    return a.view(np.float32)


def window_digest(raw: bytes) -> bytes:
    """The slot digest: XXH3-128 of the window's raw bytes (16 bytes, big-endian as xxhash
    writes it). Format v5; v4 took BLAKE3, v3 SHA-256."""
    return xxhash.xxh3_128_digest(raw)


def distinct_shape(n: int, cols: int, max_rows: int = DISTINCT_ROWS) -> tuple[int, int]:
    """(values per row, rows) that `distinct_fraction` counts in a window of n values."""
    width = min(cols, 1024, n)
    rows = min(max_rows, n // cols) if cols <= n else 1
    return width, rows


def distinct_fraction(v: np.ndarray, cols: int, max_rows: int = DISTINCT_ROWS) -> float:
    """Mean over the first rows (at most 1024 values each) of distinct values / row length.

    Neighbours in sorted order count as distinct unless their difference is zero (format v3
    counted `np.diff(row) != 0`): -0.0 equals 0.0, and every NaN and every infinity counts on
    its own (inf - inf is NaN). The same count whether `v` is float32 or its exact float64
    widening; the signature passes float32, which sorts twice as fast.
    """
    width, rows = distinct_shape(v.size, cols, max_rows)
    if rows == 0 or width == 0:
        return _distinct_share(0, rows, width)
    jit = jit_kernels()
    bits = _bits(v) if jit is not None else None
    if jit is not None and bits is not None:
        return _distinct_share(
            int(jit.distinct_counts(bits, 0, rows, cols, width).sum()), rows, width
        )
    block = np.sort(v[: rows * cols].reshape(rows, -1)[:, :width], axis=1)
    # b - a == 0 exactly when b == a and both are finite (IEEE: distinct finite values never
    # differ by zero); sorted, a row's infinities and NaNs sit at its two ends
    same = block[:, 1:] == block[:, :-1]
    if not np.isfinite(block[:, [0, -1]]).all():
        same &= np.isfinite(block[:, 1:])
    distinct = width - same.sum(axis=1)
    return _distinct_share(int(distinct.sum()), rows, width)


def _distinct_share(total: int, rows: int, width: int) -> float:
    """The mean share of distinct values per row, from their count summed over the rows: the
    mean of small integers is their exact sum over rows, rounded once (1.0 without rows)."""
    return total / rows / width if rows and width else 1.0
