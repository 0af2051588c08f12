"""The one table of tensor element types: safetensors dtype code -> bits, bytes, kind.

Every layer reads element sizes from here (the header parser, the decoders, the graph's
down-casting cue). A new storage format adds its codes here, and a decoder in `hub.decode`
when its values can be read as floats.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DType:
    """One element type.

    Attributes:
        code: the safetensors dtype code (`F32`, `BF16`, `I8` ...).
        bits: bits per element. F4 and F6_* pack several elements per byte; a tensor of them
            must end on a byte boundary.
        kind: `float`, `int`, `uint`, `bool` or `complex`.
    """

    code: str
    bits: int
    kind: str

    @property
    def size(self) -> int | None:
        """Bytes per element, or None for the sub-byte types."""
        return self.bits // 8 if self.bits % 8 == 0 else None


# Every dtype code safetensors 0.8 accepts.
DTYPES: dict[str, DType] = {
    d.code: d
    for d in (
        DType("BOOL", 8, "bool"),
        DType("F4", 4, "float"),
        DType("F6_E2M3", 6, "float"),
        DType("F6_E3M2", 6, "float"),
        DType("U8", 8, "uint"),
        DType("I8", 8, "int"),
        DType("F8_E5M2", 8, "float"),
        DType("F8_E4M3", 8, "float"),
        DType("F8_E8M0", 8, "float"),
        DType("F8_E4M3FNUZ", 8, "float"),
        DType("F8_E5M2FNUZ", 8, "float"),
        DType("I16", 16, "int"),
        DType("U16", 16, "uint"),
        DType("F16", 16, "float"),
        DType("BF16", 16, "float"),
        DType("I32", 32, "int"),
        DType("U32", 32, "uint"),
        DType("F32", 32, "float"),
        DType("C64", 64, "complex"),
        DType("F64", 64, "float"),
        DType("I64", 64, "int"),
        DType("U64", 64, "uint"),
    )
}

# The same table as plain mappings, for callers that want one number per code.
DTYPE_BITS: dict[str, int] = {code: d.bits for code, d in DTYPES.items()}
DTYPE_SIZES: dict[str, int] = {code: d.size for code, d in DTYPES.items() if d.size is not None}


def bits(code: str) -> int:
    """Bits per element of a dtype code.

    Raises:
        KeyError: not a safetensors dtype code.
    """
    return DTYPES[code].bits


def size(code: str) -> int:
    """Bytes per element of a whole-byte dtype code.

    Raises:
        KeyError: not a safetensors dtype code, or one that packs several elements per byte.
    """
    return DTYPE_SIZES[code]
