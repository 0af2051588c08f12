"""hub.onnx against exports made by the real tools (torch's ONNX exporter, onnxruntime's
quantize_dynamic, onnx's external data): spans, names, transposed and quantized windows,
external data, and the same signature from a local folder and from the local Hub."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from hub.errors import MalformedFileError
from hub.local import open_local_model
from hub.onnx import names
from hub.onnx.proto import read_graph
from tests.factory import llama_tensors


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        if os.environ.get("LINEAGE_REQUIRE_ONNX") == "1":
            pytest.fail("LINEAGE_REQUIRE_ONNX=1 but onnx/onnxruntime are not installed")
        pytest.skip(
            "onnx and onnxruntime are not installed (pip install -e '.[lab]')",
            allow_module_level=True,
        )


_require_onnx()

import onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402

from lineage.lab.formats_onnx import write_onnx  # noqa: E402

QUANTIZED = ("uint8", "int8", "uint8-per-channel", "int8-per-channel")


def _llama(seed: int = 0) -> dict:
    return llama_tensors(seed, layers=2, hidden=64, inter=128, vocab=256)


def _gpt2() -> dict:
    from lineage.lab.zoo_nets import Arch, generator, init_params

    return init_params(Arch("gpt2", 64, 2, 256, 256, 4), generator(1))


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, Path]:
    """Exports of one small Llama in every variant, a GPT-2 with external data, and an
    unrelated Llama."""
    root = tmp_path_factory.mktemp("onnx")
    params = _llama()
    out = {
        v: write_onnx(params, {"model_type": "llama"}, root / v, variant=v)
        for v in ("fp32", "fp16", *QUANTIZED)
    }
    out["gpt2-external"] = write_onnx(
        _gpt2(), {"model_type": "gpt2"}, root / "gpt2", variant="fp32", external_data=True
    )
    out["both"] = write_onnx(
        params, {"model_type": "llama"}, root / "both", variant="uint8", with_fp32=True
    )
    return out


def _onnx_file(folder: Path) -> Path:
    return next(p for p in sorted((folder / "onnx").iterdir()) if p.suffix == ".onnx")


def _arrays(path: Path) -> dict[str, np.ndarray]:
    model = onnx.load(str(path))
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


@pytest.mark.parametrize("variant", ["fp32", "uint8", "int8-per-channel", "gpt2-external"])
def test_exports_are_valid_models_that_onnxruntime_runs(exports, variant):
    import onnxruntime as ort

    path = _onnx_file(exports[variant])
    onnx.checker.check_model(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"input_ids": np.arange(8, dtype=np.int64).reshape(1, 8)})
    assert np.isfinite(out).all()


@pytest.mark.parametrize("variant", ["fp32", "fp16", "uint8-per-channel"])
def test_initializer_spans_hold_what_onnx_load_reads(exports, variant):
    path = _onnx_file(exports[variant])
    data = path.read_bytes()
    graph = read_graph(lambda s, e: data[s:e], len(data))
    model = onnx.load(str(path))
    assert [i.name for i in graph.initializers] == [i.name for i in model.graph.initializer]
    assert [n.name for n in graph.nodes] == [n.name for n in model.graph.node]
    for mine, ref in zip(graph.initializers, model.graph.initializer, strict=True):
        assert mine.dims == tuple(ref.dims) and mine.data_type == ref.data_type
        if mine.encoding == "raw":  # raw_data and packed float_data: the little-endian elements
            assert mine.span is not None
            raw = data[mine.span[0] : mine.span[1]]
            arr = numpy_helper.to_array(ref)
            assert raw == arr.astype(arr.dtype.newbyteorder("<")).tobytes()


def test_names_are_hf_names_and_matmul_weights_read_transposed_back(exports):
    params = _llama()
    model = open_local_model(exports["fp32"])
    infos = {i.name: i for i in model.tensor_infos()}
    assert set(infos) == set(params)
    assert model.record.extra["quantization"] == "onnx:fp32"
    for name, t in params.items():
        assert infos[name].shape == tuple(t.shape) and infos[name].dtype == "F32"
        rows = min(t.shape[0], 8)
        n = rows * (t.numel() // t.shape[0])
        window = model.read_window(name, n).values
        assert np.array_equal(window, t.numpy().reshape(-1)[:n]), name
    # a MatMul weight is stored [in, out]: its rows are one short read per stored row
    packed = model._packed["model.layers.0.mlp.down_proj.weight"]
    assert packed.codec.transposed and len(packed.codec.reads(8 * 128)) == 128
    assert not model._packed["model.embed_tokens.weight"].codec.transposed


def test_fp16_export_reads_half_values(exports):
    params = _llama()
    model = open_local_model(exports["fp16"])
    assert model.record.extra["quantization"] == "onnx:fp16"
    for name, t in params.items():
        got = model.read_window(name, t.numel()).values
        assert np.array_equal(got, t.half().float().numpy().reshape(-1)), name


def test_gpt2_conv1d_keeps_its_layout_and_external_data_is_read(exports):
    params = _gpt2()
    folder = exports["gpt2-external"]
    assert (folder / "onnx/model.onnx_data").is_file()
    model = open_local_model(folder)
    assert {i.name for i in model.tensor_infos()} == set(params)
    c_attn = model._packed["transformer.h.0.attn.c_attn.weight"]
    assert c_attn.shape == (64, 192) and not c_attn.codec.transposed
    assert c_attn.parts["data"].file == "onnx/model.onnx_data"
    for name, t in params.items():
        got = model.read_window(name, t.numel()).values
        assert np.array_equal(got, t.numpy().reshape(-1)), name


def _reference(arrays: dict[str, np.ndarray], stored: str) -> np.ndarray:
    """A quantized initializer dequantized by numpy as DequantizeLinear defines it, float32."""
    base = stored.removesuffix("_quantized")
    q = arrays[stored].astype(np.int32)
    scale = arrays[f"{base}_scale"].astype(np.float32)
    zp = arrays.get(f"{base}_zero_point", np.zeros_like(scale)).astype(np.int32)
    if scale.size > 1:  # per channel: along the output axis, the last one of a MatMul weight
        axis = 1 if q.shape[1] == scale.size else 0
        shape = (1, -1) if axis == 1 else (-1, 1)
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return (q - zp).astype(np.float32) * scale


def _stored_names(path: Path) -> dict[str, str]:
    """HF name -> the initializer the reader takes its elements from."""
    data = path.read_bytes()
    return {
        w.name: w.data.name for w in names.weights(read_graph(lambda s, e: data[s:e], len(data)))
    }


@pytest.mark.parametrize("variant", QUANTIZED)
def test_quantized_windows_equal_the_dequantized_reference(exports, variant):
    params = _llama()
    path = _onnx_file(exports[variant])
    arrays, stored = _arrays(path), _stored_names(path)
    model = open_local_model(exports[variant])
    kind = "int8" if variant.startswith("int8") else "uint8"
    assert model.record.extra["quantization"] == f"onnx:{kind}"
    assert {i.name for i in model.tensor_infos()} == set(params)
    quantized = 0
    for name, packed in model._packed.items():
        t = params[name]
        got = model.read_window(name, t.numel()).values.reshape(t.shape)
        if packed.codec.scale is None:  # left in float (norms)
            assert np.array_equal(got, t.numpy()), name
            continue
        quantized += 1
        if name.endswith("_proj.weight"):  # MatMul weights: the type asked for (tables: uint8)
            assert packed.codec.dtype == f"ONNX_{'I' if kind == 'int8' else 'U'}8"
        ref = _reference(arrays, stored[name])
        assert np.array_equal(got, ref.T if packed.codec.transposed else ref), name
        # and close to the float weights (within a quantization step)
        step = float(np.max(arrays[stored[name].removesuffix("_quantized") + "_scale"]))
        assert np.max(np.abs(got - t.numpy())) <= step, name
    assert quantized >= 14  # every matrix of the two layers


def test_per_channel_dequantization_matches_onnxruntime(exports):
    """Each per-channel weight dequantized by onnxruntime's own DequantizeLinear kernel."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    path = _onnx_file(exports["int8-per-channel"])
    arrays, stored = _arrays(path), _stored_names(path)
    model = open_local_model(exports["int8-per-channel"])
    checked = 0
    for name, init in stored.items():
        base = init.removesuffix("_quantized")
        if init == base or arrays[f"{base}_scale"].size == 1:
            continue
        q, s, z = arrays[init], arrays[f"{base}_scale"], arrays[f"{base}_zero_point"]
        node = helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], axis=1)
        graph = helper.make_graph(
            [node],
            "dq",
            [],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(q.shape))],
            [numpy_helper.from_array(a, n) for a, n in ((q, "q"), (s, "s"), (z, "z"))],
        )
        onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        session = ort.InferenceSession(
            onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        (expected,) = session.run(None, {})
        got = model.read_window(name, q.size).values.reshape(q.shape[1], q.shape[0])
        assert np.array_equal(got, expected.T), name
        checked += 1
    assert checked >= 14


def test_the_fp32_export_is_read_when_a_repo_holds_both(exports):
    model = open_local_model(exports["both"])
    assert model.files == ("onnx/model.onnx",)
    assert model.record.extra["quantization"] == "onnx:fp32"
    assert model.record.extra["variants"] == ["onnx/model_quantized.onnx"]


# ---- external data: only a plain file name beside the .onnx, inside its size ---------------


def _with_external(folder: Path, tmp_path: Path, **change: str) -> Path:
    """A copy of an external-data export whose first external tensor says `change`."""
    target = tmp_path / "edited"
    shutil.copytree(folder, target)
    path = target / "onnx/model.onnx"
    model = onnx.load(str(path), load_external_data=False)
    tensor = next(
        t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL
    )
    info = {e.key: e.value for e in tensor.external_data} | change
    del tensor.external_data[:]
    for key, value in info.items():
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    path.write_bytes(model.SerializeToString())
    return target


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"location": "../model.onnx_data"}, "not a plain file name"),
        ({"location": "/etc/passwd"}, "not a plain file name"),
        ({"location": "sub/model.onnx_data"}, "not a plain file name"),
        ({"location": "..\\x"}, "not a plain file name"),
        ({"location": "missing.onnx_data"}, "not a readable file of the repo"),
        ({"offset": "999999999"}, "external span"),
        ({"length": "12"}, "external span"),
        ({"offset": "-4"}, "external span"),
    ],
)
def test_external_data_that_leaves_its_place_is_refused(exports, tmp_path, change, why):
    folder = _with_external(exports["gpt2-external"], tmp_path, **change)
    with pytest.raises(MalformedFileError) as info:
        open_local_model(folder, model_id="org/edited")
    text = str(info.value)
    assert why in text and "onnx/model.onnx of org/edited" in text
    assert info.value.path == "onnx/model.onnx"


