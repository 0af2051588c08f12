"""Odd and hostile packed data: a recogniser never raises (tensors it does not understand stay
stored and are skipped as non-float), and data that cannot be what its format says fails the
window with MalformedFileError naming the file."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from hub.errors import MalformedFileError
from hub.local import open_local_model
from hub.quant import RECOGNIZERS, _load
from hub.safetensors_header import TensorEntry
from hub.tensor_index import Located
from lineage.lab.formats_packed import write_packed
from tests.factory import llama_tensors

CONFIG = {"hidden_size": 128, "intermediate_size": 256}
Q = "model.layers.0.self_attn.q_proj"


def _write(tmp_path: Path, method: str, edit=None, config_edit=None) -> Path:
    """A packed model, then `edit(tensors)` applied to its stored arrays and `config_edit` to
    its quantization_config."""
    folder = write_packed(
        llama_tensors(1, layers=1, hidden=128, inter=256), CONFIG, tmp_path / method, method=method
    )
    if edit is not None:
        t = load_file(folder / "model.safetensors")
        edit(t)
        save_file({k: v.contiguous() for k, v in t.items()}, str(folder / "model.safetensors"))
    if config_edit is not None:
        doc = json.loads((folder / "config.json").read_text())
        config_edit(doc["quantization_config"])
        (folder / "config.json").write_text(json.dumps(doc))
    return folder


def _infos(folder: Path) -> dict:
    return {i.name: i for i in open_local_model(folder).tensor_infos()}


def test_gptq_with_scales_of_the_wrong_shape_is_left_stored(tmp_path):
    folder = _write(tmp_path, "gptq", lambda t: t.update({Q + ".scales": t[Q + ".scales"][:, :64]}))
    infos = _infos(folder)
    assert Q + ".qweight" in infos and not infos[Q + ".qweight"].decodable
    assert Q + ".weight" not in infos
    assert infos["model.layers.0.self_attn.k_proj.weight"].dtype == "GPTQ_I4"  # the rest reads


def test_three_bit_gptq_is_left_stored(tmp_path):
    folder = _write(tmp_path, "gptq", config_edit=lambda q: q.update(bits=3))
    infos = _infos(folder)
    assert not any(i.dtype.startswith("GPTQ") for i in infos.values())


def test_a_g_idx_naming_missing_groups_fails_the_window(tmp_path):
    folder = _write(tmp_path, "gptq-act", lambda t: t[Q + ".g_idx"].fill_(99))
    model = open_local_model(folder)
    with pytest.raises(MalformedFileError, match="g_idx names groups") as err:
        model.read_window(Q + ".weight", 128)
    assert err.value.path == "model.safetensors"  # the file, for the recorded reason


def test_non_finite_scales_fail_the_window(tmp_path):
    folder = _write(tmp_path, "awq", lambda t: t[Q + ".scales"].fill_(float("nan")))
    with pytest.raises(MalformedFileError, match="non-finite"):
        open_local_model(folder).read_window(Q + ".weight", 128)


def test_a_quant_state_that_disagrees_with_its_arrays_fails_the_window(tmp_path):
    def edit(t):
        key = Q + ".weight.quant_state.bitsandbytes__nf4"
        state = json.loads(bytes(t[key].numpy()))
        state["shape"] = [64, 256]
        t[key] = torch.tensor(list(json.dumps(state).encode()), dtype=torch.uint8)

    folder = _write(tmp_path, "bnb-nf4", edit)
    with pytest.raises(MalformedFileError, match="quant state says shape"):
        open_local_model(folder).read_window(Q + ".weight", 128)


def test_a_quant_state_that_is_not_json_fails_the_window(tmp_path):
    def edit(t):
        t[Q + ".weight.quant_state.bitsandbytes__nf4"] = torch.zeros(7, dtype=torch.uint8) + 255

    folder = _write(tmp_path, "bnb-nf4-dq", edit)
    with pytest.raises(MalformedFileError, match="not JSON"):
        open_local_model(folder).read_window(Q + ".weight", 128)


def test_a_deeply_nested_quant_state_fails_the_window_without_recursing(tmp_path):
    def edit(t):
        blob = b"[" * 20000 + b"]" * 20000
        t[Q + ".weight.quant_state.bitsandbytes__nf4"] = torch.frombuffer(
            bytearray(blob), dtype=torch.uint8
        )

    folder = _write(tmp_path, "bnb-nf4", edit)
    with pytest.raises(MalformedFileError, match="not JSON"):
        open_local_model(folder).read_window(Q + ".weight", 128)


def test_compressed_tensors_act_order_is_left_stored(tmp_path):
    folder = _write(tmp_path, "compressed-tensors",
                    lambda t: t.update({Q + ".weight_g_idx": torch.zeros(128, dtype=torch.int32)}))  # fmt: skip
    infos = _infos(folder)
    assert Q + ".weight_packed" in infos and Q + ".weight" not in infos


def test_a_column_layout_int8_weight_fails_the_window(tmp_path):
    folder = _write(tmp_path, "bnb-int8", lambda t: t[Q + ".weight_format"].fill_(2))
    with pytest.raises(MalformedFileError, match="weight_format"):
        open_local_model(folder).read_window(Q + ".weight", 128)


def test_an_fp8_scale_of_unknown_shape_leaves_the_weight_unscaled(tmp_path):
    folder = _write(tmp_path, "fp8", lambda t: t.update({Q + ".weight_scale": torch.ones(3, 5)}))
    infos = _infos(folder)
    assert infos[Q + ".weight"].dtype == "F8_E4M3" and Q + ".weight_scale" in infos
    assert open_local_model(folder).record.extra["quantization"] == "fp8"


def test_a_truncated_file_fails_the_window_not_the_open(tmp_path):
    folder = _write(tmp_path, "compressed-tensors")
    path = folder / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-4096])
    with pytest.raises(MalformedFileError):
        model = open_local_model(folder, revision="r")
        for info in model.tensor_infos():
            if info.decodable:
                model.read_window(info.name, info.shape[-1])


def test_a_window_that_does_not_fit_is_a_value_error(tmp_path):
    model = open_local_model(_write(tmp_path, "gptq"))
    with pytest.raises(ValueError):
        model.read_window(Q + ".weight", 128 * 128 + 1)


DTYPES = ["I32", "F16", "F32", "U8", "I8", "BF16", "F8_E4M3", "I64"]
SUFFIXES = [
    ".qweight", ".qzeros", ".scales", ".g_idx", ".weight", ".weight.absmax", ".weight.quant_map",
    ".weight.nested_absmax", ".weight.nested_quant_map", ".weight.quant_state.bitsandbytes__nf4",
    ".SCB", ".weight_format", ".weight_scale", ".weight_scale_inv", ".weight_packed",
    ".weight_zero_point", ".bias",
]  # fmt: skip
CONFIGS = [
    {},
    {"quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128}},
    {"quantization_config": {"quant_method": "gptq", "bits": "x", "group_size": None}},
    {"quantization_config": {"quant_method": "awq", "group_size": 0}},
    {"quantization_config": {"quant_method": "fp8", "weight_block_size": [0, 0]}},
    {"quantization_config": {"quant_method": "compressed-tensors", "config_groups": {"g": 1}}},
    {"quantization_config": "nonsense", "hidden_size": 0, "intermediate_size": -1},
]


@pytest.mark.parametrize("seed", range(40))
def test_recognisers_never_raise_on_random_companions(seed):
    rng = random.Random(seed)
    tensors = {}
    for _ in range(rng.randint(1, 12)):
        shape = tuple(rng.choice([0, 1, 2, 3, 8, 16, 128, 4096]) for _ in range(rng.randint(0, 3)))
        name = "model.layers.0.mlp.proj" + rng.choice(SUFFIXES)
        tensors[name] = Located(
            "model.safetensors", TensorEntry(name, rng.choice(DTYPES), shape, 0, 64)
        )
    for _name, target in RECOGNIZERS:
        found = _load(target)(tensors, rng.choice(CONFIGS), "org/odd")
        for packed in (found.packed if found else {}).values():
            packed.codec.reads(packed.shape[-1])  # plans a one-row window without raising
