"""GPTQ checkpoints (AutoGPTQ, GPTQModel, transformers/optimum): integers packed along the input.

Layout of one linear layer `x` (W is [out, in] as the float model holds it):
    x.qweight  int32 [in * bits / 32, out]   input i of output j in word i // (32/bits), bits
                                             (i % (32/bits)) * bits upwards (low bits first);
                                             3-bit: bits [3i, 3i + 3) of the little-endian
                                             stream of the column's words (32 inputs in 3
                                             words, a value may straddle two)
    x.qzeros   int32 [groups, out * bits / 32]  zero of group g, output j, packed the same way
                                             along the output; the `gptq` (v1) checkpoint format
                                             stores zero - 1, `gptq_v2` the zero itself
    x.scales   F16   [groups, out]
    x.g_idx    int32 [in]                    group of each input; with act-order (desc_act) not
                                             i // group_size
    W[j, i] = scales[g_idx[i], j] * (q[i, j] - zero[g_idx[i], j])

Float row j is column j of every array, so a window's rows are a strided read: one short range
per packed row of qweight (and per group of scales and zeros) that the seam coalesces. The
whole g_idx is read (4 bytes per input) so act-order and odd group maps decode as stored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hub.packed import Packed, Read, Recognized
from hub.quant._common import (
    as_int,
    dtype_of,
    float_size,
    floats,
    ints,
    part,
    qconfig,
    recognized,
    rows_for,
    shape_of,
    strided,
    unpack,
    unpack_stream,
)

if TYPE_CHECKING:  # annotations only: hub.tensor_index imports this package
    from hub.tensor_index import Located

# 3-bit values straddle int32 words (32 values in 3 words): read as one bit stream
BITS = (2, 3, 4, 8)


@dataclass(frozen=True, slots=True)
class GptqCodec:
    """One GPTQ layer: W [out, in] from qweight, scales, qzeros (and g_idx when stored)."""

    out: int
    inputs: int
    bits: int
    groups: int
    group_size: int
    scale_dtype: str
    zero_offset: int  # 1 for the v1 checkpoint format (zero - 1 stored), 0 for gptq_v2
    has_g_idx: bool
    method: str

    @property
    def dtype(self) -> str:
        return f"GPTQ_I{self.bits}"

    @property
    def packed_rows(self) -> int:
        return self.inputs * self.bits // 32

    def _zero_words(self, rows: int) -> int:
        return math.ceil(rows * self.bits / 32)

    def reads(self, n: int) -> Sequence[Read]:
        rows = rows_for(n, self.out, self.inputs)
        ss = float_size(self.scale_dtype) or 2
        zw = self.out * self.bits // 32
        out = strided("qweight", self.out * 4, self.packed_rows, 0, rows * 4)
        out += strided("scales", self.out * ss, self.groups, 0, rows * ss)
        out += strided("qzeros", zw * 4, self.groups, 0, self._zero_words(rows) * 4)
        if self.has_g_idx:
            out.append(Read("g_idx", 0, self.inputs * 4))
        return out

    def decode(self, n: int, chunks: Sequence[bytes]) -> np.ndarray:
        rows = rows_for(n, self.out, self.inputs)
        packed_rows = self.packed_rows
        if len(chunks) != packed_rows + 2 * self.groups + int(self.has_g_idx):
            raise ValueError("wrong number of chunks for a GPTQ window")
        qw = ints(chunks[:packed_rows], "<i4", "qweight", rows)  # [in * bits / 32, rows]
        if 32 % self.bits:  # values straddle words: a bit stream down each column
            q = unpack_stream(qw.T, self.bits, self.inputs).T
        else:
            q = unpack(qw, self.bits).transpose(0, 2, 1).reshape(self.inputs, rows)
        s = floats(
            chunks[packed_rows : packed_rows + self.groups], self.scale_dtype, "scales", rows
        )
        zw = ints(chunks[packed_rows + self.groups :][: self.groups], "<i4", "qzeros",
                  self._zero_words(rows))  # fmt: skip
        if 32 % self.bits:
            z = unpack_stream(zw, self.bits, rows).astype(np.float32)
        else:
            z = unpack(zw, self.bits).reshape(self.groups, -1)[:, :rows].astype(np.float32)
        z += self.zero_offset
        g = _group_index(chunks[-1] if self.has_g_idx else None, self.inputs, self.group_size,
                         self.groups)  # fmt: skip
        w_t = (q.astype(np.float32) - z[g]) * s[g]  # [in, rows]
        return np.ascontiguousarray(w_t.T).reshape(-1)[:n]


def _group_index(raw: bytes | None, inputs: int, group_size: int, groups: int) -> np.ndarray:
    """Each input's group: the stored g_idx, or i // group_size when none is stored."""
    if raw is None:
        return np.minimum(np.arange(inputs) // group_size, groups - 1)
    g = ints([raw], "<i4", "g_idx", inputs)[0]
    if g.min() < 0 or g.max() >= groups:
        raise ValueError(f"g_idx names groups outside 0..{groups - 1}")
    return g


def recognize(tensors: Mapping[str, Located], config: Mapping, model_id: str) -> Recognized | None:
    """GPTQ layers among `tensors`: `x.qweight` + `x.scales` + `x.qzeros` whose shapes agree
    with the GPTQ layout (and with `quantization_config` when it says bits or group size)."""
    q = qconfig(config)
    method_name = str(q.get("quant_method", "gptq")).lower()
    if method_name not in ("gptq", ""):
        return None
    v2 = str(q.get("checkpoint_format", "gptq")).lower() == "gptq_v2"
    act = bool(q.get("desc_act", False))
    packed: dict[str, Packed] = {}
    consumed: set[str] = set()
    for name in tensors:
        if not name.endswith(".qweight"):
            continue
        stem = name.removesuffix(".qweight")
        codec = _codec(tensors, stem, q, zero_offset=0 if v2 else 1, act=act)
        if codec is None:
            continue
        roles = {"qweight": name, "scales": stem + ".scales", "qzeros": stem + ".qzeros"}
        if codec.has_g_idx:
            roles["g_idx"] = stem + ".g_idx"
        parts = {role: part(tensors[n]) for role, n in roles.items()}
        packed[stem + ".weight"] = Packed(stem + ".weight", (codec.out, codec.inputs), parts, codec)
        consumed |= set(roles.values())
    return recognized(packed, consumed)


def _codec(
    tensors: Mapping[str, Located], stem: str, q: Mapping, *, zero_offset: int, act: bool
) -> GptqCodec | None:

    qw, sc, qz = (shape_of(tensors, stem + s) for s in (".qweight", ".scales", ".qzeros"))
    if qw is None or sc is None or qz is None or len(qw) != 2 or len(sc) != 2 or len(qz) != 2:
        return None
    if {dtype_of(tensors, stem + s) for s in (".qweight", ".qzeros")} != {"I32"}:
        return None
    scale_dtype = dtype_of(tensors, stem + ".scales")
    if float_size(scale_dtype) is None or scale_dtype is None:
        return None
    out, groups = qw[1], sc[0]
    if sc[1] != out or qz[0] != groups or out <= 0 or groups <= 0 or qw[0] <= 0:
        return None  # AWQ's layout (qweight [in, out/8]) fails here
    # bits from the config, else from the zeros' width (out * bits / 32 words)
    bits = as_int(q.get("bits"), 0) or (32 * qz[1] // out if (32 * qz[1]) % out == 0 else 0)
    if bits not in BITS or qz[1] * 32 != out * bits or (qw[0] * 32) % bits:
        return None
    inputs = qw[0] * 32 // bits
    g_idx = shape_of(tensors, stem + ".g_idx")
    has_g_idx = (
        g_idx is not None and g_idx == (inputs,) and dtype_of(tensors, stem + ".g_idx") == "I32"
    )
    # group size from the config, else from the scales' rows (-1: one group per output)
    gs = as_int(q.get("group_size"), 0) or (inputs // groups if inputs % groups == 0 else 0)
    group_size = inputs if gs <= 0 else gs
    if math.ceil(inputs / group_size) != groups and not has_g_idx:
        return None
    tag = f"{bits}bit-g{gs}" if gs > 0 else f"{bits}bit"
    if act:
        tag += "-act"
    return GptqCodec(
        out, inputs, bits, groups, group_size, scale_dtype, zero_offset, has_g_idx, f"gptq:{tag}"
    )
