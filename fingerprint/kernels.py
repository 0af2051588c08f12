"""The per-window computations: numpy on the CPU, torch on a GPU, the same bits either way.

Everything that is stored is integer arithmetic on exact float32 bit patterns, or a float64
reduction that always runs in numpy on the CPU: nothing depends on where it ran.

A window on the CPU stays a numpy array and torch is never imported: every step is a pass or
two over a few hundred thousand values, which numpy does at memory speed on one thread (no
thread to wait for on a busy machine), and a process that only compares two models does not
pay the seconds torch takes to import. Torch runs the same steps when the window is on a GPU;
tests/fingerprint/test_kernels_reference.py holds both to the code they replaced, bit for bit.

Where numba is installed, the identity hashes and the distinct count of a CPU window can run
compiled (`fingerprint.kernels_jit`, the same bits: tests/fingerprint/test_kernels_jit.py); a
process turns to them only once it has signed `JIT_AFTER_WINDOWS` windows, since importing
numba costs more than they save on a model or two.
"""

from __future__ import annotations

from functools import lru_cache
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
from blake3 import blake3

from fingerprint import jit
from fingerprint.device import use_kernel_threads
from fingerprint.hashing import GOLDEN, signed64, splitmix64, splitmix64_torch

if TYPE_CHECKING:
    import torch

    Values = np.ndarray | torch.Tensor
else:
    Values = Any

_M32 = 0xFFFFFFFF
STATS_ELEMENTS = 1 << 16
_POSITIVE63 = (1 << 63) - 1
# the identity sketch hashes one element in IDENTITY_RATE of its span (positions chosen by hash)
IDENTITY_RATE = 8
# bottom-k looks for its threshold in every SAMPLE_STRIDE-th value first (`_candidates`)
SAMPLE_STRIDE = 16

_GOLDEN = signed64(GOLDEN)
NO_JIT_ENV = jit.NO_JIT_ENV
# The compiled kernels save about 0.1-0.4 ms a window, but a process pays 1-2 s to import numba
# and load their cached code (measured: `lineage compare` of two 90 MB models 2.0-2.4 s wall
# with numpy, 3.5-4.3 s compiled). So a process starts on numpy and turns to them once it has
# signed this many windows (dozens of models), or at once when numba is already imported.
JIT_AFTER_WINDOWS = 4096

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
    ($LINEAGE_NO_JIT unset or 0) and chosen (`use_jit`); None: the numpy code here, which
    defines the format."""
    if _jit_choice is False or not jit.allowed():
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
    thousands either way, at a fraction of the cost.
    """
    span = len(x) if limit is None else min(limit, len(x))
    pos = identity_positions(span, seed)
    k = min(k, pos.size)
    if k <= 0:
        return np.zeros(0, np.uint64)
    jit = jit_kernels() if isinstance(x, np.ndarray) else None
    bits = _bits(x) if jit is not None and isinstance(x, np.ndarray) else None
    if jit is not None and bits is not None:
        z = jit.identity_hashes(bits, pos, _identity_keys(span, seed))
        out = np.partition(z, k - 1)[:k] if z.size > k else z
    elif isinstance(x, np.ndarray):
        # (position << 32 | bits) ^ seed: the position half is the same for every window
        z = _identity_keys(span, seed) ^ x[pos].view(np.uint32)
        z = splitmix64(z)
        with np.errstate(over="ignore"):
            z += np.uint64(GOLDEN)
        z = splitmix64(z)
        z &= np.uint64(_POSITIVE63)
        out = np.partition(z, k - 1)[:k] if z.size > k else z
    else:
        import torch

        tpos = torch.from_numpy(pos.copy()).to(x.device)
        tbits = x[tpos].contiguous().view(torch.int32).to(torch.int64) & _M32
        tz = splitmix64_torch((tpos * (1 << 32) + tbits) ^ signed64(seed & ((1 << 64) - 1)))
        tz = splitmix64_torch(tz + _GOLDEN) & _POSITIVE63
        out = torch.topk(tz, k, largest=False, sorted=False).values.cpu().numpy()
    out = out.astype(np.uint64)
    out.sort()
    return out


