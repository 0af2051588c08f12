"""Packed safetensors formats (GPTQ, AWQ, bitsandbytes, FP8, compressed-tensors): recognised
from the stored names and config.json, listed under the float names and shapes, and every
window equal to a whole-tensor dequantization written here from each format's published
layout (independently of hub.quant)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from fingerprint.signature import compute_signature
from hub.hubsource import HubClient, open_hub_model
from hub.local import open_local_model
from lineage.lab.formats_packed import METHODS, write_packed
from tests.factory import llama_tensors
from tests.hub_helpers import card, meta

HIDDEN, INTER = 256, 512
CONFIG = {"architectures": ["LlamaForCausalLM"], "hidden_size": HIDDEN, "intermediate_size": INTER}
EXPECTED = {
    "gptq": ("GPTQ_I4", "gptq:4bit-g128"),
    "gptq-act": ("GPTQ_I4", "gptq:4bit-g128-act"),
    "gptq-8bit": ("GPTQ_I8", "gptq:8bit-g128"),
    "gptq-3bit": ("GPTQ_I3", "gptq:3bit-g128"),
    "awq": ("AWQ_I4", "awq:4bit-g128"),
    "bnb-nf4": ("NF4", "bnb:nf4"),
    "bnb-nf4-dq": ("NF4", "bnb:nf4"),
    "bnb-fp4": ("FP4", "bnb:fp4"),
    "bnb-int8": ("BNB_I8", "bnb:int8"),
    "fp8": ("F8_E4M3", "fp8"),
    "fp8-block": ("F8_E4M3", "fp8:block128"),
    "compressed-tensors": ("CT_I4", "compressed-tensors:4bit-g128"),
}


@pytest.fixture(scope="module")
def source():
    return llama_tensors(0, layers=2, hidden=HIDDEN, inter=INTER)


@pytest.fixture(scope="module")
def folders(source, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("quant")
    return {m: write_packed(source, CONFIG, root / m, method=m) for m in METHODS}


# ---- reference dequantization, whole tensors ------------------------------------------------


def _np(t: torch.Tensor) -> np.ndarray:
    return t.float().numpy() if t.is_floating_point() else t.numpy()


def _unpack_rows(words: np.ndarray, bits: int) -> np.ndarray:
    """int32 [a, b] -> [a * 32/bits, b]: value k of word (p, j) becomes row p * 32/bits + k."""
    per = 32 // bits
    w = words.astype(np.uint32)
    vals = np.stack([(w >> (bits * k)) & ((1 << bits) - 1) for k in range(per)], axis=1)
    return vals.reshape(-1, words.shape[1]).astype(np.float32)


def _unpack_cols(words: np.ndarray, bits: int, order=None) -> np.ndarray:
    """int32 [a, b] -> [a, b * 32/bits]: value k of word (i, c) becomes column c * per + order[k]."""
    per = 32 // bits
    order = list(range(per)) if order is None else order
    w = words.astype(np.uint32)
    out = np.zeros((words.shape[0], words.shape[1] * per), np.float32)
    for k in range(per):
        out[:, order[k] :: per] = (w >> (bits * k)) & ((1 << bits) - 1)
    return out


def _unpack3(words: np.ndarray) -> np.ndarray:
    """int32 [a, 3m] -> [a, 32m], GPTQ's 3-bit layout as AutoGPTQ's packing loop writes it:
    each 3 words of a row, joined low word first into one 96-bit integer, hold values
    0..31 of that unit at bits 3k (value 10 and 21 straddle two words)."""
    out = np.zeros((words.shape[0], words.shape[1] // 3 * 32), np.float32)
    w = words.astype(np.uint32)
    for r in range(w.shape[0]):
        for u in range(w.shape[1] // 3):
            unit = int(w[r, 3 * u]) | int(w[r, 3 * u + 1]) << 32 | int(w[r, 3 * u + 2]) << 64
            for k in range(32):
                out[r, 32 * u + k] = (unit >> (3 * k)) & 7
    return out


def reference(folder: Path, name: str) -> np.ndarray:
    """The float tensor `name` [out, in] of a packed folder, dequantized whole."""
    t = load_file(folder / "model.safetensors")
    q = json.loads((folder / "config.json").read_text())["quantization_config"]
    stem = name.removesuffix(".weight")
    method = q["quant_method"]
    if method == "gptq" and q["bits"] == 3:
        qw = _unpack3(_np(t[stem + ".qweight"]).T).T  # [in, out]
        z = _unpack3(_np(t[stem + ".qzeros"])) + 1
        s, g = _np(t[stem + ".scales"]), _np(t[stem + ".g_idx"])
        return ((qw - z[g]) * s[g]).T
    if method == "gptq":
        bits = q["bits"]
        qw = _unpack_rows(_np(t[stem + ".qweight"]), bits)  # [in, out]
        z = _unpack_cols(_np(t[stem + ".qzeros"]), bits) + 1  # v1: zero - 1 stored
        s, g = _np(t[stem + ".scales"]), _np(t[stem + ".g_idx"])
        return ((qw - z[g]) * s[g]).T
    if method == "awq":
        qw = _unpack_cols(_np(t[stem + ".qweight"]), 4, [0, 2, 4, 6, 1, 3, 5, 7])
        z = _unpack_cols(_np(t[stem + ".qzeros"]), 4, [0, 2, 4, 6, 1, 3, 5, 7])
        s = _np(t[stem + ".scales"])
        g = np.arange(qw.shape[0]) // q["group_size"]
        return ((qw - z[g]) * s[g]).T
    if method == "bitsandbytes" and q["load_in_8bit"]:
        return _np(t[name]) * (_np(t[stem + ".SCB"]) / np.float32(127))[:, None]
    if method == "bitsandbytes":
        key = next(k for k in t if k.startswith(name + ".quant_state."))
        state = json.loads(bytes(t[key].numpy()))
        packed = t[name].numpy().reshape(-1)
        codes = np.stack([packed >> 4, packed & 15], 1).reshape(-1)
        n = math.prod(state["shape"])
        absmax = _np(t[name + ".absmax"])
        if "nested_offset" in state:
            code = t[name + ".absmax"].numpy().astype(np.int64)
            nested = _np(t[name + ".nested_absmax"])
            blocks = np.arange(code.size) // state["nested_blocksize"]
            absmax = _np(t[name + ".nested_quant_map"])[code] * nested[blocks]
            absmax = absmax + np.float32(state["nested_offset"])
        values = _np(t[name + ".quant_map"])[codes[:n]] * absmax[np.arange(n) // state["blocksize"]]
        return values.reshape(state["shape"])
    if method == "fp8" and name + "_scale_inv" in t:
        s = _np(t[name + "_scale_inv"])
        w = _np(t[name])
        b = q["weight_block_size"][0]
        return w * np.repeat(np.repeat(s, b, 0), b, 1)[: w.shape[0], : w.shape[1]]
    if method == "fp8":
        return _np(t[name]) * _np(t[name + "_scale"])
    assert method == "compressed-tensors"
    packed = _unpack_cols(_np(t[stem + ".weight_packed"]), 4) - 8
    s = _np(t[stem + ".weight_scale"])
    gs = q["config_groups"]["group_0"]["weights"]["group_size"]
    return packed * np.repeat(s, gs, 1)


# ---- tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", sorted(METHODS))
def test_packed_tensors_are_listed_under_their_float_names(folders, source, method):
    model = open_local_model(folders[method])
    infos = {i.name: i for i in model.tensor_infos()}
    dtype, label = EXPECTED[method]
    assert model.record.extra["quantization"] == label
    assert set(infos) == set(source)  # every stored part consumed, no float name missing
    for name, t in source.items():
        quantized = t.dim() == 2 and ".layers." in name
        assert infos[name].shape == tuple(t.shape) and infos[name].decodable
        assert infos[name].dtype == (dtype if quantized else "F16"), name


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize(
    "name", ["model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.weight"]
)
def test_windows_equal_a_whole_tensor_dequantization(folders, source, method, name):
    model = open_local_model(folders[method])
    ref = reference(folders[method], name)
    out, cols = ref.shape
    assert ref.shape == tuple(source[name].shape)
    for n in (cols // 2, cols, 8 * cols, 33 * cols, out * cols):  # part of row 0 ... all rows
        window = model.read_window(name, n)
        np.testing.assert_allclose(window.values, ref.reshape(-1)[:n], rtol=1e-6, atol=1e-9)
        assert window.raw  # the digest covers the bytes read
    # a 4-bit round trip stays near the float weights (a sanity bound, not the reference)
    err = np.abs(ref - source[name].half().float().numpy()).max() / source[name].abs().max()
    assert err < (0.25 if "bnb-fp4" in method else 0.15)


def test_act_order_permutes_groups(folders):
    t = load_file(folders["gptq-act"] / "model.safetensors")
    g_idx = t["model.layers.0.self_attn.q_proj.g_idx"].numpy()
    assert (np.diff(g_idx) < 0).any()  # not i // 128: the window must read it
    assert np.bincount(g_idx).tolist() == [128, 128]


def test_double_quantization_stores_absmax_as_bytes(folders):
    t = load_file(folders["bnb-nf4-dq"] / "model.safetensors")
    name = "model.layers.0.mlp.up_proj.weight"
    assert t[name + ".absmax"].dtype == torch.uint8 and name + ".nested_absmax" in t


def test_a_window_reads_little_more_than_it_decodes_where_rows_are_contiguous(folders):
    """bnb, FP8 and compressed-tensors read the window's own bytes plus its scales."""
    name, rows = "model.layers.0.mlp.up_proj.weight", 64
    for method in ("bnb-nf4", "bnb-int8", "fp8", "compressed-tensors"):
        model = open_local_model(folders[method])
        before = model.bytes_read
        model.read_window(name, rows * HIDDEN)
        packed = rows * HIDDEN * (0.5 if method in ("bnb-nf4", "compressed-tensors") else 1)
        assert packed <= model.bytes_read - before <= packed * 1.2 + 1200, method


