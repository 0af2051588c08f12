"""bitsandbytes checkpoints as transformers saves them: 4-bit (nf4, fp4) and 8-bit (LLM.int8).

4-bit, one linear layer `x` (W [out, in] flattened row-major, n = out * in):
    x.weight                       U8  [ceil(n / 2), 1]  element 2k in the high nibble of byte k
    x.weight.absmax                F32 [blocks]          one scale per `blocksize` elements; with
                                   U8  [blocks]          double quantization, itself quantized:
    x.weight.nested_absmax         F32 [ceil(blocks / nested_blocksize)]
    x.weight.nested_quant_map      F32 [256]             absmax = nested_quant_map[code] *
                                                         nested_absmax[b // nested_blocksize]
                                                         + nested_offset
    x.weight.quant_map             F32 [16]              the code's 16 values
    x.weight.quant_state.bitsandbytes__nf4 (or __fp4)    U8 JSON: quant_type, blocksize, dtype,
                                                         shape, nested_blocksize, nested_offset
    W.flat[i] = quant_map[code_i] * absmax[i // blocksize]
The float shape is only in the JSON, which a recogniser does not read: it is taken from the
layer's bias or the config's hidden and intermediate sizes, and every window checks it (and the
blocksize) against the JSON it reads anyway (the nested offset is only there).

8-bit: `x.weight` I8 [out, in] row-major beside `x.SCB` F32 [out] (each row's absmax) and
`x.weight_format` (0: row-major); W[j, i] = weight[j, i] * SCB[j] / 127.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hub import bounded_json
from hub.packed import Packed, Read, Recognized
from hub.quant._common import (
    checked,
    dtype_of,
    floats,
    infer_shape,
    ints,
    part,
    qconfig,
    recognized,
    rows_for,
    shape_of,
)

if TYPE_CHECKING:  # annotations only: hub.tensor_index imports this package
    from hub.tensor_index import Located

STATE = ".quant_state.bitsandbytes__"
STATE_MAX = 1 << 16
BLOCKSIZES = (64, 128, 256, 512, 1024, 2048, 4096, 32)  # bnb's, the default first


@dataclass(frozen=True, slots=True)
class Bnb4Codec:
    """One 4-bit layer; `nested`: absmax is itself quantized (double quantization)."""

    shape: tuple[int, int]
    quant_type: str
    blocksize: int
    nested: bool
    nested_blocks: int  # entries of nested_absmax (read whole: blocks / 256 floats)
    state_bytes: int  # the quant state's JSON, read whole

    @property
    def dtype(self) -> str:
        return self.quant_type.upper()

    @property
    def method(self) -> str:
        return f"bnb:{self.quant_type}"  # double quantization is a detail users do not name

    def reads(self, n: int) -> Sequence[Read]:
        rows_for(n, *self.shape)
        blocks = math.ceil(n / self.blocksize)
        out = [
            Read("weight", 0, math.ceil(n / 2)),
            Read("absmax", 0, blocks * (1 if self.nested else 4)),
            Read("quant_map", 0, 64),
            Read("quant_state", 0, self.state_bytes),
        ]
        if self.nested:
            out += [
                Read("nested_absmax", 0, self.nested_blocks * 4),
                Read("nested_quant_map", 0, 256 * 4),
            ]
        return out

    def decode(self, n: int, chunks: Sequence[bytes]) -> np.ndarray:
        if len(chunks) != (6 if self.nested else 4):
            raise ValueError("wrong number of chunks for a bitsandbytes 4-bit window")
        state = self._state(chunks[3])
        blocks = math.ceil(n / self.blocksize)
        raw = np.frombuffer(checked(chunks[0], math.ceil(n / 2), "weight"), dtype=np.uint8)
        codes = np.stack([raw >> 4, raw & 0x0F], axis=1).reshape(-1)[:n]
        table = floats([chunks[2]], "F32", "quant_map", 16)[0]
        if self.nested:
            nbs = state.get("nested_blocksize")
            offset = state.get("nested_offset")
            if not isinstance(nbs, int) or nbs <= 0 or not isinstance(offset, int | float):
                raise ValueError("the quant state has no usable nested_blocksize/nested_offset")
            if math.ceil(math.ceil(self.shape[0] * self.shape[1] / self.blocksize) / nbs) != (
                self.nested_blocks
            ):
                raise ValueError("nested_absmax does not match the nested blocksize")
            code = ints([chunks[1]], "<u1", "absmax", blocks)[0]
            nmap = floats([chunks[5]], "F32", "nested_quant_map", 256)[0]
            nabs = floats([chunks[4]], "F32", "nested_absmax", self.nested_blocks)[0]
            absmax = nmap[code] * nabs[np.arange(blocks) // nbs] + np.float32(offset)
        else:
            absmax = floats([chunks[1]], "F32", "absmax", blocks)[0]
        return table[codes] * absmax[np.arange(n) // self.blocksize]

    def _state(self, blob: bytes) -> dict:
        try:
            state = bounded_json.loads(blob, max_bytes=STATE_MAX)
        except bounded_json.JsonBoundError as err:
            raise ValueError(f"the quant state is not JSON ({err})") from None
        if not isinstance(state, dict):
            raise ValueError("the quant state is not a JSON object")
        if list(state.get("shape") or []) != list(self.shape):
            raise ValueError(f"the quant state says shape {state.get('shape')}, not {self.shape}")
        if state.get("blocksize") != self.blocksize or state.get("quant_type") != self.quant_type:
            raise ValueError("the quant state's blocksize or quant_type differs from its arrays")
        return state


@dataclass(frozen=True, slots=True)
class Bnb8Codec:
    """One LLM.int8 layer: int8 rows and their absmax."""

    shape: tuple[int, int]
    has_format: bool
    dtype: str = "BNB_I8"
    method: str = "bnb:int8"

    def reads(self, n: int) -> Sequence[Read]:
        rows = rows_for(n, *self.shape)
        out = [Read("weight", 0, n), Read("SCB", 0, rows * 4)]
        return out + [Read("weight_format", 0, 1)] if self.has_format else out

    def decode(self, n: int, chunks: Sequence[bytes]) -> np.ndarray:
        rows = rows_for(n, *self.shape)
        if len(chunks) != 2 + int(self.has_format):
            raise ValueError("wrong number of chunks for a bitsandbytes 8-bit window")
        if self.has_format and chunks[2] != b"\x00":
            raise ValueError("weight_format is not 0 (row-major); a GPU tile layout is not read")
        q = ints([chunks[0]], "<i1", "weight", n)[0].astype(np.float32)
        scb = floats([chunks[1]], "F32", "SCB", rows)[0]
        return q * (scb / np.float32(127))[np.arange(n) // self.shape[1]]


def recognize(tensors: Mapping[str, Located], config: Mapping, model_id: str) -> Recognized | None:
    """bitsandbytes layers: 4-bit where a U8 `x.weight` has its absmax, quant map and quant
    state beside it; 8-bit where an I8 `x.weight` has `x.SCB`."""
    q = qconfig(config)
    if str(q.get("quant_method", "bitsandbytes")).lower() not in ("bitsandbytes", ""):
        return None
    packed: dict[str, Packed] = {}
    consumed: set[str] = set()
    states: dict[str, list[str]] = {}
    for name in tensors:
        if STATE in name:
            states.setdefault(name.split(STATE, 1)[0], []).append(name)
    for name in tensors:
        if not name.endswith(".weight"):
            continue
        found = _four_bit(tensors, name, states.get(name, []), config) or _eight_bit(tensors, name)
        if found is not None:
            packed[name], roles = found
            consumed |= roles
    return recognized(packed, consumed)


def _four_bit(
    tensors: Mapping[str, Located], name: str, states: list[str], config: Mapping
) -> tuple[Packed, set[str]] | None:

    if len(states) != 1 or dtype_of(tensors, name) != "U8":
        return None
    if tensors[states[0]].entry.nbytes > STATE_MAX:
        return None  # a few hundred bytes of JSON; anything bigger is not a quant state
    quant_type = states[0].rsplit("__", 1)[1]
    shape, absmax = shape_of(tensors, name), shape_of(tensors, name + ".absmax")
    qmap = shape_of(tensors, name + ".quant_map")
    if quant_type not in ("nf4", "fp4") or shape is None or absmax is None or qmap != (16,):
        return None
    if len(shape) != 2 or shape[1] != 1 or len(absmax) != 1 or absmax[0] <= 0:
        return None
    nested = dtype_of(tensors, name + ".absmax") == "U8"
    nested_abs = shape_of(tensors, name + ".nested_absmax")
    if nested and (nested_abs is None or len(nested_abs) != 1
                   or shape_of(tensors, name + ".nested_quant_map") != (256,)):  # fmt: skip
        return None
    if not nested and dtype_of(tensors, name + ".absmax") != "F32":
        return None
    numel = _numel(shape[0], absmax[0])
    float_shape = infer_shape(name, numel, tensors, config) if numel else None
    if float_shape is None or numel is None:
        return None
    blocksize = next(b for b in BLOCKSIZES if math.ceil(numel / b) == absmax[0])
    roles = {"weight": name, "absmax": name + ".absmax", "quant_map": name + ".quant_map"}
    roles["quant_state"] = states[0]
    if nested:
        roles["nested_absmax"] = name + ".nested_absmax"
        roles["nested_quant_map"] = name + ".nested_quant_map"
    nested_blocks = nested_abs[0] if nested and nested_abs else 0
    parts = {role: part(tensors[n]) for role, n in roles.items()}
    codec = Bnb4Codec(
        float_shape, quant_type, blocksize, nested, nested_blocks, parts["quant_state"].nbytes
    )
    return Packed(name, float_shape, parts, codec), set(roles.values())


def _numel(packed_bytes: int, blocks: int) -> int | None:
    """Elements of a 4-bit tensor of `packed_bytes` bytes: 2 per byte, one fewer when the last
    nibble is padding; the count must fit whole blocks of one of bnb's block sizes."""
    for numel in (2 * packed_bytes, 2 * packed_bytes - 1):
        if any(math.ceil(numel / b) == blocks for b in BLOCKSIZES):
            return numel
    return None


def _eight_bit(tensors: Mapping[str, Located], name: str) -> tuple[Packed, set[str]] | None:
    stem = name.removesuffix(".weight")
    shape, scb = shape_of(tensors, name), shape_of(tensors, stem + ".SCB")
    if dtype_of(tensors, name) != "I8" or shape is None or len(shape) != 2 or scb != shape[:1]:
        return None
    if dtype_of(tensors, stem + ".SCB") != "F32" or 0 in shape:
        return None
    roles = {"weight": name, "SCB": stem + ".SCB"}
    fmt = stem + ".weight_format"
    if dtype_of(tensors, fmt) == "U8" and shape_of(tensors, fmt) in ((), (1,)):
        roles["weight_format"] = fmt
    codec = Bnb8Codec((shape[0], shape[1]), "weight_format" in roles)
    parts = {role: part(tensors[n]) for role, n in roles.items()}
    return Packed(name, (shape[0], shape[1]), parts, codec), set(roles.values())