# ---- the local Hub: the same signature as the folder --------------------------------------


@pytest.fixture(scope="module")
def onnx_hub_zoo(exports, tmp_path_factory) -> Path:
    from tests.hub_helpers import meta

    root = tmp_path_factory.mktemp("onnx-hub")
    ids = {"js/llama-fp32": "fp32", "js/llama-uint8": "uint8-per-channel"}
    ids["js/gpt2-external"] = "gpt2-external"
    for rid, variant in ids.items():
        shutil.copytree(exports[variant], root / "repos" / rid)
    models = [meta(rid, i, library_name="transformers.js") for i, rid in enumerate(ids)]
    (root / "manifest.json").write_text(json.dumps({"models": models}))
    return root


@pytest.mark.parametrize("repo_id", ["js/llama-fp32", "js/llama-uint8", "js/gpt2-external"])
def test_hub_signature_equals_the_local_folders(hub_env, onnx_hub_zoo, repo_id):
    from fingerprint.signature import compute_signature
    from hub.hubsource import HubClient, open_hub_model
    from tests.hub_helpers import resolve_bytes

    server = hub_env.start(onnx_hub_zoo)
    remote = open_hub_model(repo_id, client=HubClient(server.url, token=False), hf_cache=False)
    local = open_local_model(onnx_hub_zoo / "repos" / repo_id, model_id=repo_id)
    assert remote.tensor_infos() == local.tensor_infos()
    assert remote.record.extra["quantization"] == local.record.extra["quantization"]
    assert remote.record.parameter_count == local.record.parameter_count
    a, b = compute_signature(remote, device="cpu"), compute_signature(local, device="cpu")
    assert a.slots and a.to_bytes() == b.to_bytes()
    # every network byte is counted (descriptions and windows are read by range)
    assert remote.bytes_fetched == resolve_bytes(server) > 0
