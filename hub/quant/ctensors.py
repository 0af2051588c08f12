"""compressed-tensors `pack-quantized` checkpoints (llm-compressor, vLLM).

One linear layer `x` (W [out, in]), integers of `num_bits` bits per `config_groups` scheme:
    x.weight_packed      int32 [out, ceil(in * bits / 32)]  row-major; value k of a word at
                                                            bits k * num_bits (low first),
                                                            stored as q + 2^(bits-1) (unsigned)
    x.weight_scale       F16/BF16/F32 [out, groups] (group), [out, 1] (channel), [1] (tensor)
    x.weight_zero_point  optional (asymmetric): [out, groups] integers, or packed along the
                         output as int32 [ceil(out * bits / 32), groups]
    x.weight_shape       int64 [2]: [out, in]
    W[j, i] = (q[j, i] - zero[j, i // group]) * scale[j, i // group]
Rows are contiguous: a window reads its rows of each array. `weight_shape` is not read: the
input width is the packed width times 32 / bits, checked against the scales' groups.
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
    unpack,
)

if TYPE_CHECKING:  # annotations only: hub.tensor_index imports this package
    from hub.tensor_index import Located

INT_DTYPES = {"I8": "<i1", "I32": "<i4", "U8": "<u1", "I16": "<i2", "I64": "<i8"}


@dataclass(frozen=True, slots=True)
class CtCodec:
    """One pack-quantized layer; `zero`: "" (symmetric), "plain" or "packed"."""

    shape: tuple[int, int]
    bits: int
    groups: int
    scale_dtype: str
    zero: str
    zero_dtype: str
    method: str

    @property
    def dtype(self) -> str:
        return f"CT_I{self.bits}"

    @property
    def words(self) -> int:
        return math.ceil(self.shape[1] * self.bits / 32)

    def _zero_rows(self, rows: int) -> int:
        return math.ceil(rows * self.bits / 32) if self.zero == "packed" else rows

    def reads(self, n: int) -> Sequence[Read]:
        rows = rows_for(n, *self.shape)
        ss = float_size(self.scale_dtype) or 2
        scale_rows = rows if self.groups else 1
        out = [
            Read("weight_packed", 0, rows * self.words * 4),
            Read("weight_scale", 0, scale_rows * max(self.groups, 1) * ss),
        ]
        if self.zero:
            size = 4 if self.zero == "packed" else np.dtype(INT_DTYPES[self.zero_dtype]).itemsize
            out.append(Read("weight_zero_point", 0, self._zero_rows(rows) * self.groups * size))
        return out

    def decode(self, n: int, chunks: Sequence[bytes]) -> np.ndarray:
        rows = rows_for(n, *self.shape)
        if len(chunks) != 2 + int(bool(self.zero)):
            raise ValueError("wrong number of chunks for a compressed-tensors window")
        out_dim, inputs = self.shape
        words = ints([chunks[0]], "<i4", "weight_packed", rows * self.words)[0]
        offset = 1 << (self.bits - 1)
        q = unpack(words.reshape(rows, self.words), self.bits).reshape(rows, -1)[:, :inputs]
        q = q.astype(np.float32) - offset
        groups = max(self.groups, 1)
        s = floats(
            [chunks[1]], self.scale_dtype, "weight_scale", (rows if self.groups else 1) * groups
        )
        s = s.reshape(-1, groups) if self.groups else np.full((rows, 1), s[0, 0], np.float32)
        col_group = np.minimum(np.arange(inputs) * groups // inputs, groups - 1)
        if self.zero == "packed":
            zw = ints([chunks[2]], "<i4", "weight_zero_point", self._zero_rows(rows) * groups)[0]
            z = unpack(zw.reshape(-1, groups).T, self.bits).reshape(groups, -1)[:, :rows].T
            zf = z.astype(np.float32) - offset
        elif self.zero:
            zi = ints([chunks[2]], INT_DTYPES[self.zero_dtype], "weight_zero_point", rows * groups)
            zf = zi[0].reshape(rows, groups).astype(np.float32)
        else:
            zf = np.zeros((rows, groups), np.float32)
        w = (q - zf[:, col_group]) * s[:, col_group]
        return w.reshape(-1)[:n]


def _scheme(q: Mapping) -> tuple[int, int, str] | None:
    """(bits, group size or 0, strategy) of the first int weight scheme of `config_groups`."""
    groups = q.get("config_groups")
    if not isinstance(groups, Mapping):
        return None
    for scheme in groups.values():
        w = scheme.get("weights") if isinstance(scheme, Mapping) else None
        if isinstance(w, Mapping) and str(w.get("type", "int")) == "int":
            return (
                as_int(w.get("num_bits"), 0),
                as_int(w.get("group_size"), 0),
                str(w.get("strategy", "")),
            )
    return None


def recognize(tensors: Mapping[str, Located], config: Mapping, model_id: str) -> Recognized | None:
    """Layers stored as `x.weight_packed` + `x.weight_scale` (bits from `config_groups`, else
    inferred when the scales' groups allow only one width)."""
    q = qconfig(config)
    if q and str(q.get("quant_method", "")).lower() != "compressed-tensors":
        return None
    if q.get("format") not in (None, "pack-quantized", "mixed-precision"):
        return None
    scheme = _scheme(q)
    packed: dict[str, Packed] = {}
    consumed: set[str] = set()
    for name in tensors:
        if not name.endswith(".weight_packed"):
            continue
        stem = name.removesuffix(".weight_packed")
        codec = _codec(tensors, stem, scheme)
        if codec is None:
            continue
        roles = {"weight_packed": name, "weight_scale": stem + ".weight_scale"}
        if codec.zero:
            roles["weight_zero_point"] = stem + ".weight_zero_point"
        parts = {role: part(tensors[n]) for role, n in roles.items()}
        packed[stem + ".weight"] = Packed(stem + ".weight", codec.shape, parts, codec)
        consumed |= set(roles.values()) | ({stem + ".weight_shape"} & set(tensors))
    return recognized(packed, consumed)


def _codec(
    tensors: Mapping[str, Located], stem: str, scheme: tuple[int, int, str] | None
) -> CtCodec | None:

    wp, sc = shape_of(tensors, stem + ".weight_packed"), shape_of(tensors, stem + ".weight_scale")
    sdtype = dtype_of(tensors, stem + ".weight_scale")
    if wp is None or sc is None or sdtype is None or float_size(sdtype) is None or len(wp) != 2:
        return None
    if dtype_of(tensors, stem + ".weight_packed") != "I32" or 0 in wp:
        return None
    if stem + ".weight_g_idx" in tensors:
        return None  # act-order groups: not read here, so left stored rather than misread
    out = wp[0]
    per_tensor = math.prod(sc) == 1 and len(sc) <= 1
    groups = 0 if per_tensor else (sc[1] if len(sc) == 2 and sc[0] == out else -1)
    if groups < 0:
        return None
    bits, gs, strategy = scheme or (0, 0, "")
    if bits not in (2, 4, 8):
        bits = 4 if not scheme else 0  # the common case when no config says
    if bits not in (2, 4, 8):
        return None
    inputs = wp[1] * 32 // bits
    if groups and gs > 0 and math.ceil(inputs / gs) != groups:
        return None
    if groups and inputs % groups:
        return None
    zero, zdtype = "", ""
    zshape, zd = (
        shape_of(tensors, stem + ".weight_zero_point"),
        dtype_of(tensors, stem + ".weight_zero_point"),
    )
    if zshape is not None and zd in INT_DTYPES:
        g = max(groups, 1)
        if zshape == (out, g) or (zshape == (out,) and g == 1):
            zero, zdtype = "plain", zd
        elif zd == "I32" and zshape == (math.ceil(out * bits / 32), g):
            zero, zdtype = "packed", zd
        else:
            return None
    # the config's group size names the method (a layer no wider than one group holds one)
    size = gs if groups and gs > 0 else (inputs // groups if groups > 1 else 0)
    tag = f"{bits}bit-g{size}" if size else f"{bits}bit"
    return CtCodec((out, inputs), bits, groups, sdtype, zero, zdtype, f"compressed-tensors:{tag}")
