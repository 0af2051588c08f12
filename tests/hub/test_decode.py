"""hub.decode and hub.dtypes: every decoder equals torch's `.float()` bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hub import decode, dtypes


def _torch_float_bits(raw: bytes, dtype: torch.dtype) -> np.ndarray:
    return torch.frombuffer(bytearray(raw), dtype=dtype).float().view(torch.int32).numpy()


def _every_bit_pattern(width: int) -> bytes:
    """All 2^8 or 2^16 patterns; for wider types, edge cases plus random patterns."""
    if width == 1:
        return bytes(range(256))
    if width == 2:
        return np.arange(1 << 16, dtype="<u2").tobytes()
    rng = np.random.default_rng(7)
    kind = "<u4" if width == 4 else "<u8"
    random = rng.integers(0, np.iinfo(kind).max, 50_000, dtype=kind, endpoint=True)
    return random.tobytes()


def _f64_edges() -> bytes:
    values = [
        0.0,
        -0.0,
        1.0000000596046448,  # exactly half-way between two float32: rounds to even
        1.0000001788139343,  # half-way, rounds up to even
        3.4028235677973366e38,  # beyond float32's max after rounding: inf
        -1e300,
        1e-46,  # below float32's smallest subnormal: rounds to 0
        7e-46,  # rounds to the smallest subnormal
        np.inf,
        -np.inf,
        np.nan,
    ]
    payload_nans = np.array([0x7FF0000000000123, 0xFFF8000000ABC000], dtype="<u8")
    return np.array(values, dtype="<f8").tobytes() + payload_nans.tobytes()


CASES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
}


@pytest.mark.parametrize("code", sorted(CASES))
def test_each_decoder_equals_torch_bit_for_bit(code):
    raw = _every_bit_pattern(dtypes.size(code))
    if code == "F64":
        raw += _f64_edges()
    got = decode.decode(raw, code)
    assert got.dtype == np.float32 and got.size == len(raw) // dtypes.size(code)
    want = _torch_float_bits(raw, CASES[code])
    mismatched = np.nonzero(got.view(np.int32) != want)[0]
    assert mismatched.size == 0, [hex(i) for i in mismatched[:5]]


def test_the_decoders_are_exactly_the_fingerprinted_dtypes():
    # a code added here makes its tensors eligible and changes stored signatures
    assert set(decode.DECODERS) == set(CASES)
    assert all(decode.decodable(c) for c in CASES)
    assert not decode.decodable("I8") and not decode.decodable("F8_E8M0")
    with pytest.raises(KeyError):
        decode.decode(b"\0", "I8")


def test_decoded_values_are_writable_copies():
    raw = np.ones(4, np.float32).tobytes()
    out = decode.decode(raw, "F32")
    out[0] = 2.0  # never a view of the source's bytes
    assert raw == np.ones(4, np.float32).tobytes()


def test_dtype_table():
    assert dtypes.bits("BF16") == 16 and dtypes.bits("F4") == 4 and dtypes.bits("C64") == 64
    assert dtypes.size("F8_E4M3") == 1 and dtypes.size("U64") == 8
    assert dtypes.DTYPES["F6_E2M3"].size is None
    with pytest.raises(KeyError):
        dtypes.size("F4")  # packs two elements per byte
    with pytest.raises(KeyError):
        dtypes.bits("Q4_K")
    assert {d.kind for d in dtypes.DTYPES.values()} == {"bool", "float", "int", "uint", "complex"}
    # every decodable code is a float of whole bytes
    assert all(dtypes.DTYPES[c].kind == "float" and dtypes.DTYPES[c].size for c in CASES)
