"""GGUF files of the real all-MiniLM-L6-v2 (BERT), laid out as llama.cpp's converter and
quantizer make them, linked to their source by their weights alone."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from fingerprint.comparison import compare
from fingerprint.signature import compute_signature
from hub.local import open_local_model
from lineage.lab.formats_gguf import write_gguf

# The converter drops BERT's pooler: the parent's other 38 matrices meet theirs.
GGUF_SLOTS = 38
QTYPES = ("Q8_0", "Q4_0", "Q4_K_M")


@pytest.fixture(scope="module")
def ggufs(minilm, tmp_path_factory):
    """Each quantization of the parent as its own model folder, opened and fingerprinted."""
    tensors = load_file(minilm.parent / "model.safetensors")
    config = json.loads((minilm.parent / "config.json").read_text())
    root = tmp_path_factory.mktemp("minilm-gguf")
    out = {}
    for qtype in QTYPES:
        path = write_gguf(tensors, config, root / qtype, qtype=qtype, name="all-MiniLM-L6-v2")
        model = open_local_model(path.parent, model_id=f"org/minilm-{qtype}")
        out[qtype] = (path, model, compute_signature(model, device="cpu"))
    return out


@pytest.fixture(scope="module")
def parent_signature(minilm):
    return compute_signature(open_local_model(minilm.parent, model_id="parent"), device="cpu")


@pytest.fixture(scope="module")
def unrelated_signature(minilm):
    return compute_signature(open_local_model(minilm.unrelated, model_id="u"), device="cpu")


@pytest.mark.parametrize("qtype", QTYPES)
def test_a_gguf_of_the_real_minilm_is_derived_from_it(ggufs, parent_signature, qtype):
    _, model, sig = ggufs[qtype]
    assert model.record.extra["quantization"] == f"gguf:{qtype}"
    assert len(sig.slots) == GGUF_SLOTS
    result = compare(parent_signature, sig)
    assert result.verdict == "derived"
    assert result.slots_compared == GGUF_SLOTS
    # measured: Q8_0 0.996, Q4_K_M 0.977, Q4_0 0.95
    assert result.overlap > 0.85 and result.log10_p < -100


@pytest.mark.parametrize("qtype", QTYPES)
def test_an_unrelated_init_is_unrelated_to_the_gguf(unrelated_signature, ggufs, qtype):
    result = compare(unrelated_signature, ggufs[qtype][2])
    assert result.slots_compared == GGUF_SLOTS
    assert result.verdict == "unrelated" and result.p_value > 0.01


def test_a_gguf_reads_its_header_and_windows_not_its_file(ggufs, parent_signature):
    """Bytes read to fingerprint a GGUF: its header (the 30522-token vocabulary included) and
    the windows at 4.5 to 8.5 bits per element, well under the file and the F32 parent."""
    for qtype in QTYPES:
        path, model, sig = ggufs[qtype]
        header = next(iter(model.headers.values()))
        assert sig.bytes_read < parent_signature.bytes_read / 3
        assert model.bytes_read < header.data_start + 2 * sig.bytes_read
        assert model.bytes_read < path.stat().st_size / 2