def window_stats(
    x: Values, raw: bytes, cols: int
) -> tuple[float, float, float, float, float, bytes]:
    """(mean, std, kurtosis, absmax, distinct, 16-byte digest of the raw bytes), on the CPU.

    The digest covers the whole window; the moments and `distinct` its first STATS_ELEMENTS.

    `distinct` is the mean fraction of distinct values per row over the first rows: about 1 for
    trained float weights, far lower for weights rounded onto a quantization grid (int8: at
    most 255 levels per row, 4-bit: 16 per group), which is how a quantize/dequantize round trip
    saved as float is told apart from a light fine-tune.

    Floating reductions differ in the last bits between devices, so stats always come from numpy
    in float64: the signature is then identical wherever it was computed.
    """
    # BLAKE3 (format v4; v3 took SHA-256): cryptographic, as "same bytes" needs, and half
    # SHA-256's time here even with the CPU's SHA instructions; one thread, no pool
    digest = window_digest(raw)
    global _windows_signed
    _windows_signed += 1
    # moments from a prefix of STATS_ELEMENTS: they are cues, and a prefix keeps them cheap
    head = x[:STATS_ELEMENTS]
    head = head if isinstance(head, np.ndarray) else head.cpu().numpy()
    distinct = distinct_fraction(head, cols)
    if head.size == 0:
        return 0.0, 0.0, 0.0, 0.0, distinct, digest
    # float32 extremes are exact (and NaN-propagating): when finite, every value is, and the
    # float64 copy needs no filtering; abs() makes a largest value of -0.0 the +0.0 of |v|
    absmax = abs(max(head.max(), -head.min()))
    v = head.astype(np.float64)
    if not np.isfinite(absmax):
        v = v[np.isfinite(v)]
        if v.size == 0:
            return 0.0, 0.0, 0.0, 0.0, distinct, digest
        absmax = np.abs(v).max()
    mean = float(v.mean())
    # in place on our own float64 copy: the same elementwise results as v - mean, sq, sq * sq
    sq = np.subtract(v, mean, out=v)
    np.multiply(sq, sq, out=sq)
    var = float(np.mean(sq))
    std = var**0.5
    np.multiply(sq, sq, out=sq)
    kurt = float(np.mean(sq) / (var * var)) if var > 0 else 0.0
    return mean, std, kurt, float(absmax), distinct, digest


def window_digest(raw: bytes) -> bytes:
    """The slot digest: the first 16 bytes of BLAKE3 of the window's raw bytes."""
    return blake3(raw).digest(length=16)


def distinct_fraction(v: np.ndarray, cols: int, max_rows: int = 64) -> float:
    """Mean over the first rows (at most 1024 values each) of distinct values / row length.

    Neighbours in sorted order count as distinct unless their difference is zero (format v3
    counted `np.diff(row) != 0`): -0.0 equals 0.0, and every NaN and every infinity counts on
    its own (inf - inf is NaN). The same count whether `v` is float32 or its exact float64
    widening; the signature passes float32, which sorts twice as fast.
    """
    width = min(cols, 1024, v.size)
    rows = min(max_rows, v.size // cols) if cols <= v.size else 1
    if rows == 0 or width == 0:
        return 1.0
    jit = jit_kernels()
    bits = _bits(v) if jit is not None else None
    if jit is not None and bits is not None:
        distinct = jit.distinct_counts(bits, rows, cols, width)
        return float(distinct.mean() / width)
    block = np.sort(v[: rows * cols].reshape(rows, -1)[:, :width], axis=1)
    # b - a == 0 exactly when b == a and both are finite (IEEE: distinct finite values never
    # differ by zero); sorted, a row's infinities and NaNs sit at its two ends
    same = block[:, 1:] == block[:, :-1]
    if not np.isfinite(block[:, [0, -1]]).all():
        same &= np.isfinite(block[:, 1:])
    distinct = width - same.sum(axis=1)
    return float(distinct.mean() / width)
