"""ONNX exports of the real all-MiniLM-L6-v2 (torch's exporter as optimum runs it, and
onnxruntime's dynamic int8 quantization as transformers.js ships it) against the safetensors
checkpoint and an unrelated init of the same config."""

from __future__ import annotations

import os

import pytest

from fingerprint.comparison import compare
from fingerprint.signature import compute_signature
from hub.local import open_local_model

PARENT_SLOTS = 39  # as tests/realweights/test_minilm.py


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        if os.environ.get("LINEAGE_REQUIRE_ONNX") == "1":
            pytest.fail("LINEAGE_REQUIRE_ONNX=1 but onnx/onnxruntime are not installed")
        pytest.skip("onnx and onnxruntime are not installed (pip install -e '.[lab]')")


@pytest.fixture(scope="module")
def onnx_exports(minilm, tmp_path_factory):
    """fp32 and dynamic-int8 exports of the parent, transformers.js layout, with signatures."""
    _require_onnx()
    import json

    from safetensors.torch import load_file

    from lineage.lab.formats_onnx import write_onnx

    tensors = load_file(minilm.parent / "model.safetensors")
    config = json.loads((minilm.parent / "config.json").read_text())
    root = tmp_path_factory.mktemp("minilm-onnx")
    out = {}
    for variant in ("fp32", "int8"):
        folder = write_onnx(tensors, config, root / variant, variant=variant)
        model = open_local_model(folder, model_id=f"onnx-{variant}")
        opened_with = model.bytes_read
        sig = compute_signature(model, device="cpu")
        size = (folder / model.files[0]).stat().st_size
        out[variant] = (model, sig, size, opened_with)
    return out


@pytest.fixture(scope="module")
def parent_and_unrelated(minilm):
    return {
        name: compute_signature(
            open_local_model(getattr(minilm, name), model_id=name), device="cpu"
        )
        for name in ("parent", "unrelated")
    }


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_an_onnx_export_compares_related_with_its_checkpoint(
    onnx_exports, parent_and_unrelated, variant
):
    model, sig, size, _ = onnx_exports[variant]
    assert model.record.extra["quantization"] == f"onnx:{variant}"
    assert len(sig.slots) == PARENT_SLOTS  # every matrix, under its HF name
    result = compare(parent_and_unrelated["parent"], sig)
    assert result.verdict in ("identical", "derived")
    assert result.slots_compared == PARENT_SLOTS and result.log10_p < -100
    if variant == "fp32":  # the same values, read back from the transposed MatMul weights
        assert result.overlap == result.identity == 1.0
    else:
        assert result.overlap > 0.9 and result.identity < 0.05
    # the windows cost a fraction of the file (what the codecs asked for)
    assert sig.bytes_read < size / 2


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_an_onnx_export_is_unrelated_to_an_unrelated_init(
    onnx_exports, parent_and_unrelated, variant
):
    _, sig, _, _ = onnx_exports[variant]
    result = compare(parent_and_unrelated["unrelated"], sig)
    assert result.slots_compared == PARENT_SLOTS
    assert result.verdict == "unrelated" and result.p_value > 0.01
