"""The recipes that derive one zoo model from another, and the data they train on.

Every recipe (fine-tune, LoRA, partial fine-tune, quantization, merge, vocabulary extension,
noise, pruning) is plain seeded torch on CPU, a function from tensors to tensors over the models
of `lineage.lab.zoo_nets`. Training data comes from seeded random Markov chains over
Zipf-distributed tokens, a different chain per data seed, so trained weights carry learned
structure rather than staying Gaussian. Run them under `zoo_nets.deterministic()`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from lineage.lab.zoo_nets import Arch, Params, forward, generator


@dataclass(frozen=True, slots=True)
class TrainSettings:
    """Optimizer run: AdamW steps on `batch` sequences of `seq_len` tokens."""

    steps: int
    lr: float
    batch: int = 8
    seq_len: int = 32
    weight_decay: float = 0.01


# ---------------------------------------------------------------------------------------------
# Synthetic data: a seeded Markov chain per data seed


@dataclass(frozen=True, slots=True)
class MarkovSource:
    """Each token has `successors.shape[1]` likely next tokens with fixed probabilities."""

    successors: torch.Tensor  # (vocab, branching) int64
    probs: torch.Tensor  # (vocab, branching) float32, rows sum to 1


def markov_source(vocab: int, seed: int, branching: int = 8, zipf: float = 1.1) -> MarkovSource:
    """A random sparse transition table over Zipf-distributed tokens.

    Successors are drawn from a Zipf law over a seeded permutation of the vocabulary, so, as in
    text, a few tokens are frequent and most are rare: the model learns quickly (the loss falls
    from ln(vocab) to about 2 in a hundred steps) and rows of frequent and rare tokens end up with
    different statistics. A low softmax temperature makes a few successors dominate.
    """
    gen = generator(seed)
    freq = torch.empty(vocab, dtype=torch.float64)
    freq[torch.randperm(vocab, generator=gen)] = (
        1.0 / torch.arange(1, vocab + 1, dtype=torch.float64) ** zipf
    )
    successors = torch.multinomial(freq, vocab * branching, replacement=True, generator=gen).view(
        vocab, branching
    )
    probs = torch.softmax(torch.randn(vocab, branching, generator=gen) * 2.0, dim=-1)
    return MarkovSource(successors, probs)


def sample_tokens(
    src: MarkovSource, batch: int, seq_len: int, gen: torch.Generator
) -> torch.Tensor:
    """`batch` sequences of `seq_len + 1` tokens (inputs and shifted targets)."""
    vocab = src.successors.shape[0]
    tokens = torch.empty(batch, seq_len + 1, dtype=torch.long)
    tokens[:, 0] = torch.randint(0, vocab, (batch,), generator=gen)
    for t in range(1, seq_len + 1):
        prev = tokens[:, t - 1]
        choice = torch.multinomial(src.probs[prev], 1, generator=gen).squeeze(1)
        tokens[:, t] = src.successors[prev, choice]
    return tokens


# ---------------------------------------------------------------------------------------------
# Training recipes


def train(
    arch: Arch,
    params: Params,
    settings: TrainSettings,
    *,
    data_seed: int,
    trainable: Callable[[str], bool] = lambda name: True,
) -> Params:
    """Full or partial fine-tune with AdamW; tensors not `trainable` come back untouched.

    Returns new tensors; `params` is not modified. Frozen tensors are the very same objects, so
    they serialize to identical bytes.
    """
    src = markov_source(arch.vocab, data_seed)
    gen = generator(data_seed + 1)
    live = {n: t.detach().clone().requires_grad_(True) for n, t in params.items() if trainable(n)}
    if not live:
        raise ValueError("train(): no tensor is trainable")
    opt = torch.optim.AdamW(
        list(live.values()), lr=settings.lr, betas=(0.9, 0.95), weight_decay=settings.weight_decay
    )
    # One sampling pass for the whole run: the Markov walk is a Python loop over positions.
    data = sample_tokens(src, settings.batch * settings.steps, settings.seq_len, gen)
    for tokens in data.split(settings.batch):
        logits = forward(arch, {**params, **live}, tokens[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return {n: (live[n].detach() if n in live else t) for n, t in params.items()}


def lora_targets(arch: Arch, which: str) -> list[str]:
    """Names a LoRA adapter wraps: "qv" (the PEFT default for attention) or "all" linear layers."""
    keys: tuple[str, ...]
    if arch.style == "gpt2":
        keys = (
            ("attn.c_attn",)
            if which == "qv"
            else ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")
        )
        return [f"transformer.h.{n}.{k}.weight" for n in range(arch.layers) for k in keys]
    attn = ("self_attn.q_proj", "self_attn.v_proj")
    rest = ("self_attn.k_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")
    keys = attn if which == "qv" else attn + rest
    return [f"model.layers.{n}.{k}.weight" for n in range(arch.layers) for k in keys]


def lora_finetune(
    arch: Arch,
    params: Params,
    settings: TrainSettings,
    *,
    data_seed: int,
    targets: list[str],
    rank: int,
    alpha: float,
) -> Params:
    """Train low-rank A, B beside frozen targets, then merge W + (alpha / rank) * B @ A.

    A gets PEFT's Kaiming-style init and B starts at zero, so step 0 is the parent exactly.
    Tensors outside `targets` are returned untouched (byte-identical to the parent).
    """
    gen = generator(data_seed + 2)
    scale = alpha / rank
    # A LoRA weight is (out, in) for torch Linear and (in, out) for GPT-2 Conv1D: adapt both
    # as delta = B @ A with the delta shaped like the stored weight.
    a_mats, b_mats = {}, {}
    for name in targets:
        rows, cols = params[name].shape
        a_mats[name] = (
            (torch.rand(rank, cols, generator=gen) * 2 - 1)
            .mul_(1 / math.sqrt(cols))
            .requires_grad_(True)
        )
        b_mats[name] = torch.zeros(rows, rank, requires_grad=True)
    src = markov_source(arch.vocab, data_seed)
    data = sample_tokens(
        src, settings.batch * settings.steps, settings.seq_len, generator(data_seed + 1)
    )
    opt = torch.optim.AdamW(
        [*a_mats.values(), *b_mats.values()], lr=settings.lr, betas=(0.9, 0.95), weight_decay=0.0
    )
    for tokens in data.split(settings.batch):
        eff = dict(params)
        for name in targets:
            eff[name] = params[name] + scale * (b_mats[name] @ a_mats[name])
        logits = forward(arch, eff, tokens[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    merged = dict(params)
    with torch.no_grad():
        for name in targets:
            merged[name] = params[name] + scale * (b_mats[name] @ a_mats[name])
    return merged


def layer_index(name: str) -> int | None:
    """Block number in `model.layers.N.` / `transformer.h.N.`, None for embeddings, norms, head."""
    parts = name.split(".")
    for marker in ("layers", "h"):
        if marker in parts:
            i = parts.index(marker)
            if i + 1 < len(parts) and parts[i + 1].isdigit():
                return int(parts[i + 1])
    return None


def extend_vocab(
    arch: Arch, params: Params, extra: int, gen: torch.Generator
) -> tuple[Arch, Params]:
    """Append `extra` token rows to the embedding (and untied head), as `resize_token_embeddings`
    does with mean initialization: new rows are the mean row plus small noise."""
    out = dict(params)
    names = (
        ["model.embed_tokens.weight", "lm_head.weight"]
        if arch.style == "llama"
        else ["transformer.wte.weight"]
    )
    for name in names:
        if name not in params:
            continue
        w = params[name]
        new = (
            w.mean(0, keepdim=True) + torch.randn(extra, w.shape[1], generator=gen) * w.std() * 0.1
        )
        out[name] = torch.cat((w, new), 0)
    return replace(arch, vocab=arch.vocab + extra), out


# ---------------------------------------------------------------------------------------------
# Post-hoc transforms: quantization round trips, merges, disguises


def is_quantizable(arch: Arch, name: str, t: torch.Tensor) -> bool:
    """Block weight matrices only: quantizers keep embeddings, head and norms in float."""
    return t.ndim == 2 and layer_index(name) is not None


def quant_int8(t: torch.Tensor) -> torch.Tensor:
    """Per-row absmax symmetric int8 round trip (the LLM.int8 weight format), back to float32."""
    scale = t.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127.0
    return (torch.round(t / scale).clamp(-127, 127) * scale).to(torch.float32)


def quant_4bit(t: torch.Tensor, group: int = 64) -> torch.Tensor:
    """Group-wise (64 consecutive values of a row) absmax symmetric 4-bit round trip, float32."""
    rows, cols = t.shape
    if cols % group:
        raise ValueError(f"quant_4bit: {cols} columns are not a multiple of group {group}")
    g = t.reshape(rows, cols // group, group)
    scale = g.abs().amax(dim=2, keepdim=True).clamp_min(1e-12) / 7.0
    return (torch.round(g / scale).clamp(-8, 7) * scale).reshape(rows, cols).to(torch.float32)


def merge_linear(a: Params, b: Params, weight_a: float) -> Params:
    """Weight averaging (mergekit "linear"): weight_a * a + (1 - weight_a) * b, tensor by tensor."""
    if a.keys() != b.keys():
        raise ValueError("merge_linear: the two models have different tensors")
    return {n: weight_a * a[n] + (1.0 - weight_a) * b[n] for n in a}


def add_noise(params: Params, relative: float, gen: torch.Generator) -> Params:
    """Add Gaussian noise of `relative` times each matrix's std (disguises an exact copy)."""
    out = dict(params)
    for name in sorted(params):
        t = params[name]
        if t.ndim == 2:
            out[name] = t + torch.randn(t.shape, generator=gen) * (t.std() * relative)
    return out


def prune_smallest(params: Params, fraction: float) -> Params:
    """Zero the `fraction` smallest-magnitude entries of each matrix (magnitude pruning)."""
    out = dict(params)
    for name, t in params.items():
        if t.ndim == 2:
            k = int(t.numel() * fraction)
            if k:
                cut = t.abs().flatten().kthvalue(k).values
                out[name] = torch.where(t.abs() <= cut, torch.zeros_like(t), t)
    return out
