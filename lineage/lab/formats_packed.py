"""Quantized checkpoints written by our own code in each tool's published layout.

The real quantizers (AutoGPTQ/GPTQModel, AutoAWQ, bitsandbytes, FP8 kernels) need a GPU; here
each format's arrays are written as those tools save them (names, dtypes, shapes, packing
order, `quantization_config`), with round-to-nearest in place of the tools' calibration (GPTQ's
Hessian updates, AWQ's activation-aware scales): the layout a reader sees is the same, the
rounding choices differ. Block weight matrices (2-D tensors inside numbered layers) are
quantized; embeddings, heads, norms and biases are kept in fp16, as the tools do.

`write_packed(params, config, out, method=...)` with method one of `METHODS`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

BLOCK = re.compile(r"\.\d+\.")
NF4 = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
       -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
       0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
       0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0]  # fmt: skip
FP4 = [0.0, 0.0052083333, 0.6666667, 1.0, 0.33333333, 0.5, 0.16666667, 0.25,
       -0.0, -0.0052083333, -0.6666667, -1.0, -0.33333333, -0.5, -0.16666667, -0.25]  # fmt: skip
AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]
AWQ_CONFIG = {"quant_method": "awq", "bits": 4, "zero_point": True, "version": "gemm"}

Tensors = dict[str, torch.Tensor]


def _pack(q: np.ndarray, bits: int, order: list[int] | None = None) -> np.ndarray:
    """[rows, cols] unsigned ints -> int32 [rows, cols * bits / 32], value k of each word at bits
    k * bits (AWQ: value order[k] of each 8 at bits k * 4)."""
    if 32 % bits:  # GPTQ's 3-bit: one little-endian bit stream per row, 32 values in 3 words
        planes = (q.astype(np.uint32)[..., None] >> np.arange(bits, dtype=np.uint32)) & 1
        stream = planes.astype(np.uint8).reshape(q.shape[0], -1)
        return np.packbits(stream, axis=1, bitorder="little").view("<u4").view(np.int32)
    per = 32 // bits
    q = q.astype(np.uint32).reshape(q.shape[0], -1, per)
    if order is not None:
        q = q[:, :, order]
    shifts = np.arange(per, dtype=np.uint32) * bits
    return (q << shifts).sum(axis=2, dtype=np.uint32).view(np.int32)


def _groups(w: torch.Tensor, g_idx: np.ndarray, groups: int, bits: int, sym: bool):
    """Round-to-nearest per (row, group): scales and zeros [groups, out], q [out, in]."""
    maxq = (1 << bits) - 1
    out = w.shape[0]
    scale = np.zeros((groups, out), np.float32)
    zero = np.zeros((groups, out), np.float32)
    wn = w.float().numpy()
    for g in range(groups):
        cols = wn[:, g_idx == g]
        lo, hi = np.minimum(cols.min(1), 0), np.maximum(cols.max(1), 0)
        if sym:
            hi = np.maximum(-lo, hi)
            lo = -hi
        s = np.where(hi > lo, (hi - lo) / maxq, 1.0)
        scale[g] = np.float16(s)  # as stored: the dequantization uses the fp16 scale
        zero[g] = (maxq + 1) // 2 if sym else np.clip(np.round(-lo / scale[g]), 0, maxq)
    q = np.clip(np.round(wn / scale[g_idx].T) + zero[g_idx].T, 0, maxq).astype(np.uint8)
    return q, scale, zero.astype(np.uint8)


def _gptq(name: str, w: torch.Tensor, bits: int, gs: int, act: bool) -> Tensors:
    out, inputs = w.shape
    order = np.arange(inputs)
    if act:  # act-order: columns by decreasing importance (GPTQ uses the Hessian's diagonal)
        order = np.argsort(-(w.float() ** 2).sum(0).numpy(), kind="stable")
    g_idx = np.empty(inputs, np.int32)
    g_idx[order] = np.arange(inputs) // gs
    q, scale, zero = _groups(w, g_idx, -(-inputs // gs), bits, sym=True)
    stem = name.removesuffix(".weight")
    stored_zero = (zero.astype(np.int32) - 1) & ((1 << bits) - 1)  # v1 format: zero - 1
    return {
        stem + ".qweight": _t(_pack(q, bits).T),  # [in * bits / 32, out]
        stem + ".qzeros": _t(_pack(stored_zero, bits)),  # [groups, out * bits / 32]
        stem + ".scales": _t(scale.astype(np.float16)),
        stem + ".g_idx": _t(g_idx),
    }


def _awq(name: str, w: torch.Tensor, gs: int) -> Tensors:
    inputs = w.shape[1]
    g_idx = (np.arange(inputs) // gs).astype(np.int32)
    q, scale, zero = _groups(w, g_idx, -(-inputs // gs), 4, sym=False)
    stem = name.removesuffix(".weight")
    return {
        stem + ".qweight": _t(_pack(q.T, 4, AWQ_ORDER)),  # [in, out / 8]
        stem + ".qzeros": _t(_pack(zero, 4, AWQ_ORDER)),  # [groups, out / 8]
        stem + ".scales": _t(scale.astype(np.float16)),
    }


def _nearest(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Index of the table value nearest to each of `x` (the table in any order)."""
    order = np.argsort(table, kind="stable")
    edges = (table[order][1:] + table[order][:-1]) / 2
    return order[np.searchsorted(edges, x)].astype(np.uint8)


