"""GGUF files (hub.gguf): names, shapes and windows as the source HF model has them, written the
way llama.cpp's converter and quantizer lay them out (lineage.lab.formats_gguf)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from gguf.quants import dequantize

from fingerprint.comparison import compare
from fingerprint.signature import Signature, compute_signature
from hub.gguf.codec import GGUFCodec
from hub.gguf.header import parse_header
from hub.hubsource import HubClient, open_hub_model
from hub.local import open_local_model
from lineage.lab import zoo_nets as zn
from lineage.lab.formats_gguf import quantize_q4_k, quantize_q6_k, write_gguf
from lineage.lab.zoo_weights import _config
from tests.factory import write_model

LLAMA = zn.Arch("llama", hidden=256, layers=2, vocab=512, intermediate=512, heads=4)
GPT2 = zn.Arch("gpt2", hidden=64, layers=2, vocab=300, intermediate=256, heads=4)
QUANT_TYPES = ("F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q6_K")


def _llama(seed: int = 1, kv_heads: int = 2) -> tuple[dict[str, torch.Tensor], dict]:
    """A llama with grouped-query attention: k_proj has kv_heads heads of 64 rows."""
    params = zn.init_params(LLAMA, zn.generator(seed))
    head = LLAMA.hidden // LLAMA.heads
    g = zn.generator(seed + 100)
    for n in range(LLAMA.layers):
        params[f"model.layers.{n}.self_attn.k_proj.weight"] = (
            torch.randn(kv_heads * head, LLAMA.hidden, generator=g) * 0.02
        )
        params[f"model.layers.{n}.self_attn.v_proj.weight"] = (
            torch.randn(kv_heads * head, LLAMA.hidden, generator=g) * 0.02
        )
    return params, {**_config(LLAMA, "float32"), "num_key_value_heads": kv_heads}


@pytest.fixture(scope="module")
def llama():
    return _llama()


def _stored(path: Path, gguf_name: str) -> tuple[np.ndarray, str]:
    """A tensor's stored bytes (one row per stored row) and type, read with gguf's own reader."""
    t = next(t for t in gguf.GGUFReader(path).tensors if t.name == gguf_name)
    return np.asarray(t.data).reshape(int(np.prod(t.shape[1:])), -1).view(np.uint8), t.tensor_type


def _unpermute(w: np.ndarray, heads: int) -> np.ndarray:
    """The inverse of the converter's rotary permutation, written independently of the codec."""
    d = w.shape[0] // heads
    return w.reshape(heads, d // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def test_the_header_of_a_written_file(tmp_path, llama):
    params, config = llama
    path = write_gguf(params, config, tmp_path / "Tiny-GGUF", qtype="Q4_K_M", name="Tiny")
    assert path.name == "Tiny-Q4_K_M.gguf"
    data = path.read_bytes()
    h = parse_header(path.name, lambda _r, s, e: data[s:e], len(data))
    assert h.version == 3 and h.alignment == 32 and h.data_start % 32 == 0
    assert h.metadata["general.architecture"] == "llama"
    assert h.metadata["llama.block_count"] == 2 and h.metadata["llama.attention.head_count_kv"] == 2
    assert h.metadata["general.file_type"] == gguf.LlamaFileType.MOSTLY_Q4_K_M
    assert {t.name for t in h.tensors} >= {"token_embd.weight", "blk.1.attn_q.weight"}
    q = next(t for t in h.tensors if t.name == "blk.0.attn_q.weight")
    assert q.ne == (256, 256) and q.type_id == gguf.GGMLQuantizationType.Q4_K


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_names_and_shapes_are_the_hf_ones(tmp_path, llama, arch):
    params, config = llama if arch == "llama" else (
        zn.init_params(GPT2, zn.generator(2)), _config(GPT2, "float32"))  # fmt: skip
    write_gguf(params, config, tmp_path / arch, qtype="Q8_0")
    model = open_local_model(tmp_path / arch, model_id=f"org/{arch}")
    infos = {i.name: i for i in model.tensor_infos()}
    # GPT-2's converter also writes its tied head as output.weight
    extra = {"lm_head.weight"} if arch == "gpt2" else set()
    assert set(infos) == set(params) | extra
    assert all(infos[n].shape == tuple(params[n].shape) for n in params)
    assert model.record.extra["quantization"] == "gguf:Q8_0"


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_f32_windows_are_exactly_the_hf_rows(tmp_path, llama, arch):
    """Permuted q/k (grouped-query k too) and transposed Conv1D weights read back in HF order."""
    params, config = llama if arch == "llama" else (
        zn.init_params(GPT2, zn.generator(2)), _config(GPT2, "float32"))  # fmt: skip
    write_gguf(params, config, tmp_path / arch, qtype="F32")
    model = open_local_model(tmp_path / arch, model_id=f"org/{arch}")
    for name, t in params.items():
        if t.dim() != 2:
            continue
        rows, cols = t.shape
        for n in {cols, 8 * cols, rows * cols, max(1, cols // 2)}:
            window = model.read_window(name, n)
            assert np.array_equal(window.values, t.reshape(-1)[:n].numpy()), (name, n)


@pytest.mark.parametrize("qtype", QUANT_TYPES)
def test_quantized_windows_equal_the_reference_dequantization(tmp_path, llama, qtype):
    params, config = llama
    path = write_gguf(params, config, tmp_path, qtype=qtype, name="Tiny")
    model = open_local_model(tmp_path, model_id="org/tiny")
    for name, gname, heads in (
        ("model.layers.0.self_attn.v_proj.weight", "blk.0.attn_v.weight", 0),
        ("model.layers.1.self_attn.q_proj.weight", "blk.1.attn_q.weight", 4),
        ("model.layers.1.self_attn.k_proj.weight", "blk.1.attn_k.weight", 2),
    ):
        raw, ttype = _stored(path, gname)
        assert ttype.name == qtype
        full = dequantize(raw, ttype).reshape(raw.shape[0], -1)
        hf = _unpermute(full, heads) if heads else full
        for rows in (1, 16, hf.shape[0]):
            n = rows * hf.shape[1]
            assert np.array_equal(model.read_window(name, n).values, hf.reshape(-1)[:n])
        assert [i.dtype for i in model.tensor_infos() if i.name == name] == [qtype]
        # and close to the HF tensor: within a few quantization steps of its spread
        error = np.abs(model.read_window(name, 16 * hf.shape[1]).values
                       - params[name][:16].reshape(-1).numpy()).max()  # fmt: skip
        assert error < 0.25 * float(params[name].abs().max())


def test_a_permuted_window_reads_about_twice_its_rows_of_the_first_heads():
    codec = GGUFCodec("Q8_0", "Q8_0", 32, 34, rows=4096, cols=4096, heads=32)
    row = 4096 // 32 * 34
    for r in (1, 8, 32, 64):
        (read,) = codec.reads(r * 4096)
        assert read.start == 0 and read.end <= (2 * r) * row
    (read,) = codec.reads(256 * 4096)  # two whole heads of 128 rows
    assert read.end == 256 * row
    with pytest.raises(ValueError):
        codec.reads(4096 * 4096 + 1)


@pytest.mark.parametrize(("quantize", "qtype"), [(quantize_q4_k, "Q4_K"), (quantize_q6_k, "Q6_K")])
def test_k_quants_round_trip_through_the_reference_dequantizer(quantize, qtype):
    x = np.random.default_rng(0).normal(0, 0.02, (6, 512)).astype(np.float32)
    x[1] = 0.0  # an all-zero super-block: zero scales, no division by zero
    x[2, :256] = np.abs(x[2, :256])  # a super-block with no negative value
    blocks = quantize(x)
    assert blocks.shape == (6, 2 * gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[qtype]][1])
    y = dequantize(blocks, gguf.GGMLQuantizationType[qtype])
    steps = 15 if qtype == "Q4_K" else 63
    assert np.abs(y - x).max() < 2 * np.abs(x).max() / steps
    assert np.all(y[1] == 0.0)


def test_a_local_folder_of_several_ggufs_is_one_model_with_variants(tmp_path, llama):
    params, config = llama
    folder = tmp_path / "org" / "Tiny-GGUF"
    for qtype in ("Q4_K_M", "F16", "Q8_0"):
        write_gguf(params, config, folder, qtype=qtype, name="Tiny")
    (folder / "README.md").write_text("---\nbase_model: org/tiny\n---\n")
    model = open_local_model(folder)
    assert model.model_id == "org/Tiny-GGUF"
    assert {i.dtype for i in model.tensor_infos() if len(i.shape) == 2} == {"F16"}
    assert sorted(model.record.extra["variants"]) == ["Tiny-Q4_K_M.gguf", "Tiny-Q8_0.gguf"]
    assert model.record.extra["quantization"] == "gguf:F16"
    assert model.record.parameter_count == sum(t.numel() for t in params.values())


def test_a_split_file_is_read_as_one_model(tmp_path, llama):
    params, config = llama
    first = write_gguf(params, config, tmp_path, qtype="Q8_0", name="Tiny", split_tensors=7)
    assert first.name == "Tiny-Q8_0-00001-of-00003.gguf"
    model = open_local_model(tmp_path, model_id="org/tiny")
    assert {i.name for i in model.tensor_infos()} == set(params)
    assert model.record.extra["quantization"] == "gguf:Q8_0"
    assert "variants" not in model.record.extra


def test_undecodable_and_unmapped_tensors_are_left_out_with_a_reason(tmp_path):
    path = tmp_path / "odd.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(1)
    w.add_head_count(2)
    w.add_tensor("token_embd.weight", np.ones((64, 64), dtype=np.float32))
    w.add_tensor("blk.0.attn_v.weight", np.ones((64, 64), dtype=np.int32))
    w.add_tensor("blk.0.not_a_tensor.weight", np.ones((64, 64), dtype=np.float32))
    w.add_tensor("blk.0.attn_q.weight", np.ones((63, 64), dtype=np.float32))  # 63: not 2 heads
    for write in (w.write_header_to_file, w.write_kv_data_to_file, w.write_tensors_to_file):
        write()
    w.close()
    model = open_local_model(tmp_path, model_id="org/odd")
    infos = {i.name: i for i in model.tensor_infos()}
    assert set(infos) == {"model.embed_tokens.weight", "model.layers.0.self_attn.v_proj.weight"}
    assert infos["model.layers.0.self_attn.v_proj.weight"].dtype == "I32"
    assert not infos["model.layers.0.self_attn.v_proj.weight"].decodable
    (header,) = model.headers.values()
    left = header.metadata["gguf.left_out"]
    assert "blk.0.not_a_tensor.weight" in left and "blk.0.attn_q.weight" in left
    sig = compute_signature(model, device="cpu")
    assert ("model.layers.0.self_attn.v_proj.weight", "dtype I32 is not floating point") in (
        sig.skipped
    )


def _parent_and_gguf(root: Path, qtype: str) -> tuple[Path, Path]:
    params, config = _llama(seed=3)
    parent = write_model(root / "org" / "tiny", params)
    (parent / "config.json").write_text(json.dumps(config))
    gguf_repo = root / "org" / "Tiny-GGUF"
    write_gguf(params, config, gguf_repo, qtype=qtype, name="Tiny")
    return parent, gguf_repo


def test_a_gguf_is_derived_from_its_source_and_reads_no_more_than_it(tmp_path):
    parent, repo = _parent_and_gguf(tmp_path, "Q4_K_M")
    a = compute_signature(open_local_model(parent), device="cpu")
    b = compute_signature(open_local_model(repo), device="cpu")
    result = compare(a, b)
    assert result.verdict == "derived" and result.slots_compared == len(a.slots)
    assert result.overlap > 0.5
    # 4.5 bits per element, q/k spans of at most twice their rows: under the F32 parent's bytes
    assert b.bytes_read < a.bytes_read <= 64 * 2**18 * 4
    other, _ = _parent_and_gguf(tmp_path / "other", "Q8_0")
    (other / "model.safetensors").unlink()
    write_model(other, _llama(seed=9)[0])
    assert compare(compute_signature(open_local_model(other), device="cpu"), b).verdict == (
        "unrelated"
    )


def test_a_gguf_repo_on_the_hub_reads_as_the_local_folder(hub_env, tmp_path):
    _, repo = _parent_and_gguf(tmp_path / "repos", "Q4_K_M")
    write_gguf(_llama(seed=3)[0], _llama(seed=3)[1], repo, qtype="Q8_0", name="Tiny")
    server = hub_env.start(tmp_path)
    model = open_hub_model("org/Tiny-GGUF", client=HubClient(server.url, token=False),
                           hf_cache=False)  # fmt: skip
    local = open_local_model(repo, model_id="org/Tiny-GGUF")
    assert model.tensor_infos() == local.tensor_infos()
    assert model.record.extra["variants"] == ["Tiny-Q4_K_M.gguf"]
    assert model.record.extra["quantization"] == "gguf:Q8_0"
    hub_sig = compute_signature(model, device="cpu")
    assert hub_sig.to_bytes() == compute_signature(local, device="cpu").to_bytes()
    assert math.isclose(model.record.parameter_count, local.record.parameter_count)


@pytest.mark.parametrize("qtype", ["Q2_K", "Q3_K", "Q5_K", "IQ4_NL", "IQ4_XS", "IQ2_XXS", "TQ2_0"])
def test_types_only_llama_quantize_writes_decode_as_the_reference(tmp_path, qtype):
    """Random blocks of types the writer cannot make: windows are the reference dequantization
    of their rows (the same bytes, so the same values, nan included)."""
    q = gguf.GGMLQuantizationType[qtype]
    block, size = gguf.GGML_QUANT_SIZES[q]
    raw = np.random.default_rng(1).integers(0, 256, (64, 512 // block * size), dtype=np.uint8)
    path = tmp_path / f"t-{qtype}.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(1)
    w.add_head_count(4)
    w.add_tensor("blk.0.attn_v.weight", raw, raw_dtype=q)
    for write in (w.write_header_to_file, w.write_kv_data_to_file, w.write_tensors_to_file):
        write()
    w.close()
    model = open_local_model(tmp_path, model_id="org/t")
    (info,) = model.tensor_infos()
    assert info.dtype == qtype and info.shape == (64, 512) and info.decodable
    with np.errstate(all="ignore"):  # random scales: inf and nan values, as stored
        reference = dequantize(raw, q)
    for rows in (1, 16, 64):
        window = model.read_window(info.name, rows * 512).values
        assert np.array_equal(window, reference[:rows].reshape(-1), equal_nan=True)


def test_a_crawl_fingerprints_a_gguf_repo_beside_its_source(hub_env, tmp_path):
    """The crawler lists and ranges a GGUF repo like a safetensors one; what it stores is the
    local folder's signature, with the quantization and the variants in the record."""
    from lineage.crawler import crawl
    from lineage.store import Store
    from tests.hub_helpers import card, fast_retry

    parent, repo = _parent_and_gguf(tmp_path / "repos", "Q8_0")
    write_gguf(*_llama(seed=3), repo, qtype="Q4_K_M", name="Tiny")
    (repo / "README.md").write_text(card(["org/tiny"], "quantized"))
    server = hub_env.start(tmp_path)
    with Store(tmp_path / "db.sqlite") as store:
        summary = crawl(store, endpoint=server.url, cache_dir=tmp_path / "cache", token=False,
                        retry=fast_retry(), device="cpu", hf_cache=False)  # fmt: skip
        assert summary.fingerprinted == 2 and not summary.skipped_by_reason
        rec = store.require_model("org/Tiny-GGUF")
        assert rec.status == "ok"
        assert rec.extra["quantization"] == "gguf:Q8_0"
        assert rec.extra["variants"] == ["Tiny-Q4_K_M.gguf"]
        assert [(b.id, b.relation) for b in rec.declared_bases] == [("org/tiny", "quantized")]
        local = compute_signature(open_local_model(repo, model_id="org/Tiny-GGUF"), device="cpu")
        assert store.get_signature("org/Tiny-GGUF").blob == local.to_bytes()
        source = Signature.from_bytes(store.get_signature("org/tiny").blob)
        assert compare(source, local).verdict == "derived"
