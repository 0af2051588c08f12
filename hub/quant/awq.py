"""AWQ checkpoints (AutoAWQ, GEMM layout): 4-bit integers packed along the output, in AWQ's order.

Layout of one linear layer `x` (W is [out, in]):
    x.qweight  int32 [in, out / 8]       word c of input i holds outputs 8c .. 8c+7, output
                                         8c + k in nibble REVERSE[k] (AutoAWQ packs in the
                                         order [0, 2, 4, 6, 1, 3, 5, 7])
    x.qzeros   int32 [groups, out / 8]   packed the same way; the zero itself (no offset)
    x.scales   F16   [groups, out]
    W[j, i] = scales[i // group, j] * (q[i, j] - zero[i // group, j])

Float row j is a nibble of every input row, so a window reads a short range per input row
(coalesced by the seam). The GEMV layout (`version: gemv`) is left stored.
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
    rows_for,
    shape_of,
    strided,
    unpack,
)

if TYPE_CHECKING:  # annotations only: hub.tensor_index imports this package
    from hub.tensor_index import Located


REVERSE = np.array([0, 4, 1, 5, 2, 6, 3, 7])


@dataclass(frozen=True, slots=True)
class AwqCodec:
    """One AWQ GEMM layer: W [out, in] from qweight, scales and qzeros."""

    out: int
    inputs: int
    groups: int
    group_size: int
    scale_dtype: str
    method: str
    dtype: str = "AWQ_I4"

    def reads(self, n: int) -> Sequence[Read]:
        rows = rows_for(n, self.out, self.inputs)
        words = math.ceil(rows / 8)
        ss = float_size(self.scale_dtype) or 2
        out = strided("qweight", self.out // 8 * 4, self.inputs, 0, words * 4)
        out += strided("scales", self.out * ss, self.groups, 0, rows * ss)
        out += strided("qzeros", self.out // 8 * 4, self.groups, 0, words * 4)
        return out

    def decode(self, n: int, chunks: Sequence[bytes]) -> np.ndarray:
        rows = rows_for(n, self.out, self.inputs)
        words = math.ceil(rows / 8)
        if len(chunks) != self.inputs + 2 * self.groups:
            raise ValueError("wrong number of chunks for an AWQ window")
        q = _columns(ints(chunks[: self.inputs], "<i4", "qweight", words), rows)
        s = floats(
            chunks[self.inputs : self.inputs + self.groups], self.scale_dtype, "scales", rows
        )
        z = _columns(ints(chunks[self.inputs + self.groups :], "<i4", "qzeros", words), rows)
        g = np.minimum(np.arange(self.inputs) // self.group_size, self.groups - 1)
        w_t = (q.astype(np.float32) - z[g].astype(np.float32)) * s[g]  # [in, rows]
        return np.ascontiguousarray(w_t.T).reshape(-1)[:n]


def _columns(words: np.ndarray, rows: int) -> np.ndarray:
    """[k, w] int32 words -> [k, rows] 4-bit values in output order."""
    nibbles = unpack(words, 4)[:, :, REVERSE]  # [k, w, 8]: output 8c + k at nibble REVERSE[k]
    return nibbles.reshape(words.shape[0], -1)[:, :rows]


def recognize(tensors: Mapping[str, Located], config: Mapping, model_id: str) -> Recognized | None:
    """AWQ GEMM layers: `x.qweight` [in, out/8] beside `x.scales` [groups, out]; only when
    `quantization_config` says awq or says nothing (GPTQ shapes differ: its qweight is
    [in/8, out])."""
    q = qconfig(config)
    if str(q.get("quant_method", "awq")).lower() != "awq":
        return None
    if str(q.get("version", "gemm")).lower() != "gemm" or as_int(q.get("bits"), 4) != 4:
        return None
    gs = as_int(q.get("group_size", q.get("q_group_size")), 0)
    packed: dict[str, Packed] = {}
    consumed: set[str] = set()
    for name in tensors:
        if not name.endswith(".qweight"):
            continue
        stem = name.removesuffix(".qweight")
        codec = _codec(tensors, stem, gs)
        if codec is None:
            continue
        roles = {"qweight": name, "scales": stem + ".scales", "qzeros": stem + ".qzeros"}
        parts = {role: part(tensors[n]) for role, n in roles.items()}
        packed[stem + ".weight"] = Packed(stem + ".weight", (codec.out, codec.inputs), parts, codec)
        consumed |= set(roles.values())
    method = f"awq:4bit-g{gs}" if gs > 0 else "awq:4bit"
    return Recognized(packed, frozenset(consumed), method if packed else "")


def _codec(tensors: Mapping[str, Located], stem: str, gs: int) -> AwqCodec | None:
    qw, sc, qz = (shape_of(tensors, stem + s) for s in (".qweight", ".scales", ".qzeros"))
    if qw is None or sc is None or qz is None or len(qw) != 2 or len(sc) != 2 or len(qz) != 2:
        return None
    if {dtype_of(tensors, stem + s) for s in (".qweight", ".qzeros")} != {"I32"}:
        return None
    scale_dtype = dtype_of(tensors, stem + ".scales")
    if scale_dtype is None or float_size(scale_dtype) is None:
        return None
    inputs, out, groups = qw[0], sc[1], sc[0]
    if out <= 0 or inputs <= 0 or groups <= 0 or qw[1] * 8 != out or qz != (groups, qw[1]):
        return None
    group_size = gs if gs > 0 else (inputs // groups if inputs % groups == 0 else 0)
    if group_size <= 0 or math.ceil(inputs / group_size) != groups:
        return None
    return AwqCodec(out, inputs, groups, group_size, scale_dtype, f"awq:4bit-g{group_size}")