def _dynamic_map() -> np.ndarray:
    """bitsandbytes' signed dynamic 8-bit map (`create_dynamic_map`): the code of quantized
    absmax values under double quantization."""
    data: list[float] = []
    for i in range(7):
        bounds = np.linspace(0.1, 1, 2**i + 1)
        means = (bounds[:-1] + bounds[1:]) / 2
        data += list(10.0 ** (i - 6) * means) + list(-(10.0 ** (i - 6)) * means)
    data += [0.0, 1.0]
    return np.sort(np.array(data + [0.0] * (256 - len(data)), np.float32))


def _bnb4(name: str, w: torch.Tensor, kind: str, nested: bool, bs: int = 64) -> Tensors:
    flat = w.float().numpy().reshape(-1)
    n = flat.size
    padded = np.pad(flat, (0, -n % bs)).reshape(-1, bs)
    absmax = np.abs(padded).max(1).astype(np.float32)
    table = np.array(NF4 if kind == "nf4" else FP4, np.float32)
    codes = _nearest((padded / np.where(absmax > 0, absmax, 1)[:, None]).reshape(-1)[:n], table)
    codes = np.pad(codes, (0, n % 2)).reshape(-1, 2)
    state: dict = {"quant_type": kind, "blocksize": bs, "dtype": str(w.dtype)[6:],
                   "shape": list(w.shape)}  # fmt: skip
    out = {
        name: _t(((codes[:, 0] << 4) | codes[:, 1]).astype(np.uint8)[:, None]),
        name + ".quant_map": _t(table),
    }
    if nested:
        offset = float(absmax.mean())
        centred = absmax - offset
        blocks = np.pad(centred, (0, -centred.size % 256)).reshape(-1, 256)
        nested_absmax = np.abs(blocks).max(1).astype(np.float32)
        dmap = _dynamic_map()
        scaled = blocks / np.where(nested_absmax > 0, nested_absmax, 1)[:, None]
        out[name + ".absmax"] = _t(_nearest(scaled.reshape(-1)[: absmax.size], dmap))
        out[name + ".nested_absmax"] = _t(nested_absmax)
        out[name + ".nested_quant_map"] = _t(dmap)
        state |= {"nested_blocksize": 256, "nested_offset": offset, "nested_dtype": "float32"}
    else:
        out[name + ".absmax"] = _t(absmax)
    blob = np.frombuffer(json.dumps(state).encode(), np.uint8)
    out[f"{name}.quant_state.bitsandbytes__{kind}"] = _t(blob)
    return out


def _bnb8(name: str, w: torch.Tensor) -> Tensors:
    wf = w.float()
    scb = wf.abs().amax(1).clamp_min(1e-12)
    stem = name.removesuffix(".weight")
    return {
        name: torch.round(wf * (127 / scb[:, None])).clamp(-127, 127).to(torch.int8),
        stem + ".SCB": scb,
        stem + ".weight_format": torch.tensor(0, dtype=torch.uint8),
    }


def _fp8(name: str, w: torch.Tensor, block: int) -> Tensors:
    wf = w.float()
    if block:
        out, inputs = wf.shape
        tiles = wf.reshape(out // block, block, inputs // block, block).abs().amax((1, 3))
        scale = (tiles / 448).clamp_min(1e-12)
        full = scale.repeat_interleave(block, 0).repeat_interleave(block, 1)
        return {name: (wf / full).to(torch.float8_e4m3fn), name + "_scale_inv": scale}
    scale = (wf.abs().amax(1, keepdim=True) / 448).clamp_min(1e-12)
    return {name: (wf / scale).to(torch.float8_e4m3fn), name + "_scale": scale}


def _ct(name: str, w: torch.Tensor, gs: int) -> Tensors:
    out, inputs = w.shape
    g_idx = (np.arange(inputs) // gs).astype(np.int32)
    wn = w.float().numpy()
    grouped = wn.reshape(out, -1, gs)
    scale = (np.abs(grouped).max(2) / 7.5).astype(np.float16).astype(np.float32)  # [out, groups]
    scale = np.where(scale > 0, scale, 1)
    q = np.clip(np.round(wn / scale[:, g_idx]), -8, 7).astype(np.int32) + 8
    stem = name.removesuffix(".weight")
    return {
        stem + ".weight_packed": _t(_pack(q, 4)),
        stem + ".weight_scale": _t(scale.astype(np.float16)),
        stem + ".weight_shape": torch.tensor([out, inputs], dtype=torch.int64),
    }


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a, order="C"))  # a copy: torch wants writable memory


