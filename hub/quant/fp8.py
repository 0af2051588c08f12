"""FP8 checkpoints: `x.weight` stored as 8-bit floats beside its scale.

    x.weight              F8_E4M3 (or F8_E5M2) [out, in], row-major
    x.weight_scale        F32 per tensor ([] or [1]), per output row ([out] or [out, 1]), or
    x.weight_scale_inv    per block ([ceil(out / b), ceil(in / b)], DeepSeek and the `fp8`
                          quantization_config's `weight_block_size` [b, b], b = 128)
    W[j, i] = weight[j, i] * scale[...]   (`weight_scale_inv` is multiplied too: the name says
                                           it inverts the quantizer's division)
Rows are contiguous: a window reads its own bytes and the scales of its rows. Without a
recogniser the weight would still read (as unscaled FP8); with one its values are the model's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hub import decode
from hub.packed import Packed, Read, Recognized
from hub.quant._common import (
    checked,
    dtype_of,
    float_size,
    floats,
    part,
    qconfig,
    recognized,
    rows_for,
    shape_of,
)

FP8 = ("F8_E4M3", "F8_E5M2")

if TYPE_CHECKING:  # annotations only: hub.tensor_index imports this package
    from hub.tensor_index import Located
SCALES = (".weight_scale", ".weight_scale_inv")


@dataclass(frozen=True, slots=True)
class Fp8Codec:
    """One FP8 weight; `block` = 0 for a per-tensor or per-row scale, else the block edge."""

    shape: tuple[int, int]
    dtype: str
    scale_dtype: str
    per_row: bool
    block: int

    @property
    def method(self) -> str:
        return f"fp8:block{self.block}" if self.block else "fp8"

    def _scale_count(self, rows: int) -> int:
        if self.block:
            return math.ceil(rows / self.block) * math.ceil(self.shape[1] / self.block)
        return rows if self.per_row else 1

    def reads(self, n: int) -> Sequence[Read]:
        rows = rows_for(n, *self.shape)
        ss = float_size(self.scale_dtype) or 4
        return [Read("weight", 0, n), Read("scale", 0, self._scale_count(rows) * ss)]

    def decode(self, n: int, chunks: Sequence[bytes]) -> np.ndarray:
        rows = rows_for(n, *self.shape)
        if len(chunks) != 2:
            raise ValueError("wrong number of chunks for an FP8 window")
        w = decode.decode(checked(chunks[0], n, "weight"), self.dtype)
        s = floats([chunks[1]], self.scale_dtype, "scale", self._scale_count(rows))[0]
        pos = np.arange(n)
        row, col = pos // self.shape[1], pos % self.shape[1]
        if self.block:
            per_row = math.ceil(self.shape[1] / self.block)
            return w * s[(row // self.block) * per_row + col // self.block]
        return w * (s[row] if self.per_row else s[0])


def recognize(tensors: Mapping[str, Located], config: Mapping, model_id: str) -> Recognized | None:
    """FP8 weights with a scale beside them (`quant_method` fp8, compressed-tensors'
    float-quantized, or none said)."""
    q = qconfig(config)
    if str(q.get("quant_method", "fp8")).lower() not in ("fp8", "compressed-tensors", "fbgemm_fp8"):
        return None
    size = q.get("weight_block_size")
    block = size[0] if isinstance(size, list) and len(size) == 2 and size[0] == size[1] else 0
    packed: dict[str, Packed] = {}
    consumed: set[str] = set()
    for name in tensors:
        if not name.endswith(".weight") or dtype_of(tensors, name) not in FP8:
            continue
        found = _one(tensors, name, block if isinstance(block, int) else 0)
        if found is not None:
            packed[name], scale = found
            consumed |= {name, scale}
    return recognized(packed, consumed)


def _one(tensors: Mapping[str, Located], name: str, block: int) -> tuple[Packed, str] | None:
    shape = shape_of(tensors, name)
    dtype = dtype_of(tensors, name)
    if shape is None or dtype is None or len(shape) != 2 or 0 in shape:
        return None
    stem = name.removesuffix(".weight")
    for suffix in SCALES:
        scale = stem + suffix
        sshape, sdtype = shape_of(tensors, scale), dtype_of(tensors, scale)
        if sshape is None or sdtype is None or float_size(sdtype) is None or sdtype in FP8:
            continue
        out, inputs = shape
        numel = math.prod(sshape)
        b = block or _block_edge(shape, sshape)
        if len(sshape) == 2 and b and sshape == (math.ceil(out / b), math.ceil(inputs / b)):
            codec = Fp8Codec((out, inputs), dtype, sdtype, per_row=False, block=b)
        elif numel == 1:
            codec = Fp8Codec((out, inputs), dtype, sdtype, per_row=False, block=0)
        elif numel == out and sshape in ((out,), (out, 1)):
            codec = Fp8Codec((out, inputs), dtype, sdtype, per_row=True, block=0)
        else:
            return None  # a scale layout not known here: left stored (read unscaled)
        return Packed(name, shape, {"weight": part(tensors[name]), "scale": part(tensors[scale])},
                      codec), scale  # fmt: skip
    return None


def _block_edge(shape: tuple[int, ...], sshape: tuple[int, ...]) -> int:
    """The block edge a 2-D scale implies when the config does not say (128, DeepSeek's)."""
    if len(sshape) != 2 or sshape[1] == 1:
        return 0
    for b in (128, 64, 256, 32):
        if sshape == (math.ceil(shape[0] / b), math.ceil(shape[1] / b)):
            return b
    return 0
