"""Files written by the real libraries, read by hub.quant: the layout check our own writer
(lineage.lab.formats_packed) cannot give.

`tests/hub/test_quant_fixtures/` holds tiny checkpoints made once by this module's `generate`
with bitsandbytes 0.50.2 on the CPU (`Linear4bit` / `Linear8bitLt` moved to the CPU quantize,
and their `state_dict()` is what transformers saves) and with compressed-tensors 0.20.1's
`pack_to_int32`, beside the libraries' own dequantization of every layer
(`<name>.expected.safetensors`). Neither library is a dependency: to regenerate, unpack their
wheels into a folder and run
    PYTHONPATH=.:<folder> .venv/bin/python -m tests.hub.test_quant_real_libs
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from hub.local import open_local_model

FIXTURES = Path(__file__).parent / "test_quant_fixtures"
CONFIG = {"architectures": ["LlamaForCausalLM"], "hidden_size": 128, "intermediate_size": 256}
METHODS = {
    "bnb-4bit": "bnb:fp4,bnb:nf4",
    "bnb-int8": "bnb:int8",
    "ct": "compressed-tensors:4bit-g32",
}


@pytest.mark.parametrize("folder", sorted(METHODS))
def test_windows_equal_the_librarys_own_dequantization(folder):
    model = open_local_model(FIXTURES / folder)
    assert model.record.extra["quantization"] == METHODS[folder]
    expected = load_file(FIXTURES / f"{folder}.expected.safetensors")
    infos = {i.name: i for i in model.tensor_infos()}
    for name, ref in expected.items():
        assert infos[name].shape == ref.shape, name
        rows, cols = ref.shape
        ref = ref.astype(np.float32)  # bitsandbytes dequantizes 4-bit to the weight's fp16
        for n in (cols // 2, cols, rows * cols):
            got = model.read_window(name, n).values
            np.testing.assert_allclose(got, ref.reshape(-1)[:n], rtol=1e-3, atol=1e-6)


def generate() -> None:  # pragma: no cover - run by hand with the real libraries
    import importlib.util

    import bitsandbytes as bnb
    import torch
    from bitsandbytes.nn import Int8Params, Linear4bit, Linear8bitLt, Params4bit
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(0)

    def weight(out: int, inputs: int) -> torch.Tensor:
        return (torch.randn(out, inputs, generator=gen) * 0.02).half()

    def write(folder: str, tensors: dict, expected: dict, qconfig: dict) -> None:
        (FIXTURES / folder).mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in tensors.items()},
                  str(FIXTURES / folder / "model.safetensors"))  # fmt: skip
        save_file({k: v.contiguous() for k, v in expected.items()},
                  str(FIXTURES / f"{folder}.expected.safetensors"))  # fmt: skip
        doc = {**CONFIG, "quantization_config": qconfig}
        (FIXTURES / folder / "config.json").write_text(json.dumps(doc, indent=2))

    tensors: dict = {}
    expected: dict = {}
    layers = (("q_proj", 64, 128, "nf4", True, False, 64), ("k_proj", 64, 128, "fp4", False, True, 64),
              ("down_proj", 128, 256, "nf4", False, False, 128))  # fmt: skip
    for proj, out, inputs, kind, dq, bias, bs in layers:
        layer = Linear4bit(inputs, out, bias=bias, compress_statistics=dq, quant_type=kind)
        layer.weight = Params4bit(weight(out, inputs), requires_grad=False, blocksize=bs,
                                  compress_statistics=dq, quant_type=kind)  # fmt: skip
        if bias:
            layer.bias = torch.nn.Parameter(torch.randn(out, generator=gen).half())
        layer = layer.to("cpu")
        prefix = f"model.layers.0.{'mlp' if proj == 'down_proj' else 'self_attn'}.{proj}."
        tensors.update({prefix + k: v for k, v in layer.state_dict().items()})
        w = layer.weight
        expected[prefix + "weight"] = bnb.functional.dequantize_4bit(w.data, w.quant_state)
    write("bnb-4bit", tensors, expected, {"quant_method": "bitsandbytes", "load_in_4bit": True})

    tensors, expected = {}, {}
    for proj, out, inputs in (("q_proj", 64, 128), ("down_proj", 128, 256)):
        lin = Linear8bitLt(inputs, out, bias=False, has_fp16_weights=False)
        lin.weight = Int8Params(weight(out, inputs), requires_grad=False, has_fp16_weights=False)
        lin = lin.to("cpu")
        prefix = f"model.layers.0.{'mlp' if proj == 'down_proj' else 'self_attn'}.{proj}."
        tensors.update({prefix + k: v for k, v in lin.state_dict().items()})
        expected[prefix + "weight"] = bnb.functional.int8_vectorwise_dequant(
            lin.weight.data, lin.weight.SCB
        )
    write("bnb-int8", tensors, expected, {"quant_method": "bitsandbytes", "load_in_8bit": True})

    spec = importlib.util.spec_from_file_location(
        "ct_helpers", Path(bnb.__file__).parents[1] / "compressed_tensors/compressors/pack_quantized/helpers.py"
    )  # fmt: skip
    assert spec is not None and spec.loader is not None
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    tensors, expected = {}, {}
    for proj, out, inputs, sym in (("q_proj", 64, 128, True), ("down_proj", 128, 256, False)):
        w = weight(out, inputs).float().reshape(out, -1, 32)
        lo, hi = w.amin(2), w.amax(2)
        if sym:
            scale, zp = torch.maximum(-lo, hi) / 7.5, torch.zeros_like(lo)
        else:
            scale = (hi - lo) / 15
            zp = torch.clamp(torch.round(-8 - lo / scale), -8, 7)
        scale = scale.half().float()
        q = torch.clamp(torch.round(w / scale[..., None]) + zp[..., None], -8, 7).to(torch.int8)
        prefix = f"model.layers.0.{'mlp' if proj == 'down_proj' else 'self_attn'}.{proj}."
        tensors[prefix + "weight_packed"] = helpers.pack_to_int32(q.reshape(out, inputs), 4)
        tensors[prefix + "weight_scale"] = scale.half()
        tensors[prefix + "weight_shape"] = torch.tensor([out, inputs])
        if not sym:
            tensors[prefix + "weight_zero_point"] = helpers.pack_to_int32(
                zp.to(torch.int8), 4, packed_dim=0
            )
        unpacked = helpers.unpack_from_int32(tensors[prefix + "weight_packed"], 4,
                                             torch.Size([out, inputs]))  # fmt: skip
        deq = (unpacked.float().reshape(out, -1, 32) - zp[..., None]) * scale[..., None]
        expected[prefix + "weight"] = deq.reshape(out, inputs)
    scheme = {
        "num_bits": 4,
        "type": "int",
        "symmetric": True,
        "strategy": "group",
        "group_size": 32,
    }
    write("ct", tensors, expected, {"quant_method": "compressed-tensors", "format": "pack-quantized",
                                    "config_groups": {"group_0": {"weights": scheme,
                                                                  "targets": ["Linear"]}}})  # fmt: skip


if __name__ == "__main__":
    generate()
