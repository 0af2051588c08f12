"""LoRA factors read from PEFT adapter folders written in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from hub.adapters import read_factors
from hub.local import open_local_model

MODULES = ("model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj")


def _factors(seed: int, r: int = 4, inp: int = 32, out: int = 48):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((r, inp)).astype(np.float32),
        rng.standard_normal((out, r)).astype(np.float32),
    )


def write_adapter(
    folder: Path,
    factors: dict[str, tuple[np.ndarray, np.ndarray]],
    *,
    config: dict | None | str = None,
) -> Path:
    """An adapter folder as PEFT's save_pretrained writes it."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for module, (a, b) in factors.items():
        tensors[f"base_model.model.{module}.lora_A.weight"] = a
        tensors[f"base_model.model.{module}.lora_B.weight"] = b
    save_file(tensors, str(folder / "adapter_model.safetensors"), metadata={"format": "pt"})
    if config is None:
        config = {
            "base_model_name_or_path": "org/base",
            "lora_alpha": 16,
            "peft_type": "LORA",
            "r": 4,
            "target_modules": ["q_proj", "v_proj"],
        }
    if isinstance(config, str):
        (folder / "adapter_config.json").write_text(config)
    elif config:
        (folder / "adapter_config.json").write_text(json.dumps(config))
    return folder


def test_factors_and_config_read_from_a_peft_folder(tmp_path):
    made = {m: _factors(i) for i, m in enumerate(MODULES)}
    got = read_factors(open_local_model(write_adapter(tmp_path / "a", made)))
    assert sorted(got.factors) == [f"base_model.model.{m}" for m in MODULES]
    for m in MODULES:
        a, b = got.factors[f"base_model.model.{m}"]
        assert a.dtype == np.float32 and a.shape == (4, 32) and b.shape == (48, 4)
        np.testing.assert_array_equal(a, made[m][0])
        np.testing.assert_array_equal(b, made[m][1])
    assert (got.rank, got.alpha, got.scale) == (4, 16.0, 4.0)
    assert got.base == "org/base" and got.target_modules == ("q_proj", "v_proj")
    assert got.bytes_read == 2 * 4 * (4 * 32 + 48 * 4) and got.left_out == () and got.notes == ()


def test_bf16_factors_decode(tmp_path):
    a, b = _factors(0)
    tensors = {"base_model.model.m.lora_A.weight": a, "base_model.model.m.lora_B.weight": b}
    # bf16 as safetensors stores it: the top half of each float32, written by hand (numpy has
    # no bfloat16)
    header: dict[str, dict] = {}
    body = b""
    for name, t in tensors.items():
        data = (t.view(np.uint32) >> 16).astype("<u2").tobytes()
        header[name] = {"dtype": "BF16", "shape": list(t.shape)}
        header[name]["data_offsets"] = [len(body), len(body) + len(data)]
        body += data
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    folder = tmp_path / "a"
    folder.mkdir()
    (folder / "adapter_model.safetensors").write_bytes(
        len(text).to_bytes(8, "little") + text + body
    )
    got = read_factors(open_local_model(folder))
    fa, fb = got.factors["base_model.model.m"]
    assert fa.dtype == np.float32
    np.testing.assert_allclose(fa, a, rtol=1e-2)
    np.testing.assert_allclose(fb, b, rtol=1e-2)


def test_cap_leaves_out_the_largest_modules_and_says_so(tmp_path):
    made = {
        "layers.0.small": _factors(0, inp=8, out=8),
        "layers.0.mid": _factors(1, inp=32, out=32),
        "layers.0.big": _factors(2, inp=256, out=256),
    }
    folder = write_adapter(tmp_path / "a", made)
    small_mid = 4 * 4 * (8 + 8 + 32 + 32)
    got = read_factors(open_local_model(folder), max_bytes=small_mid)
    assert sorted(got.factors) == [
        "base_model.model.layers.0.mid",
        "base_model.model.layers.0.small",
    ]
    assert got.left_out == ("base_model.model.layers.0.big",)
    assert got.bytes_read == small_mid
    assert any("left out" in n and "byte cap" in n for n in got.notes)
    # a cap below every module reads nothing, largest first in the record
    none = read_factors(open_local_model(folder), max_bytes=10)
    assert none.factors == {} and none.bytes_read == 0
    assert none.left_out[0] == "base_model.model.layers.0.big"


@pytest.mark.parametrize("config", [False, "{not json", "[1, 2]"])
def test_missing_or_broken_config_is_no_config(tmp_path, config):
    folder = write_adapter(tmp_path / "a", {"m": _factors(0)}, config=config)
    got = read_factors(open_local_model(folder))
    assert list(got.factors) == ["base_model.model.m"]
    assert got.rank is None and got.alpha is None and got.scale is None and got.base is None
    assert any("adapter_config.json" in n for n in got.notes)


def test_a_source_offering_read_small_is_asked_for_the_config(tmp_path):
    model = open_local_model(write_adapter(tmp_path / "a", {"m": _factors(0)}, config=False))
    asked = []

    def read_small(path: str) -> bytes:
        asked.append(path)
        return json.dumps({"r": 4, "lora_alpha": 8}).encode()

    model.read_small = read_small  # type: ignore[attr-defined]
    got = read_factors(model)
    assert asked == ["adapter_config.json"] and got.scale == 2.0


def test_unpaired_and_mismatched_factors_are_skipped_with_a_note(tmp_path):
    a, b = _factors(0)
    folder = tmp_path / "a"
    folder.mkdir()
    save_file(
        {
            "base_model.model.ok.lora_A.weight": a,
            "base_model.model.ok.lora_B.weight": b,
            "base_model.model.lonely.lora_A.weight": a,
            "base_model.model.bad.lora_A.weight": a,
            "base_model.model.bad.lora_B.weight": np.zeros((48, 3), np.float32),
        },
        str(folder / "adapter_model.safetensors"),
    )
    got = read_factors(open_local_model(folder))
    assert list(got.factors) == ["base_model.model.ok"]
    assert any(n.startswith("base_model.model.lonely: only lora_A") for n in got.notes)
    assert any(
        n.startswith("base_model.model.bad: lora_B [48, 3] does not multiply") for n in got.notes
    )


def test_a_full_model_has_no_factors(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    save_file(
        {"model.layers.0.q_proj.weight": np.zeros((4, 4), np.float32)},
        str(folder / "model.safetensors"),
    )
    got = read_factors(open_local_model(folder))
    assert got.factors == {} and any("not a LoRA adapter" in n for n in got.notes)