def _zoo(root: Path, folders: dict[str, Path]) -> Path:
    import shutil

    ids = [f"quant/{m}" for m in sorted(folders)]
    for rid in ids:
        shutil.copytree(folders[rid.split("/")[1]], root / "repos" / rid)
        (root / "repos" / rid / "README.md").write_text(card(["org/base"], "quantized"))
    manifest = {"models": [meta(rid, i) for i, rid in enumerate(ids)]}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_hub_signatures_equal_local_ones(hub_env, folders, tmp_path):
    server = hub_env.start(_zoo(tmp_path / "zoo", folders))
    client = HubClient(server.url, token=False)
    for method in sorted(folders):
        rid = f"quant/{method}"
        remote = open_hub_model(rid, client=client, hf_cache=False, whole_file=0)
        local = open_local_model(tmp_path / "zoo" / "repos" / rid, model_id=rid)
        assert remote.tensor_infos() == local.tensor_infos()
        assert remote.record.extra["quantization"] == EXPECTED[method][1]
        a, b = compute_signature(remote, device="cpu"), compute_signature(local, device="cpu")
        assert a.to_bytes() == b.to_bytes(), method


def test_three_bit_values_straddle_words_as_autogptq_packs_them(folders, source):
    """GPTQ 3-bit: 32 inputs in 3 int32 words, values 10 and 21 of each unit across two words.
    The window equals the float weight up to 3-bit rounding (half a step of its group's scale),
    so the layout read is the one written, not a consistent misreading."""
    name = "model.layers.0.self_attn.q_proj.weight"
    model = open_local_model(folders["gptq-3bit"])
    w = source[name].to(torch.float16).float().numpy()
    got = model.read_window(name, w.size).values.reshape(w.shape)
    scales = (
        load_file(folders["gptq-3bit"] / "model.safetensors")[
            name.removesuffix(".weight") + ".scales"
        ]
        .float()
        .numpy()
    )  # [groups, out]
    step = np.repeat(scales.T, 128, axis=1)[:, : w.shape[1]]
    assert np.all(np.abs(got - w) <= step * 0.5 + 1e-3 * np.abs(w) + 1e-6)
    # a straddling value (input 10 of the first unit) is not read as its low bits alone
    assert not np.allclose(got[:, 10], got[:, 10] * 0)
