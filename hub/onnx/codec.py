"""Reading one ONNX weight's window: float initializers, transposed or not, and int8/uint8 ones
dequantized with their scales and zero points (`hub.packed.Codec`).

The float tensor is seen as rows x cols (the first dimension, then the rest). A weight stored
transposed ([in, out] for MatMul) holds each float row as a column: the first `r` rows are the
first `r` elements of each of the `in` stored rows, one short read per stored row (merged by the
source where the holes are small). Scales and zero points are read whole: one value, or one
per row or column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hub.onnx.wire import WireError, packed_varints
from hub.packed import Read

_NUMPY = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "ONNX_U8": "u1", "ONNX_I8": "i1"}
_SIZES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "ONNX_U8": 1, "ONNX_I8": 1}


def element_size(code: str) -> int:
    """Bytes per element of a storage code of this module."""
    return _SIZES[code]


@dataclass(frozen=True, slots=True)
class Values:
    """A small array read whole (scales, zero points).

    Attributes:
        code: its storage code (`F32`, `F16`, `BF16`, `ONNX_U8`, `ONNX_I8`).
        count: its number of elements.
        nbytes: its stored size.
        varint: stored as packed varints (`int32_data`) rather than little-endian elements.
    """

    code: str
    count: int
    nbytes: int
    varint: bool = False

    def parse(self, data: bytes) -> np.ndarray:
        """The values from their stored bytes, as float64 (exact for every code here).

        Raises:
            ValueError: the bytes do not hold `count` values of the code.
        """
        if self.varint:
            try:
                ints = packed_varints(data, self.count)
            except WireError as err:
                raise ValueError(f"its {self.code} values {err}") from None
            if len(ints) != self.count:
                raise ValueError(f"{len(ints)} values where {self.count} were declared")
            if self.code in ("F16", "BF16"):
                bits = np.array(ints, dtype=np.uint64).astype(np.uint32)
                return _floats(bits.astype("<u2").tobytes(), self.code).astype(np.float64)
            arr = np.array([v - (1 << 64) if v >= 1 << 63 else v for v in ints], dtype=np.int64)
            lo, hi = (0, 255) if self.code == "ONNX_U8" else (-128, 127)
            if arr.size and (arr.min() < lo or arr.max() > hi):
                raise ValueError(f"a zero point outside [{lo}, {hi}]")
            return arr.astype(np.float64)
        if len(data) != self.count * _SIZES[self.code]:
            raise ValueError(f"{len(data)} bytes for {self.count} {self.code} values")
        return _floats(data, self.code).astype(np.float64)


def _floats(data: bytes, code: str) -> np.ndarray:
    if code == "BF16":
        return (np.frombuffer(data, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    return np.frombuffer(data, dtype=_NUMPY[code])


@dataclass(frozen=True, slots=True)
class OnnxCodec:
    """How one ONNX weight's elements are stored (satisfies `hub.packed.Codec`).

    Attributes:
        dtype: the storage code (`F32`, `F16`, `BF16`, `F64`, `ONNX_U8`, `ONNX_I8`).
        method: `onnx:fp32`, `onnx:fp16`, `onnx:int8`, `onnx:uint8` ...
        rows, cols: the float tensor seen as rows x cols.
        transposed: stored as cols x rows (a MatMul weight).
        scale: the scales of a quantized weight (None for floats).
        zero_point: its zero points (None: zero).
        axis: the stored axis the scales run along (0 or 1), None for one scale.
    """

    dtype: str
    method: str
    rows: int
    cols: int
    transposed: bool = False
    scale: Values | None = None
    zero_point: Values | None = None
    axis: int | None = None

    def reads(self, n: int) -> Sequence[Read]:
        """The byte ranges of the first `n` elements (row-major, float order), then the scales
        and zero points when quantized.

        Raises:
            ValueError: `n` is more than the tensor holds, or not whole rows of a transposed one.
        """
        size = _SIZES[self.dtype]
        if not 0 <= n <= self.rows * self.cols:
            raise ValueError(f"{n} elements of a {self.rows}x{self.cols} tensor")
        if not self.transposed:
            out = [Read("data", 0, n * size)]
        else:
            if self.cols == 0 or n % self.cols:
                raise ValueError(f"{n} elements are not whole rows of {self.cols}")
            r, stride = n // self.cols, self.rows * size
            out = [Read("data", j * stride, j * stride + r * size) for j in range(self.cols)]
        if self.scale is not None:
            out.append(Read("scale", 0, self.scale.nbytes))
        if self.zero_point is not None:
            out.append(Read("zero_point", 0, self.zero_point.nbytes))
        return out

    def decode(self, n: int, chunks: Sequence[bytes]) -> np.ndarray:
        """The first `n` float32 values from the bytes of `reads(n)`.

        Raises:
            ValueError: short chunks, a non-finite scale, a zero point out of range.
        """
        k = len(chunks) - (self.scale is not None) - (self.zero_point is not None)
        data = b"".join(chunks[:k])
        if len(data) != n * _SIZES[self.dtype]:
            raise ValueError(f"{len(data)} bytes for {n} {self.dtype} elements")
        x = _floats(data, self.dtype)
        r = n // self.cols if self.cols else 0
        # the stored layout of the window: its first n elements, or r columns of every row
        shape = (self.cols, r) if self.transposed else (n,)
        if self.scale is not None:
            x = self._dequantize(x.reshape(shape), chunks[k:], r)
        x = x.astype(np.float32, copy=False).reshape(shape)
        return np.ascontiguousarray(x.T).reshape(-1) if self.transposed else x.reshape(-1)

    def _dequantize(self, q: np.ndarray, extra: Sequence[bytes], r: int) -> np.ndarray:
        assert self.scale is not None
        s = self.scale.parse(extra[0]).astype(np.float32)
        if not np.isfinite(s).all():
            raise ValueError("a scale that is not finite")
        z = (
            self.zero_point.parse(extra[1]).astype(np.int32)
            if self.zero_point is not None
            else np.zeros(s.shape, dtype=np.int32)
        )
        if self.axis is not None:
            if self.transposed:  # q is [cols, r]: stored rows, then stored columns
                index = (slice(None), None) if self.axis == 0 else (None, slice(0, r))
                s, z = s[index], z[index]
            else:  # q is flat over [rows, cols] stored
                i = np.arange(q.size)
                pos = i // self.cols if self.axis == 0 else i % self.cols
                s, z = s[pos], z[pos]
        return (q.astype(np.int32) - z).astype(np.float32) * s
