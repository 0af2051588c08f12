"""The kernels against a plain reference of the format: the torch code they replaced for the
bottom-k positions (format v3, kept verbatim), and for what format v5 changed a direct
transcription of docs/signature-format.md: the identity sketch's one splitmix64 round, the
moments over the identity sample added lane by lane in a Python loop, the distinct count over
the first 16 rows, and the XXH3-128 digest.

The numpy path (the CPU), the torch path (a GPU; here on the CPU) and the reference must agree
exactly on windows of every stored float dtype, odd shapes, NaN, infinities, -0.0, constant
rows and heavy ties; and whole signatures must serialize to the same bytes.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
import xxhash

from fingerprint import kernels
from fingerprint.hashing import signed64, splitmix64, splitmix64_torch
from fingerprint.plan import plan_slots
from fingerprint.protocol import TensorInfo, Window
from fingerprint.records import Signature, SignatureParams, SlotSignature
from fingerprint.signature import compute_signature

# --- the reference: bottom-k as fingerprint/kernels.py had it in format v3 (commit 3436eba) -------

_M32 = 0xFFFFFFFF
_POSITIVE63 = (1 << 63) - 1


def _ref_order_keys(x: torch.Tensor) -> torch.Tensor:
    x = torch.nan_to_num(x, nan=float("inf"), posinf=float("inf"), neginf=float("-inf"))
    bits = x.contiguous().view(torch.int32).to(torch.int64) & _M32
    negative = bits >= (1 << 31)
    key = torch.where(negative, _M32 - bits, bits + (1 << 31))
    return key - (1 << 31)


def _ref_first_k(values: torch.Tensor, pos: torch.Tensor, k: int) -> np.ndarray:
    composite = _ref_order_keys(values) * (1 << 32) + pos
    smallest = torch.topk(composite, k, largest=False, sorted=False).values
    positions = (smallest & _M32).cpu().numpy().astype(np.uint32)
    positions.sort()
    return positions


def _ref_bottom_k(x: torch.Tensor, k: int) -> np.ndarray:
    k = min(k, x.numel())
    v = x.numpy()
    threshold = np.partition(v, k - 1)[k - 1]
    if np.isfinite(threshold):
        pos = torch.from_numpy(np.flatnonzero(v <= threshold))
        return _ref_first_k(x[pos], pos, k)
    x = torch.nan_to_num(x, nan=float("inf"), posinf=float("inf"), neginf=float("-inf"))
    cut = torch.topk(x, k, largest=False, sorted=False).values.max()
    pos = torch.nonzero(x <= cut).flatten()
    return _ref_first_k(x[pos], pos, k)


def _ref_identity_positions(n: int, seed: int, limit: int | None) -> np.ndarray:
    span = n if limit is None else min(limit, n)
    p = np.arange(span, dtype=np.uint64)
    keep = splitmix64(p ^ np.uint64(seed & ((1 << 64) - 1))) % np.uint64(8) == 0
    return np.flatnonzero(keep).astype(np.int64)


def _ref_identity(x: torch.Tensor, k: int, seed: int, limit: int | None) -> np.ndarray:
    # format v5: one splitmix64 round (v3-v4 hashed the result once more, plus the golden ratio)
    pos = torch.from_numpy(_ref_identity_positions(x.numel(), seed, limit))
    k = min(k, pos.numel())
    bits = x[pos].contiguous().view(torch.int32).to(torch.int64) & _M32
    z = splitmix64_torch((pos * (1 << 32) + bits) ^ signed64(seed & ((1 << 64) - 1)))
    smallest = torch.topk(z & _POSITIVE63, k, largest=False, sorted=False).values
    out = smallest.cpu().numpy().astype(np.uint64)
    out.sort()
    return out


def _ref_distinct(v: np.ndarray, cols: int, max_rows: int = 16) -> float:
    width = min(cols, 1024, v.size)
    rows = min(max_rows, v.size // cols) if cols <= v.size else 1
    if rows == 0 or width == 0:
        return 1.0
    block = np.sort(v[: rows * cols].reshape(rows, -1)[:, :width], axis=1)
    with np.errstate(invalid="ignore", over="ignore"):  # the reference warned; same counts
        distinct = (np.diff(block, axis=1) != 0).sum(axis=1) + 1
    return float(distinct.mean() / width)


def _ref_digest(raw: bytes) -> bytes:
    # format v5 (v4: BLAKE3, v3: SHA-256, first 16 bytes)
    return xxhash.xxh3_128(raw).digest()


def _ref_lane_total(values: list[float]) -> float:
    lanes = [0.0] * 16
    for i, v in enumerate(values):  # value i goes to lane i % 16, in order
        lanes[i % 16] += v
    while len(lanes) > 1:  # neighbours first: ((l0 + l1) + (l2 + l3)) + ...
        lanes = [lanes[i] + lanes[i + 1] for i in range(0, len(lanes), 2)]
    return lanes[0]


def _ref_stats(x: torch.Tensor, raw: bytes, cols: int, seed: int, limit: int | None) -> tuple:
    digest = _ref_digest(raw)
    v = x.cpu().numpy()
    distinct = _ref_distinct(v.astype(np.float64), cols)
    sample = v[_ref_identity_positions(v.size, seed, limit)]
    finite = [float(a) if np.isfinite(a) else None for a in sample]
    count = sum(a is not None for a in finite)
    if count == 0:
        return 0.0, 0.0, 0.0, 0.0, distinct, digest
    total = _ref_lane_total([0.0 if a is None else a for a in finite])
    mean = total / count
    sq = [0.0 if a is None else (a - mean) * (a - mean) for a in finite]
    var = _ref_lane_total(sq) / count
    kurt = (_ref_lane_total([q * q for q in sq]) / count) / (var * var) if var > 0 else 0.0
    absmax = max(abs(a) for a in finite if a is not None)
    return mean, var**0.5, kurt, absmax, distinct, digest


# --- windows ------------------------------------------------------------------------------------


def _decoded(values: np.ndarray, dtype: torch.dtype) -> tuple[np.ndarray, bytes]:
    """float32 values as stored in `dtype` and widened back (what a source hands over)."""
    stored = torch.from_numpy(np.ascontiguousarray(values, np.float32)).to(dtype)
    raw = stored.view(torch.uint8).numpy().tobytes() if dtype != torch.float32 else None
    return stored.float().numpy(), raw or stored.numpy().tobytes()


def _windows() -> dict[str, tuple[np.ndarray, int]]:
    """name -> (float32 values, cols): the awkward cases a signature meets."""
    rng = np.random.default_rng(20)
    normal = rng.standard_normal(1 << 18).astype(np.float32) * 0.02
    specials = normal.copy()
    specials[::97] = np.nan
    specials[5::89] = np.inf
    specials[7::83] = -np.inf
    specials[11::13] = -0.0
    specials[12::13] = 0.0
    many_nan = normal[:70_000].copy()
    many_nan[rng.random(70_000) < 0.995] = np.nan
    ints = rng.integers(-3, 4, 200_000).astype(np.float32)
    # bottom-k's strided sample sees only the ramp, so its threshold leaves too few candidates
    misses = rng.standard_normal(1 << 18).astype(np.float32)
    misses[::16] = -100.0 + np.arange(misses[::16].size, dtype=np.float32)
    misses[rng.choice(np.flatnonzero(np.arange(1 << 18) % 16), 300, replace=False)] = -50.0
    # +inf and NaN tie (NaN ranks as +inf): the k smallest take both, by position
    inf_nan = np.where((np.arange(1 << 17) // 3) % 2 == 1, np.nan, np.inf).astype(np.float32)
    inf_nan[rng.choice(1 << 17, 100, replace=False)] = 1.0
    return {
        "normal": (normal, 1024),
        "specials": (specials, 1024),
        "mostly nan": (many_nan, 700),
        "all +inf": (np.full(4096, np.inf, np.float32), 64),
        "all nan": (np.full(5000, np.nan, np.float32), 100),
        "constant": (np.full(100_000, 0.125, np.float32), 1000),
        "zeros and -0": (np.where(rng.random(9000) < 0.5, -0.0, 0.0).astype(np.float32), 3),
        "int grid ties": (ints, 2816),
        "odd shape": (normal[: 37 * 131], 131),
        "wide row": (normal[:3000], 5000),
        "sorted": (np.sort(normal), 512),
        "descending": (np.sort(normal)[::-1].copy(), 512),
        "subnormals": (normal * np.float32(1e-37), 1024),
        "small": (normal[:700], 7),
        "sample misses": (misses, 1024),
        "+inf and nan": (inf_nan, 1024),
    }


DTYPES = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}
CASES = [(w, d) for w in _windows() for d in DTYPES]


@pytest.mark.parametrize(("window", "dtype"), CASES)
@pytest.mark.parametrize("k", [512, 7])
def test_numpy_and_torch_paths_match_the_reference_bit_for_bit(window, dtype, k):
    values, cols = _windows()[window]
    with np.errstate(over="ignore"):
        decoded, raw = _decoded(values, DTYPES[dtype])
    ref = torch.from_numpy(decoded.copy())
    want = (
        _ref_bottom_k(ref, k),
        _ref_identity(ref, 256, 0x6C696E65, 1 << 16),
        _ref_stats(ref, raw, cols, 0x6C696E65, 1 << 16),
    )
    for x in (kernels.to_device(decoded, "cpu"), kernels.to_torch(decoded, "cpu")):
        got = (
            kernels.bottom_k_positions(x, k),
            kernels.identity_minhash(x, 256, 0x6C696E65, 1 << 16),
            kernels.window_stats(x, raw, cols, 0x6C696E65, 1 << 16),
        )
        assert got[0].dtype == np.uint32 and np.array_equal(got[0], want[0])
        assert got[1].dtype == np.uint64 and np.array_equal(got[1], want[1])
        # the stats as stored: five f64 bit patterns and the digest
        assert struct.pack("<5d", *got[2][:5]) == struct.pack("<5d", *want[2][:5])
        assert got[2][5] == want[2][5]


class _Source:
    """Tensors stored in several dtypes, decoded as a source decodes them."""

    model_id = "ref/model"

    def __init__(self, tensors: dict[str, tuple[np.ndarray, tuple[int, ...], str]]):
        self._stored = {}
        self._infos = []
        for name, (values, shape, dtype) in tensors.items():
            decoded, raw = _decoded(values, DTYPES[dtype])
            self._stored[name] = (decoded, raw, len(raw) // decoded.size, dtype.upper())
            self._infos.append(TensorInfo(name, dtype.upper(), shape, decodable=True))

    def tensor_infos(self):
        return self._infos

    def read_window(self, name: str, n: int) -> Window:
        decoded, raw, size, plain = self._stored[name]
        # `plain`: the raw bytes are the elements (the compiled pass reads F32 and BF16 there)
        return Window(values=decoded[:n], raw=raw[: n * size], plain=plain)


def test_whole_signatures_serialize_to_the_reference_bytes():
    rng = np.random.default_rng(21)
    windows = _windows()
    tensors = {}
    for i, (dtype, (name, (values, cols))) in enumerate(
        (d, w) for d in DTYPES for w in windows.items()
    ):
        rows = max(1, values.size // cols)
        shape = (rows, cols) if rows * cols <= values.size else (1, values.size)
        flat = values[: shape[0] * shape[1]]
        if flat.size >= 4096:
            tensors[f"layers.{i}.{name.replace(' ', '_')}.weight"] = (flat, shape, dtype)
    tensors["embed_tokens.weight"] = (
        rng.standard_normal(300 * 96).astype(np.float32),
        (300, 96),
        "bf16",
    )
    params = SignatureParams()
    source = _Source(tensors)
    got = compute_signature(source, params=params, device="cpu")

    slots, skipped = plan_slots(
        source.tensor_infos(),
        max_slots=params.max_slots,
        window=params.window,
        min_elements=params.min_elements,
    )
    ref_slots = []
    read = 0
    for s in slots:
        data = source.read_window(s.tensor, s.n)
        read += len(data.raw)
        x = torch.from_numpy(np.array(data.values, np.float32))
        mean, std, kurt, absmax, distinct, digest = _ref_stats(
            x, data.raw, s.cols, params.seed, params.identity_window
        )
        ref_slots.append(
            SlotSignature(
                key=s.key,
                tensor=s.tensor,
                dtype=s.dtype,
                shape=s.shape,
                n=s.n,
                positions=_ref_bottom_k(x, params.k),
                identity=_ref_identity(x, params.identity_k, params.seed, params.identity_window),
                mean=mean,
                std=std,
                kurtosis=kurt,
                absmax=absmax,
                distinct=distinct,
                digest=digest,
            )
        )
    want = Signature(params=params, slots=tuple(ref_slots), skipped=skipped, bytes_read=read)
    assert len(got.slots) > 20
    assert got.to_bytes() == want.to_bytes()


def test_the_digest_is_xxh3_128():
    # XXH3-128's published test vector for the empty input (seed 0)
    assert kernels.window_digest(b"").hex() == "99aa06d3014798d86001c324468d497f"
    assert kernels.window_digest(b"abc") == xxhash.xxh3_128(b"abc").digest()
    assert len(kernels.window_digest(bytes(1000))) == 16
