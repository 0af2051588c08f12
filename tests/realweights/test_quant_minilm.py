"""Quantized uploads of the real all-MiniLM-L6-v2 (written in each tool's layout by
lineage.lab.formats_packed) compare with their parent through every block matrix, read only
their windows, and stay unrelated to an unrelated init of the same config."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from fingerprint.comparison import compare
from fingerprint.signature import compute_signature
from hub.local import open_local_model
from lineage.lab.formats_packed import write_packed

PARENT_SLOTS = 39
METHODS = {
    "gptq": "gptq:4bit-g128",
    "gptq-act": "gptq:4bit-g128-act",
    "awq": "awq:4bit-g128",
    "bnb-nf4": "bnb:nf4",
    "bnb-nf4-dq": "bnb:nf4",
    "bnb-int8": "bnb:int8",
    "fp8": "fp8",
    "fp8-block": "fp8:block128",
    "compressed-tensors": "compressed-tensors:4bit-g128",
}
# formats that store the window's rows contiguously read about the window (+ its scales)
CONTIGUOUS = {"bnb-nf4", "bnb-nf4-dq", "bnb-int8", "fp8", "fp8-block", "compressed-tensors"}


@pytest.fixture(scope="module")
def quantized(minilm, tmp_path_factory):
    tensors = load_file(minilm.parent / "model.safetensors")
    config = json.loads((minilm.parent / "config.json").read_text())
    root = tmp_path_factory.mktemp("quantized-minilm")
    return {m: write_packed(tensors, config, root / m, method=m) for m in METHODS}


@pytest.fixture(scope="module")
def reference(minilm):
    def sign(path, name):
        return compute_signature(open_local_model(path, model_id=name), device="cpu")

    return sign(minilm.parent, "parent"), sign(minilm.unrelated, "unrelated")


@pytest.mark.parametrize("method", sorted(METHODS))
def test_a_quantized_upload_is_derived_from_its_parent(quantized, reference, method):
    parent, unrelated = reference
    model = open_local_model(quantized[method], model_id=f"q/{method}", revision="r")
    assert model.record.extra["quantization"] == METHODS[method]
    before = model.bytes_read
    sig = compute_signature(model, device="cpu")
    read = model.bytes_read - before
    size = (quantized[method] / "model.safetensors").stat().st_size
    result = compare(parent, sig)
    assert result.verdict in ("derived", "identical")
    assert result.slots_compared == PARENT_SLOTS  # every packed matrix meets its parent's
    assert result.overlap > 0.8 and result.log10_p < -100
    other = compare(unrelated, sig)
    assert other.verdict == "unrelated" and other.p_value > 0.01 and other.overlap < 0.02
    # bytes: the codec's ranges (sig.bytes_read) and what the disk gave (holes merged)
    assert sig.bytes_read <= read < size / 2
    if method in CONTIGUOUS:
        assert read < sig.bytes_read * 1.05 + 4096
