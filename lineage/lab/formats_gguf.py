"""GGUF files of Hugging Face-named float models, laid out as llama.cpp makes them.

`write_gguf` does what `convert_hf_to_gguf.py` and then `llama-quantize` do to a checkpoint:
GGUF tensor names (from the `gguf` package's own name map), dimensions reversed, llama's q/k
rows permuted for rotary attention, GPT-2's Conv1D weights transposed and its tied head written
as `output.weight`, BERT's pooler and `bert.` prefix dropped; norms, biases, position and
token-type embeddings kept F32; the head in Q6_K and, for Q4_K_M, `attn_v` and `ffn_down` of
the layers llama-quantize gives more bits to in Q6_K; a K-quant on rows that are not whole
256-element blocks falls back as llama-quantize does (Q4_K -> Q5_0, Q6_K -> Q8_0). Metadata:
`general.architecture`, `general.name`, `general.file_type`, block count, head counts, sizes,
norm epsilon, a tokenizer of the model's vocabulary size.

Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, BF16 and F16 blocks come from `gguf.quants.quantize`; the package
cannot quantize the K-quants, so Q4_K and Q6_K are quantized here following ggml's block
layout (block_q4_K, block_q6_K), with plain max-based scales rather than llama.cpp's search;
`gguf.quants.dequantize` reads them back (tests/hub/test_gguf.py checks the round trip).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:  # imported when a file is written
    import gguf

QK_K = 256
# llama-quantize's fallback for rows that are not whole super-blocks
_FALLBACK = {"Q4_K": "Q5_0", "Q6_K": "Q8_0"}
_MIXES = {"Q4_K_M": "Q4_K", "Q4_K_S": "Q4_K"}  # file type -> type of most tensors
_ARCHS = {"llama": "llama", "mistral": "llama", "gpt2": "gpt2", "bert": "bert"}


def write_gguf(
    params: dict[str, torch.Tensor],
    config: dict,
    out: Path,
    *,
    qtype: str,
    name: str | None = None,
    split_tensors: int = 0,
) -> Path:
    """Write `params` (HF names, float tensors) as `out/<name>-<qtype>.gguf`.

    Args:
        params: the model's tensors under their Hugging Face names.
        config: its config.json (model_type llama/mistral, gpt2 or bert).
        out: the folder to write into (created).
        qtype: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q6_K, Q4_K_M or Q4_K_S.
        name: the model name in the file name and `general.name` (default: the folder's name).
        split_tensors: > 0 splits the file as `gguf-split` does, at most this many tensors a
            part (`Name-Q8_0-00001-of-00003.gguf`; the model's keys in the first part only).

    Returns:
        The file written, named as Hub uploads name them (`Name-Q4_K_M.gguf`); the first part
        of a split file.
    """
    import gguf

    arch = _ARCHS.get(str(config.get("model_type")))
    if arch is None:
        raise ValueError(f"model_type {config.get('model_type')!r} is not llama, gpt2 or bert")
    name = name or out.name
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}-{qtype}.gguf"
    tensors = _converted(params, config, arch)
    blocks = _get(config, "num_hidden_layers", "n_layer")
    writer = gguf.GGUFWriter(str(path), arch, split_max_tensors=split_tensors)
    writer.add_name(name)
    _add_hparams(writer, config, arch, blocks)
    ftype = "ALL_F32" if qtype == "F32" else f"MOSTLY_{qtype}"
    if ftype in gguf.LlamaFileType.__members__:  # plain Q4_K has none: readers then count types
        writer.add_file_type(gguf.LlamaFileType[ftype].value)
    if qtype not in ("F32", "F16", "BF16", "Q8_0"):
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    vocab = int(_get(config, "vocab_size"))
    writer.add_tokenizer_model({"llama": "llama", "gpt2": "gpt2", "bert": "bert"}[arch])
    writer.add_token_list([f"<t{i}>" for i in range(vocab)])
    for gname, data in tensors.items():
        ttype = _tensor_type(gname, data, qtype, blocks)
        raw, raw_type = _encode(data, ttype)
        writer.add_tensor(gname, raw, raw_dtype=raw_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    parts = sorted(out.glob(f"{name}-{qtype}-00001-of-*.gguf"))
    return parts[0] if split_tensors and parts else path


def _get(config: dict, *keys: str) -> int:
    for k in keys:
        if k in config:
            return config[k]
    raise KeyError(f"config.json has none of {keys}")


def _add_hparams(writer: gguf.GGUFWriter, config: dict, arch: str, blocks: int) -> None:
    heads = _get(config, "num_attention_heads", "n_head")
    hidden = _get(config, "hidden_size", "n_embd")
    writer.add_block_count(blocks)
    writer.add_context_length(_get(config, "max_position_embeddings", "n_positions"))
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(config.get("intermediate_size") or config.get("n_inner")
                                   or 4 * hidden)  # fmt: skip
    writer.add_head_count(heads)
    if arch == "llama":
        writer.add_head_count_kv(config.get("num_key_value_heads", heads))
        writer.add_layer_norm_rms_eps(config.get("rms_norm_eps", 1e-6))
        writer.add_rope_freq_base(config.get("rope_theta", 10000.0))
        writer.add_rope_dimension_count(hidden // heads)
    else:
        writer.add_layer_norm_eps(_get(config, "layer_norm_eps", "layer_norm_epsilon"))
    if arch == "bert":
        writer.add_causal_attention(False)
        writer.add_token_type_count(config.get("type_vocab_size", 2))


def _permute(w: torch.Tensor, heads: int) -> torch.Tensor:
    """llama.cpp's row order for rotary attention (convert_hf_to_gguf.py, LlamaModel.permute)."""
    return (
        w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
    )


def _converted(params: dict[str, torch.Tensor], config: dict, arch: str) -> dict[str, np.ndarray]:
    """GGUF name -> float32 array in GGUF row order, as convert_hf_to_gguf.py writes them."""
    import gguf

    by_name = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}
    blocks = _get(config, "num_hidden_layers", "n_layer")
    names = gguf.get_tensor_name_map(by_name[arch], blocks)
    heads = _get(config, "num_attention_heads", "n_head")
    kv_heads = config.get("num_key_value_heads", heads)
    out: dict[str, np.ndarray] = {}
    for hf, t in params.items():
        name = hf.removeprefix("bert.") if arch == "bert" else hf
        if name.endswith((".attn.bias", ".attn.masked_bias", "rotary_emb.inv_freq")) or (
            arch == "bert" and name.startswith(("pooler.", "cls.", "embeddings.position_ids"))
        ):
            continue
        t = t.detach().to(torch.float32)
        if arch == "llama" and name.endswith(("q_proj.weight", "q_proj.bias")):
            t = _permute(t, heads)
        elif arch == "llama" and name.endswith(("k_proj.weight", "k_proj.bias")):
            t = _permute(t, kv_heads)
        if arch == "gpt2" and re.search(r"\.(c_attn|c_proj|c_fc)\.weight$", name):
            t = t.T
        gname = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if gname is None:
            raise ValueError(f"{hf} has no GGUF name in {arch} models")
        out[gname] = t.contiguous().numpy()
        if arch == "gpt2" and gname == "token_embd.weight":
            out["output.weight"] = out[gname]  # the converter writes GPT-2's tied head
    return out


def _more_bits(layer: int, layers: int) -> bool:
    """llama-quantize's `use_more_bits`: the first and last eighth, and every third between."""
    return layer < layers // 8 or layer >= 7 * layers // 8 or (layer - layers // 8) % 3 == 2


def _tensor_type(gname: str, data: np.ndarray, qtype: str, layers: int) -> str:
    """The type llama-quantize gives one tensor of a file of type `qtype`."""
    if data.ndim < 2 or gname.endswith("_norm.weight") or not gname.endswith(".weight"):
        return "F32"
    if gname.startswith(("position_embd.", "token_types.")):
        return "F32"
    base = _MIXES.get(qtype, qtype)
    if base in ("F32", "F16", "BF16", "Q8_0"):
        return base
    if gname == "output.weight":
        base = "Q6_K"
    m = re.match(r"blk\.(\d+)\.(attn_v|ffn_down)\.weight$", gname)
    if qtype == "Q4_K_M" and m and _more_bits(int(m.group(1)), layers):
        base = "Q6_K"
    if base in _FALLBACK and data.shape[-1] % QK_K:
        base = _FALLBACK[base]
    if data.shape[-1] % 32:
        return "F16"
    return base


def _encode(data: np.ndarray, ttype: str) -> tuple[np.ndarray, Any]:
    """(array to write, raw dtype for GGUFWriter) of one tensor in ggml type `ttype`."""
    import gguf

    q = gguf.GGMLQuantizationType[ttype]
    if ttype == "F32":
        return data.astype(np.float32), None
    if ttype == "F16":
        return data.astype(np.float16), None
    if ttype == "Q4_K":
        return quantize_q4_k(data), q
    if ttype == "Q6_K":
        return quantize_q6_k(data), q
    return gguf.quants.quantize(data, q), q


def _f16(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float16).reshape(-1, 1).view(np.uint8)


def quantize_q4_k(data: np.ndarray) -> np.ndarray:
    """Rows of float32 (whole 256-element super-blocks) -> block_q4_K bytes, one row per row.

    A super-block: fp16 d and dmin, 12 bytes of 6-bit scales and mins for its 8 sub-blocks of
    32, 128 bytes of 4-bit quants (sub-blocks 2g and 2g+1 in the low and high nibbles of bytes
    32g..32g+31); value = d * scale * q - dmin * min.
    """
    rows = data.shape[0] if data.ndim > 1 else 1
    x = data.reshape(-1, 8, 32).astype(np.float32)
    lo = np.minimum(x.min(axis=2), 0.0)
    step = (x.max(axis=2) - lo) / 15.0
    d = step.max(axis=1, keepdims=True) / 63.0
    dmin = (-lo).max(axis=1, keepdims=True) / 63.0
    d16, dmin16 = (
        d.astype(np.float16).astype(np.float32),
        dmin.astype(np.float16).astype(np.float32),
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(d16 > 0, np.clip(np.rint(step / d16), 0, 63), 0).astype(np.uint8)
        mn = np.where(dmin16 > 0, np.clip(np.rint(-lo / dmin16), 0, 63), 0).astype(np.uint8)
        scale = (d16 * sc)[..., None]
        q = np.where(scale > 0, np.rint((x + (dmin16 * mn)[..., None]) / scale), 0)
    q = np.clip(q, 0, 15).astype(np.uint8)
    packed_sc = np.empty((x.shape[0], 12), dtype=np.uint8)
    packed_sc[:, 0:4] = sc[:, :4] | ((sc[:, 4:] >> 4) << 6)
    packed_sc[:, 4:8] = mn[:, :4] | ((mn[:, 4:] >> 4) << 6)
    packed_sc[:, 8:12] = (sc[:, 4:] & 0x0F) | ((mn[:, 4:] & 0x0F) << 4)
    qs = (q[:, 0::2, :] | (q[:, 1::2, :] << 4)).reshape(-1, 128)
    blocks = np.concatenate([_f16(d), _f16(dmin), packed_sc, qs], axis=1)
    return blocks.reshape(rows, -1)


def quantize_q6_k(data: np.ndarray) -> np.ndarray:
    """Rows of float32 (whole 256-element super-blocks) -> block_q6_K bytes, one row per row.

    A super-block: 128 bytes of low 4 bits, 64 bytes of high 2 bits, 16 int8 scales of its
    sub-blocks of 16, fp16 d; value = d * scale * (q - 32). Element e = 128h + 64t + b has its
    low bits in nibble t of byte 64h + b; e = 128h + 32s + b its high bits at bit 2s of byte
    32h + b.
    """
    rows = data.shape[0] if data.ndim > 1 else 1
    x = data.reshape(-1, 16, 16).astype(np.float32)
    step = np.abs(x).max(axis=2) / 31.0
    d = np.abs(step).max(axis=1, keepdims=True) / 127.0
    d16 = d.astype(np.float16).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(d16 > 0, np.clip(np.rint(step / d16), -128, 127), 0).astype(np.int8)
        scale = (d16 * sc)[..., None]
        q = np.where(scale != 0, np.rint(x / scale), 0)
    q = (np.clip(q, -32, 31) + 32).astype(np.uint8).reshape(-1, 2, 128)  # [block, h, e % 128]
    low, high = q & 0x0F, q >> 4
    ql = (low[:, :, :64] | (low[:, :, 64:] << 4)).reshape(-1, 128)
    h4 = high.reshape(-1, 2, 4, 32)
    qh = (h4[:, :, 0] | (h4[:, :, 1] << 2) | (h4[:, :, 2] << 4) | (h4[:, :, 3] << 6)).reshape(
        -1, 64
    )
    blocks = np.concatenate([ql, qh, sc.view(np.uint8), _f16(d)], axis=1)
    return blocks.reshape(rows, -1)
