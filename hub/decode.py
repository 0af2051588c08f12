"""Decoding a window of stored elements to float32 values: the one seam for weight formats.

`DECODERS` maps a dtype code to a function from little-endian bytes to a float32 array. Today
every entry is a plain cast (exactly what torch's `.float()` gives, bit for bit: float64 rounds
to nearest even, the narrower floats widen exactly); a block format (GPTQ, AWQ, bnb, GGUF) adds
one entry that reads its packed rows and scales. A dtype without an entry is not decoded, and
fingerprint skips its tensors.

numpy only: decoding runs in a source's reader threads, beside the read, and needs no torch.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Decoder = Callable[[bytes], np.ndarray]


_QUIET = np.uint32(0x0040_0000)


def _cast(little_endian: str, *, quiet: bool = False) -> Decoder:
    """A plain widening (or float64 -> float32 rounding) cast; `quiet`: set the quiet bit of
    NaNs, as torch does when it widens float16 (numpy keeps signalling NaNs signalling)."""

    def decode(raw: bytes) -> np.ndarray:
        # float64 values beyond float32 become inf, as in torch: not an error here
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.frombuffer(raw, dtype=little_endian).astype(np.float32)
        if quiet:
            nan = np.isnan(out)
            if nan.any():
                out.view(np.uint32)[nan] |= _QUIET
        return out

    return decode


def _bf16(raw: bytes) -> np.ndarray:
    # bfloat16 is the top half of a float32: widening is a shift, NaN payloads included; one
    # pass into one new array (a cast and then a shift made two)
    return np.left_shift(np.frombuffer(raw, dtype="<u2"), 16, dtype=np.uint32).view(np.float32)


def _f8_table(exp_bits: int, bias: int, finite_top: bool) -> np.ndarray:
    """float32 value of every byte of an 8-bit float (1 sign bit, `exp_bits`, the rest mantissa).

    `finite_top`: the top exponent holds ordinary numbers and only all-ones is NaN (E4M3FN);
    else it is IEEE-like, infinities and NaNs (E5M2).
    """
    man_bits = 7 - exp_bits
    code = np.arange(256, dtype=np.uint32)
    sign = np.where(code & 0x80, -1.0, 1.0)
    exp = ((code >> man_bits) & ((1 << exp_bits) - 1)).astype(np.int64)
    man = (code & ((1 << man_bits) - 1)).astype(np.float64)
    top = (1 << exp_bits) - 1
    normal = (1.0 + man / (1 << man_bits)) * np.exp2(exp - bias)
    subnormal = man / (1 << man_bits) * np.exp2(1 - bias)
    value = sign * np.where(exp == 0, subnormal, normal)
    if finite_top:
        nan = (code & 0x7F) == 0x7F
    else:
        value = np.where((exp == top) & (man == 0), sign * np.inf, value)
        nan = (exp == top) & (man != 0)
    table = value.astype(np.float32)
    # As torch widens a NaN: the byte's sign and mantissa, quiet bit set.
    bits = (code & 0x80) << 24 | 0x7FC0_0000 | (code & ((1 << man_bits) - 1)) << (23 - man_bits)
    table.view(np.uint32)[nan] = bits[nan]
    return table


def _lookup(table: np.ndarray) -> Decoder:
    def decode(raw: bytes) -> np.ndarray:
        return table[np.frombuffer(raw, dtype=np.uint8)]

    return decode


# dtype code -> decoder. The codes here are exactly the ones fingerprinted: a code added here
# makes its tensors eligible, which changes the signatures of models that hold them.
DECODERS: dict[str, Decoder] = {
    "F64": _cast("<f8"),
    "F32": _cast("<f4"),
    "F16": _cast("<f2", quiet=True),
    "BF16": _bf16,
    "F8_E4M3": _lookup(_f8_table(4, 7, finite_top=True)),
    "F8_E5M2": _lookup(_f8_table(5, 15, finite_top=False)),
}


def decodable(code: str) -> bool:
    """Whether tensors of this dtype code can be decoded to float values."""
    return code in DECODERS


def decode(raw: bytes, code: str) -> np.ndarray:
    """Little-endian elements of dtype `code` -> a 1-D float32 array, one value per element.

    Raises:
        KeyError: no decoder for `code` (see `decodable`).
    """
    return DECODERS[code](raw)
