"""The per-window computations, in torch so they run on CPU or GPU with identical results.

Everything here is integer arithmetic on exact float32 bit patterns (no floating reductions),
which is what makes the results bit-identical across devices and runs.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np
import torch

from fingerprint.device import use_kernel_threads
from fingerprint.hashing import GOLDEN, signed64, splitmix64, splitmix64_torch

_M32 = 0xFFFFFFFF
STATS_ELEMENTS = 1 << 16
_POSITIVE63 = (1 << 63) - 1
# the identity sketch hashes one element in IDENTITY_RATE of its span (positions chosen by hash)
IDENTITY_RATE = 8


_GOLDEN = signed64(GOLDEN)


def to_device(values: np.ndarray, device: str) -> torch.Tensor:
    """A window's float32 values (as a source decoded them) as a 1-D tensor on `device`.

    Every window enters the kernels here, so this is where torch is told its thread count.
    """
    use_kernel_threads()
    # torch.from_numpy shares memory and wants it writable: copy once, only when needed
    values = np.require(values, dtype=np.float32, requirements=["C", "W"])
    return torch.from_numpy(values.ravel()).to(device)


def order_keys(x: torch.Tensor) -> torch.Tensor:
    """float32 -> int64 keys with the same order (NaN treated as +inf).

    Positive floats order like their bit patterns; negative ones in reverse. Mapping to a signed
    32-bit range lets us pack (key, position) into one int64 without overflow.
    """
    x = torch.nan_to_num(x, nan=float("inf"), posinf=float("inf"), neginf=float("-inf"))
    bits = x.contiguous().view(torch.int32).to(torch.int64) & _M32
    negative = bits >= (1 << 31)
    key = torch.where(negative, _M32 - bits, bits + (1 << 31))
    return key - (1 << 31)


def bottom_k_positions(x: torch.Tensor, k: int) -> np.ndarray:
    """Sorted positions of the k smallest values, ties broken by lower position.

    `torch.topk` alone is not stable under ties (bf16 and quantized weights are full of them),
    so we rank a composite key (value order, position) that has no ties at all.
    """
    k = min(k, x.numel())
    # The k-th smallest value is well defined whatever the ties; everything at or below it is a
    # candidate, and only those few (k plus ties) need the exact composite ranking.
    if x.device.type == "cpu":
        # numpy's introselect finds the same value, about twice as fast as torch.topk here
        v = x.numpy()
        threshold = np.partition(v, k - 1)[k - 1]
        if np.isfinite(threshold):  # NaN ranks as +inf: it can only be a candidate at +inf
            pos = torch.from_numpy(np.flatnonzero(v <= threshold))
            return _first_k(x[pos], pos, k)
    x = torch.nan_to_num(x, nan=float("inf"), posinf=float("inf"), neginf=float("-inf"))
    cut = torch.topk(x, k, largest=False, sorted=False).values.max()
    pos = torch.nonzero(x <= cut).flatten()
    return _first_k(x[pos], pos, k)


def _first_k(values: torch.Tensor, pos: torch.Tensor, k: int) -> np.ndarray:
    """The sorted positions of the k smallest (value order, position) among candidates."""
    composite = order_keys(values) * (1 << 32) + pos
    smallest = torch.topk(composite, k, largest=False, sorted=False).values
    positions = (smallest & _M32).cpu().numpy().astype(np.uint32)
    positions.sort()
    return positions


@lru_cache(maxsize=64)
def identity_positions(n: int, seed: int) -> torch.Tensor:
    """The positions below n that the identity sketch hashes: those whose splitmix64 of
    (position xor seed) is 0 mod IDENTITY_RATE.

    The same for every model, and a shorter span keeps exactly the longer span's positions
    below it, so two windows of different lengths still hash the same positions where they
    overlap. Hashed rather than strided, so no column of a matrix is favoured.
    """
    pos = np.arange(n, dtype=np.uint64)
    keep = splitmix64(pos ^ np.uint64(seed & ((1 << 64) - 1))) % np.uint64(IDENTITY_RATE) == 0
    return torch.from_numpy(np.flatnonzero(keep).astype(np.int64))


def identity_minhash(x: torch.Tensor, k: int, seed: int, limit: int | None = None) -> np.ndarray:
    """Bottom-k MinHash of the set {(position, exact float32 bits)}: the k smallest 63-bit hashes.

    Two windows share a hash exactly where they hold the same value at the same position, so
    the sketch estimates the fraction of byte-identical weights. Only the first `limit`
    elements are in the set, and of those one in IDENTITY_RATE (`identity_positions`, the same
    for every model): the fraction is estimated just as well, since k hashes are kept from
    thousands either way, at a fraction of the cost.
    """
    span = x.numel() if limit is None else min(limit, x.numel())
    pos = identity_positions(span, seed).to(x.device)
    k = min(k, pos.numel())
    bits = x[pos].contiguous().view(torch.int32).to(torch.int64) & _M32
    z = splitmix64_torch((pos * (1 << 32) + bits) ^ signed64(seed & ((1 << 64) - 1)))
    z = splitmix64_torch(z + _GOLDEN) & _POSITIVE63
    smallest = torch.topk(z, k, largest=False, sorted=False).values
    out = smallest.cpu().numpy().astype(np.uint64)
    out.sort()
    return out


def window_stats(
    x: torch.Tensor, raw: bytes, cols: int
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
    # SHA-256 runs on the CPU's SHA instructions: 2.5x faster than BLAKE2b here
    digest = hashlib.sha256(raw).digest()[:16]
    # moments from a prefix of STATS_ELEMENTS: they are cues, and a prefix keeps them cheap
    v = x[:STATS_ELEMENTS].cpu().numpy().astype(np.float64)
    distinct = distinct_fraction(v, cols)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, 0.0, 0.0, 0.0, distinct, digest
    mean = float(v.mean())
    centred = v - mean
    sq = centred * centred
    var = float(np.mean(sq))
    std = var**0.5
    kurt = float(np.mean(sq * sq) / (var * var)) if var > 0 else 0.0
    return mean, std, kurt, float(np.abs(v).max()), distinct, digest


def distinct_fraction(v: np.ndarray, cols: int, max_rows: int = 64) -> float:
    """Mean over the first rows (at most 1024 values each) of distinct values / row length."""
    width = min(cols, 1024, v.size)
    rows = min(max_rows, v.size // cols) if cols <= v.size else 1
    if rows == 0 or width == 0:
        return 1.0
    block = np.sort(v[: rows * cols].reshape(rows, -1)[:, :width], axis=1)
    distinct = (np.diff(block, axis=1) != 0).sum(axis=1) + 1
    return float(distinct.mean() / width)