def _ct_config(gs: int) -> dict:
    weights = {"num_bits": 4, "type": "int", "symmetric": True, "strategy": "group",
               "group_size": gs, "dynamic": False, "actorder": None}  # fmt: skip
    return {
        "quant_method": "compressed-tensors",
        "format": "pack-quantized",
        "config_groups": {"group_0": {"targets": ["Linear"], "weights": weights,
                                      "input_activations": None, "output_activations": None}},
        "ignore": ["lm_head"],
        "quantization_status": "compressed",
    }  # fmt: skip


def _bnb_config(kind: str, nested: bool) -> dict:
    four = kind != "int8"
    return {
        "quant_method": "bitsandbytes",
        "load_in_4bit": four,
        "load_in_8bit": not four,
        "bnb_4bit_quant_type": kind if four else "fp4",
        "bnb_4bit_use_double_quant": nested,
        "bnb_4bit_compute_dtype": "float16",
        "bnb_4bit_quant_storage": "uint8",
        "llm_int8_threshold": 6.0,
        "llm_int8_skip_modules": None,
        "llm_int8_has_fp16_weight": False,
    }


def _gptq_config(bits: int, gs: int, act: bool) -> dict:
    return {"quant_method": "gptq", "bits": bits, "group_size": gs, "desc_act": act, "sym": True,
            "damp_percent": 0.01, "true_sequential": True, "static_groups": False,
            "checkpoint_format": "gptq", "use_exllama": True}  # fmt: skip


# method -> (quantize one block matrix, its quantization_config); gs = group size
METHODS: dict[str, tuple[Callable[[str, torch.Tensor, int], Tensors], Callable[[int], dict]]] = {
    "gptq": (lambda n, w, gs: _gptq(n, w, 4, gs, False), lambda gs: _gptq_config(4, gs, False)),
    "gptq-act": (lambda n, w, gs: _gptq(n, w, 4, gs, True), lambda gs: _gptq_config(4, gs, True)),
    "gptq-8bit": (
        lambda n, w, gs: _gptq(n, w, 8, gs, False),
        lambda gs: _gptq_config(8, gs, False),
    ),
    "gptq-3bit": (
        lambda n, w, gs: _gptq(n, w, 3, gs, False),
        lambda gs: _gptq_config(3, gs, False),
    ),
    "awq": (_awq, lambda gs: {**AWQ_CONFIG, "group_size": gs}),
    "bnb-nf4": (lambda n, w, gs: _bnb4(n, w, "nf4", False), lambda gs: _bnb_config("nf4", False)),
    "bnb-nf4-dq": (lambda n, w, gs: _bnb4(n, w, "nf4", True), lambda gs: _bnb_config("nf4", True)),
    "bnb-fp4": (lambda n, w, gs: _bnb4(n, w, "fp4", False), lambda gs: _bnb_config("fp4", False)),
    "bnb-int8": (lambda n, w, gs: _bnb8(n, w), lambda gs: _bnb_config("int8", False)),
    "fp8": (
        lambda n, w, gs: _fp8(n, w, 0),
        lambda gs: {"quant_method": "fp8", "activation_scheme": "dynamic"},
    ),
    "fp8-block": (
        lambda n, w, gs: _fp8(n, w, 128),
        lambda gs: {
            "quant_method": "fp8",
            "activation_scheme": "dynamic",
            "weight_block_size": [128, 128],
        },
    ),
    "compressed-tensors": (_ct, _ct_config),
}


def write_packed(
    params: dict[str, torch.Tensor],
    config: dict,
    out: Path,
    *,
    method: str,
    group_size: int = 128,
) -> Path:
    """Write `params` quantized by `method` as `out/model.safetensors` + `out/config.json`
    (`config` plus the `quantization_config` the tool writes).

    Args:
        params: the float model's tensors by name.
        config: its config.json.
        out: the folder to write (created).
        method: one of `METHODS`.
        group_size: GPTQ, AWQ and compressed-tensors groups along the input.

    Raises:
        KeyError: an unknown method.
        ValueError: a block matrix whose width the method cannot group.
    """
    quantize, qconfig = METHODS[method]
    tensors: Tensors = {}
    for name, t in params.items():
        if t.dim() == 2 and t.is_floating_point() and BLOCK.search(name) and name[-6:] == "weight":
            if method == "fp8-block" and (t.shape[0] % 128 or t.shape[1] % 128):
                raise ValueError(f"{name} {tuple(t.shape)}: not whole 128 x 128 blocks")
            if method.startswith(("gptq", "awq", "compressed")) and t.shape[1] % group_size:
                raise ValueError(f"{name} {tuple(t.shape)}: width not a multiple of {group_size}")
            tensors.update(quantize(name, t.to(torch.float16), group_size))
        else:
            tensors[name] = t.to(torch.float16) if t.is_floating_point() else t
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out / "model.safetensors"))
    doc = {**config, "torch_dtype": "float16", "quantization_config": qconfig(group_size)}
    (out / "config.json").write_text(json.dumps(doc, indent=2))
    return out
