"""GGUF tensor names back to the Hugging Face names their source model uses.

llama.cpp's converter maps HF names to GGUF names with the tables of its `gguf` package
(`gguf.TensorNameMap`: per tensor kind, every HF spelling it knows). Inverted, one GGUF name has
many HF spellings (`token_embd` is `model.embed_tokens`, `transformer.wte`,
`embeddings.word_embeddings` ...); the one chosen is the spelling the architecture's
transformers class uses (`STYLES`), so the tensor meets the same tensor of the source model.
Wrapper prefixes (`model.`, `transformer.`, `bert.`) need not match: signatures strip them.

Two layout changes of the converter are undone by the codec, and decided here:
* `PERMUTED`: architectures whose converter reorders the rows of `q_proj` and `k_proj` for
  llama.cpp's rotary embedding (`LlamaModel.permute` in convert_hf_to_gguf.py: LlamaModel,
  which Mistral and Mixtral use too, and the classes that apply the same permutation);
* `TRANSPOSED`: GPT-2 stores its Conv1D weights as [in, out]; the converter transposes them.

The tables of the `gguf` package are read without building `gguf.TensorNameMap` (which
expands every block number and mutates a class-level table when built).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# Architectures (general.architecture) whose q/k rows the converter permutes.
PERMUTED = frozenset({"llama", "deci", "granite", "granitemoe", "minicpm", "olmo"})
# architecture -> tensor kinds (gguf.MODEL_TENSOR names) stored transposed.
TRANSPOSED = {"gpt2": frozenset({"ATTN_QKV", "ATTN_OUT", "FFN_UP", "FFN_DOWN"})}
# Preferred HF spellings, most preferred first: an entry ending in "." is a prefix, any other an
# exact spelling; the first entry some spelling fits wins, else the tables' first spelling.
_DECODER = (
    "model.layers.{bid}.self_attn.",
    "model.layers.{bid}.mlp.",
    "model.layers.{bid}.",
    "model.embed_tokens",
    "model.norm",
    "lm_head",
    "model.",
)
STYLES: dict[str, tuple[str, ...]] = {
    "gpt2": ("transformer.h.{bid}.", "transformer.", "lm_head"),
    "bert": ("encoder.layer.{bid}.", "embeddings.", "pooler."),
    # Phi-3 keeps q/k/v and gate/up fused, as its GGUF does
    "phi3": (
        "model.layers.{bid}.self_attn.qkv_proj",
        "model.layers.{bid}.mlp.gate_up_proj",
        *_DECODER,
    ),
}
# Spellings the tables keep for converter internals, never names a model saves.
_NEVER = ("_no_perm", "model.layers.layers.")
_BLOCK = re.compile(r"^blk\.(\d{1,6})\.(.+)$")
_SUFFIXES = (".weight", ".bias")


@dataclass(frozen=True, slots=True)
class Mapped:
    """A GGUF tensor's HF identity.

    Attributes:
        name: the HF name (`model.layers.0.self_attn.q_proj.weight`).
        kind: the gguf.MODEL_TENSOR name (`ATTN_Q`).
        block: the block number, None outside the blocks.
    """

    name: str
    kind: str
    block: int | None


@lru_cache(maxsize=64)
def _table(arch: str) -> dict[str, tuple[str, str]]:
    """GGUF name template (`blk.{bid}.attn_q`) -> (kind, HF template) for one architecture;
    an architecture the `gguf` package does not know is read with llama's table."""
    import gguf

    by_name = {name: a for a, name in gguf.MODEL_ARCH_NAMES.items()}
    model_arch = by_name.get(arch, gguf.MODEL_ARCH.LLAMA)
    cfg = gguf.TensorNameMap
    blocks = {**cfg.block_mappings_cfg, **cfg.arch_block_mappings_cfg.get(model_arch, {})}
    style = STYLES.get(arch, _DECODER)
    out: dict[str, tuple[str, str]] = {}
    for kind in gguf.MODEL_TENSORS[model_arch]:
        template = gguf.TENSOR_NAMES[kind]
        spellings = blocks.get(kind) if "{bid}" in template else cfg.mappings_cfg.get(kind)
        chosen = _prefer(spellings or (), style)
        if chosen is not None:
            out[template] = (kind.name, chosen)
    return out


def _prefer(spellings: tuple[str, ...], style: tuple[str, ...]) -> str | None:
    usable = [s for s in spellings if not any(bad in s for bad in _NEVER)]
    for entry in style:
        for s in usable:
            if s == entry or (entry.endswith(".") and s.startswith(entry)):
                return s
    return usable[0] if usable else None


def hf_name(arch: str, gguf_name: str) -> Mapped | None:
    """The HF name of GGUF tensor `gguf_name` in a model of `arch`, or None when the tables
    have no spelling for it (the tensor is then left out)."""
    base, suffix = gguf_name, ""
    for s in _SUFFIXES:
        if gguf_name.endswith(s):
            base, suffix = gguf_name[: -len(s)], s
    table = _table(arch)
    m = _BLOCK.match(base)
    if m:
        found = table.get(f"blk.{{bid}}.{m.group(2)}")
        if found is None:
            return None
        kind, template = found
        block = int(m.group(1))
        return Mapped(template.format(bid=block) + suffix, kind, block)
    found = table.get(base)
    if found is None or "{bid}" in found[1]:
        return None
    return Mapped(found[1] + suffix, found[0], None)


def permuted(arch: str, kind: str) -> bool:
    """Whether the converter permuted this tensor's rows for rotary attention."""
    return arch in PERMUTED and kind in ("ATTN_Q", "ATTN_K")


def transposed(arch: str, kind: str) -> bool:
    """Whether the converter stored this tensor transposed (GPT-2's Conv1D weights)."""
    return kind in TRANSPOSED.get(arch, frozenset())
