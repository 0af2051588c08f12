"""The zoo's plan: every model with its recipe, the sizes, and the seeds derived from names.

A table: `PLAN` lists the models family by family, parents first; `SIZES` the
dimensions per zoo size. `lineage.lab.zoo` generates the zoo from them.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone

from lineage.lab.zoo_nets import Arch

__all__ = [
    "BASE_DATE",
    "CARD_RELATION",
    "FORMAT_KINDS",
    "LICENSES",
    "PLAN",
    "RELATION_OF_KIND",
    "SIZES",
    "Size",
    "Spec",
    "declared_bases",
    "families",
    "root_of",
    "seed_for",
]

# Quantized and converted uploads written in a real file format: kind -> (writer
# "module:function", its keyword arguments). The writers follow each format's published layout
# (lineage/lab/formats_*.py); the weights are the parent's.
FORMAT_KINDS: dict[str, tuple[str, dict]] = {
    "gguf_q8_0": ("lineage.lab.formats_gguf:write_gguf", {"qtype": "Q8_0"}),
    "gguf_q4_0": ("lineage.lab.formats_gguf:write_gguf", {"qtype": "Q4_0"}),
    "gptq": ("lineage.lab.formats_packed:write_packed", {"method": "gptq"}),
    "awq": ("lineage.lab.formats_packed:write_packed", {"method": "awq"}),
    "bnb_nf4": ("lineage.lab.formats_packed:write_packed", {"method": "bnb-nf4"}),
    "bnb_int8": ("lineage.lab.formats_packed:write_packed", {"method": "bnb-int8"}),
    "fp8": ("lineage.lab.formats_packed:write_packed", {"method": "fp8"}),
    "ct_w4": ("lineage.lab.formats_packed:write_packed", {"method": "compressed-tensors"}),
    "onnx_int8": ("lineage.lab.formats_onnx:write_onnx", {"variant": "int8"}),
    "onnx_fp32": ("lineage.lab.formats_onnx:write_onnx", {"variant": "fp32"}),
}
# a float export in another format is a copy; every other format kind is a quantization
_FORMAT_RELATION = {k: "copy" if k == "onnx_fp32" else "quantized" for k in FORMAT_KINDS}

# Where generator kinds (docs/contracts.md) map to tool relations and to what a card would declare.
RELATION_OF_KIND = {
    "root": None, "finetune": "finetune", "chain": "finetune", "vocab_ext": "finetune",
    "disguised": "finetune", "lora": "adapter", "partial": "partial", "cast": "copy",
    "reupload": "copy", "quant_int8": "quantized", "quant_4bit": "quantized", "merge": "merge",
    **_FORMAT_RELATION,
}  # fmt: skip
# `base_model_relation` on the card; casts and re-uploads have no Hub relation, so none is written.
CARD_RELATION = {
    "finetune": "finetune", "chain": "finetune", "vocab_ext": "finetune", "partial": "finetune",
    "disguised": "finetune", "lora": "adapter", "quant_int8": "quantized", "quant_4bit": "quantized",
    "merge": "merge",
    **{k: "quantized" for k, r in _FORMAT_RELATION.items() if r == "quantized"},
}  # fmt: skip
LICENSES = {"aurora-labs": "apache-2.0", "cobalt-ai": "mit", "meridian-research": "llama3",
            "opencraft": "mit", "lumen-nlp": "apache-2.0"}  # fmt: skip
BASE_DATE = datetime(2023, 3, 1, tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class Spec:
    """One model of the plan. Fields not used by its kind keep their defaults.

    Attributes:
        declares: card `base_model`: None declares the true parents, () declares nothing,
            a tuple declares exactly those ids (possibly wrong).
        downloads: fixed 30-day downloads (anomaly rules depend on them), None to sample.
        before_parent: dated before its parent (the rare Hub exception to "parents are older").
    """

    id: str
    kind: str
    parents: tuple[str, ...] = ()
    style: str = "llama"
    tied: bool = False
    steps: int = 0
    lr: float = 0.0
    declares: tuple[str, ...] | None = None
    downloads: int | None = None
    shards: int = 1
    before_parent: bool = False
    dtype: str = "float32"
    lora: str = ""
    rank: int = 8
    train_layers: tuple[int, ...] = ()
    merge_weight: float = 0.5
    method: str = ""


A, B, C = "aurora-labs/Aurora-Base", "cobalt-ai/Cobalt-LM", "meridian-research/Meridian-7"
A1, B1, C1 = (
    "aurora-labs/Aurora-Instruct",
    "cobalt-ai/Cobalt-LM-Chat",
    "meridian-research/Meridian-7-Instruct",
)
D, E = "opencraft/craft-gpt", "lumen-nlp/lumen-gpt"
# Family by family, parents first. Steps are for the tiny size (scaled by Size.step_scale).
PLAN: tuple[Spec, ...] = (
    Spec(A, "root", steps=60, lr=2e-3, shards=2),
    Spec(A1, "finetune", (A,), steps=15, lr=1e-4),
    Spec("bytewright/Aurora-Base-code", "finetune", (A,), steps=15, lr=3e-4),
    Spec("cedar-ml/Aurora-Roleplay-v1", "finetune", (A,), steps=80, lr=2e-3),  # aggressive
    Spec("dunefox/Aurora-Instruct-dpo", "chain", (A1,), steps=12, lr=5e-5),
    Spec("emberfield/Aurora-Instruct-dpo-v2", "chain", ("dunefox/Aurora-Instruct-dpo",), steps=12, lr=5e-5),
    Spec("frostbyte/Aurora-dpo-v2-medical", "chain", ("emberfield/Aurora-Instruct-dpo-v2",), steps=12,
         lr=1e-4, declares=("dunefox/Aurora-Instruct-dpo",)),  # declares its grandparent
    Spec("gale-ai/Aurora-Base-lora-qv", "lora", (A,), steps=15, lr=1e-3, lora="qv", rank=8),
    Spec("harborlight/Aurora-Instruct-lora-all", "lora", (A1,), steps=15, lr=1e-3, lora="all", rank=16),
    Spec("ivy-tensor/Aurora-Base-partial", "partial", (A,), steps=15, lr=3e-4, train_layers=(2, 3)),
    Spec("quantbarn/Aurora-Instruct-bf16", "cast", (A1,), dtype="bfloat16"),
    Spec("quantbarn/Aurora-Instruct-int8", "quant_int8", (A1,)),
    Spec("bitpress/Aurora-Base-4bit", "quant_4bit", (A,), dtype="float16"),
    Spec("juniper-lab/Aurora-Merge", "merge", ("bytewright/Aurora-Base-code", "cedar-ml/Aurora-Roleplay-v1")),
    Spec("kestrel-dev/Aurora-Base", "reupload", (A,), declares=(), downloads=3),
    Spec("lumen-tinker/Aurora-Base-ext-vocab", "vocab_ext", (A,), steps=12, lr=3e-4),
    Spec("mossy-weights/SuperModel-v1", "disguised", (A1,), declares=(), downloads=4, method="noise"),
    Spec("ggufhaus/Aurora-Instruct-GGUF", "gguf_q8_0", (A1,)),
    Spec("ggufhaus/Aurora-Base-GGUF", "gguf_q4_0", (A,)),
    Spec("gptq-lab/Aurora-Instruct-GPTQ", "gptq", (A1,)),
    Spec(B, "root", tied=True, steps=60, lr=2e-3),
    Spec(B1, "finetune", (B,), steps=15, lr=1e-4),
    Spec("nimbus-ml/Cobalt-Chat-ft", "chain", (B1,), steps=12, lr=1e-4),
    Spec("orchid-ai/Cobalt-Chat-ft-v2", "chain", ("nimbus-ml/Cobalt-Chat-ft",), steps=12, lr=1e-4),
    Spec("pinecone-dev/Cobalt-LM-lora", "lora", (B,), steps=15, lr=1e-3, lora="qv", rank=4),
    Spec("quill-nlp/Cobalt-LM-partial", "partial", (B,), steps=15, lr=3e-4, train_layers=(0, 1)),
    Spec("quantbarn/Cobalt-LM-Chat-fp16", "cast", (B1,), dtype="float16"),
    Spec("bitpress/Cobalt-LM-Chat-4bit", "quant_4bit", (B1,), dtype="float16"),
    Spec("ridge-ai/Cobalt-Math", "finetune", (B,), steps=30, lr=5e-4, declares=(A,), downloads=540),
    Spec("sable-ml/Cobalt-Blend", "merge", (B1, "ridge-ai/Cobalt-Math"), declares=(B1,), merge_weight=0.6),
    Spec("tundra-labs/Cobalt-Prune", "disguised", (B1,), declares=(), method="prune"),
    Spec("umber-dev/Cobalt-LM-Chat", "reupload", (B1,), downloads=40),
    Spec("vale-ai/Cobalt-int8", "quant_int8", (B,), declares=()),
    Spec("awq-works/Cobalt-LM-Chat-AWQ", "awq", (B1,)),
    Spec("bnb-folk/Cobalt-LM-bnb-4bit", "bnb_nf4", (B,)),
    Spec(C, "root", steps=60, lr=2e-3, shards=2),
    Spec(C1, "finetune", (C,), steps=15, lr=1e-4),
    Spec("willow-ai/Meridian-Instruct-code", "chain", (C1,), steps=12, lr=2e-4),
    Spec("xenon-ml/Meridian-code-v2", "chain", ("willow-ai/Meridian-Instruct-code",), steps=12, lr=1e-4),
    Spec("yarrow-dev/Meridian-code-v3", "chain", ("xenon-ml/Meridian-code-v2",), steps=12, lr=1e-4),
    Spec("zephyr-nlp/Meridian-7-lora-all", "lora", (C,), steps=15, lr=1e-3, lora="all", rank=8),
    Spec("quantbarn/Meridian-7-Instruct-int8", "quant_int8", (C1,)),
    Spec("quantbarn/Meridian-7-bf16", "cast", (C,), dtype="bfloat16"),
    Spec("amber-ai/Meridian-Story", "finetune", (C,), steps=50, lr=1e-3, declares=(B,), downloads=20),
    Spec("birch-ml/Meridian-7-partial", "partial", (C,), steps=15, lr=3e-4, train_layers=(1, 2)),
    Spec("copper-dev/Meridian-Instruct-ext", "vocab_ext", (C1,), steps=12, lr=3e-4, shards=2),
    Spec("delta-weights/Meridian-Merge", "merge", (C1, "birch-ml/Meridian-7-partial")),
    Spec("echo-ai/Meridian-7-Instruct-ft", "chain", (C1,), steps=12, lr=1e-4, declares=(), before_parent=True),
    Spec("fp8-forge/Meridian-7-Instruct-FP8", "fp8", (C1,)),
    Spec("ct-pack/Meridian-7-W4A16", "ct_w4", (C,)),
    # a GGUF of the story fine-tune that names the Instruct model as its source
    Spec("shady-quant/Meridian-Story-GGUF", "gguf_q4_0", ("amber-ai/Meridian-Story",), declares=(C1,)),
    Spec("bnb-folk/Meridian-7-bnb-8bit", "bnb_int8", (C,)),
    Spec(D, "root", style="gpt2", tied=True, steps=60, lr=2e-3),
    Spec("opencraft/craft-gpt-instruct", "finetune", (D,), style="gpt2", steps=15, lr=1e-4),
    Spec("fjord-ml/craft-gpt-poetry", "chain", ("opencraft/craft-gpt-instruct",), style="gpt2", steps=12, lr=2e-4),
    Spec("quantbarn/craft-gpt-int8", "quant_int8", (D,), style="gpt2"),
    Spec("grove-dev/craft-gpt", "reupload", (D,), style="gpt2", declares=(), downloads=1),
    Spec("heron-ai/craft-gpt-lora", "lora", (D,), style="gpt2", steps=15, lr=1e-3, lora="qv", rank=8),
    Spec("onnx-community/craft-gpt-ONNX", "onnx_int8", (D,), style="gpt2"),
    Spec("ggufhaus/craft-gpt-instruct-GGUF", "gguf_q8_0", ("opencraft/craft-gpt-instruct",), style="gpt2"),
    Spec(E, "root", style="gpt2", tied=True, steps=60, lr=2e-3),
    Spec("iris-ml/lumen-gpt-chat", "finetune", (E,), style="gpt2", steps=15, lr=1e-4, before_parent=True),
    Spec("quantbarn/lumen-gpt-chat-fp16", "cast", ("iris-ml/lumen-gpt-chat",), style="gpt2", dtype="float16"),
    Spec("onnx-community/lumen-gpt-ONNX", "onnx_fp32", (E,), style="gpt2"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Size:
    """Model dimensions and training effort for one zoo size."""

    llama: Arch
    gpt2: Arch
    step_scale: float
    batch: int = 4
    seq_len: int = 32
    max_shard_bytes: int = 2**31


SIZES = {
    "tiny": Size(Arch("llama", 128, 4, 1024, 512, 4), Arch("gpt2", 192, 3, 768, 768, 4), 1.0),
    "small": Size(Arch("llama", 256, 6, 4096, 1024, 8), Arch("gpt2", 384, 4, 4096, 1536, 6), 0.5),
    # A few hundred MB per fp32 model, for benchmarks: a few optimizer steps only.
    "large": Size(Arch("llama", 768, 8, 16384, 2048, 12), Arch("gpt2", 768, 8, 16384, 3072, 12),
                  0.04, max_shard_bytes=200 * 2**20),
}  # fmt: skip


@functools.cache
def root_of(model_id: str) -> str:
    """The family root of a plan model: follow first parents up."""
    spec = next(s for s in PLAN if s.id == model_id)
    return model_id if not spec.parents else root_of(spec.parents[0])


def families(plan: tuple[Spec, ...]) -> list[str]:
    return [s.id for s in plan if s.kind == "root"]


def seed_for(seed: int, *parts: str) -> int:
    """A stable 63-bit seed from the zoo seed and names (Python's hash() is salted per process)."""
    digest = hashlib.sha256(":".join([str(seed), *parts]).encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def declared_bases(spec: Spec) -> tuple[str, ...]:
    """What the card's `base_model` says (see Spec.declares)."""
    return spec.parents if spec.declares is None else spec.declares
