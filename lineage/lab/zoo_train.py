"""Tiny real language models and the recipes that derive one from another, for the model zoo.

Everything here is plain torch on CPU and seeded: a model is a dict from Hugging Face tensor names
(`model.layers.0.self_attn.q_proj.weight`, `transformer.h.0.attn.c_attn.weight`...) to tensors, so
the names written to safetensors are exactly the ones trained, and every recipe (fine-tune, LoRA,
partial fine-tune, quantization, merge, vocabulary extension) is a function from tensors to tensors.

Two architectures: a Llama-style decoder (RMSNorm, rotary attention, SwiGLU MLP, tied or untied
head) and a GPT-2-style decoder (LayerNorm with bias, learned positions, GELU MLP, Conv1D weights
stored as (in, out), tied head). Training data comes from seeded random Markov chains over
Zipf-distributed tokens, a different chain per data seed, so trained weights carry learned
structure rather than staying Gaussian.

Callers must run these functions under `deterministic()`: one CPU thread, so the bytes written do
not depend on the machine's core count.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

Params = dict[str, torch.Tensor]


@dataclass(frozen=True, slots=True)
class Arch:
    """Shape of one model. `style` is "llama" or "gpt2"."""

    style: str
    hidden: int
    layers: int
    vocab: int
    intermediate: int
    heads: int
    max_positions: int = 128
    tied: bool = False


@dataclass(frozen=True, slots=True)
class TrainSettings:
    """Optimizer run: AdamW steps on `batch` sequences of `seq_len` tokens."""

    steps: int
    lr: float
    batch: int = 8
    seq_len: int = 32
    weight_decay: float = 0.01


@contextlib.contextmanager
def deterministic() -> Iterator[None]:
    """Run torch on one thread (restored afterwards): reductions then add up in a fixed order."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def generator(seed: int) -> torch.Generator:
    """A CPU generator; every random draw in the zoo goes through one, never the global state."""
    return torch.Generator().manual_seed(seed & 0x7FFF_FFFF_FFFF_FFFF)


# ---------------------------------------------------------------------------------------------
# Initialization (HF conventions: normal(0, 0.02) matrices, unit norms, zero biases)


def init_params(arch: Arch, gen: torch.Generator) -> Params:
    """Fresh weights for `arch`, named as Hugging Face names them."""
    return _init_llama(arch, gen) if arch.style == "llama" else _init_gpt2(arch, gen)


def _normal(shape: tuple[int, ...], std: float, gen: torch.Generator) -> torch.Tensor:
    return torch.randn(shape, generator=gen) * std


def _init_llama(a: Arch, gen: torch.Generator) -> Params:
    h, i = a.hidden, a.intermediate
    p: Params = {"model.embed_tokens.weight": _normal((a.vocab, h), 0.02, gen)}
    for n in range(a.layers):
        pre = f"model.layers.{n}."
        for proj in ("q", "k", "v", "o"):
            p[f"{pre}self_attn.{proj}_proj.weight"] = _normal((h, h), 0.02, gen)
        p[f"{pre}mlp.gate_proj.weight"] = _normal((i, h), 0.02, gen)
        p[f"{pre}mlp.up_proj.weight"] = _normal((i, h), 0.02, gen)
        p[f"{pre}mlp.down_proj.weight"] = _normal((h, i), 0.02, gen)
        p[f"{pre}input_layernorm.weight"] = torch.ones(h)
        p[f"{pre}post_attention_layernorm.weight"] = torch.ones(h)
    p["model.norm.weight"] = torch.ones(h)
    if not a.tied:
        p["lm_head.weight"] = _normal((a.vocab, h), 0.02, gen)
    return p


def _init_gpt2(a: Arch, gen: torch.Generator) -> Params:
    h, i = a.hidden, a.intermediate
    # GPT-2 scales the residual projections by 1/sqrt(2 * layers)
    proj_std = 0.02 / math.sqrt(2 * a.layers)
    p: Params = {
        "transformer.wte.weight": _normal((a.vocab, h), 0.02, gen),
        "transformer.wpe.weight": _normal((a.max_positions, h), 0.01, gen),
    }
    for n in range(a.layers):
        pre = f"transformer.h.{n}."
        p[f"{pre}ln_1.weight"], p[f"{pre}ln_1.bias"] = torch.ones(h), torch.zeros(h)
        p[f"{pre}attn.c_attn.weight"] = _normal((h, 3 * h), 0.02, gen)
        p[f"{pre}attn.c_attn.bias"] = torch.zeros(3 * h)
        p[f"{pre}attn.c_proj.weight"] = _normal((h, h), proj_std, gen)
        p[f"{pre}attn.c_proj.bias"] = torch.zeros(h)
        p[f"{pre}ln_2.weight"], p[f"{pre}ln_2.bias"] = torch.ones(h), torch.zeros(h)
        p[f"{pre}mlp.c_fc.weight"] = _normal((h, i), 0.02, gen)
        p[f"{pre}mlp.c_fc.bias"] = torch.zeros(i)
        p[f"{pre}mlp.c_proj.weight"] = _normal((i, h), proj_std, gen)
        p[f"{pre}mlp.c_proj.bias"] = torch.zeros(h)
    p["transformer.ln_f.weight"], p["transformer.ln_f.bias"] = torch.ones(h), torch.zeros(h)
    return p


# ---------------------------------------------------------------------------------------------
# Forward passes


def forward(arch: Arch, p: Params, tokens: torch.Tensor) -> torch.Tensor:
    """Next-token logits, shape (batch, seq, vocab)."""
    return (
        _llama_forward(arch, p, tokens) if arch.style == "llama" else _gpt2_forward(arch, p, tokens)
    )


def _rms_norm(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    b, t, h = x.shape
    return x.view(b, t, heads, h // heads).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    b, nh, t, d = x.shape
    return x.transpose(1, 2).reshape(b, t, nh * d)


def _llama_forward(a: Arch, p: Params, tokens: torch.Tensor) -> torch.Tensor:
    d = a.hidden // a.heads
    t = tokens.shape[1]
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    angles = torch.outer(torch.arange(t, dtype=torch.float32), inv_freq)
    cos, sin = torch.cat((angles, angles), -1).cos(), torch.cat((angles, angles), -1).sin()
    x = p["model.embed_tokens.weight"][tokens]
    for n in range(a.layers):
        pre = f"model.layers.{n}."
        h = _rms_norm(x, p[f"{pre}input_layernorm.weight"])
        q = _rotate(_heads(F.linear(h, p[f"{pre}self_attn.q_proj.weight"]), a.heads), cos, sin)
        k = _rotate(_heads(F.linear(h, p[f"{pre}self_attn.k_proj.weight"]), a.heads), cos, sin)
        v = _heads(F.linear(h, p[f"{pre}self_attn.v_proj.weight"]), a.heads)
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + F.linear(_merge_heads(att), p[f"{pre}self_attn.o_proj.weight"])
        h = _rms_norm(x, p[f"{pre}post_attention_layernorm.weight"])
        gate = F.silu(F.linear(h, p[f"{pre}mlp.gate_proj.weight"]))
        x = x + F.linear(
            gate * F.linear(h, p[f"{pre}mlp.up_proj.weight"]), p[f"{pre}mlp.down_proj.weight"]
        )
    x = _rms_norm(x, p["model.norm.weight"])
    head = p["model.embed_tokens.weight"] if a.tied else p["lm_head.weight"]
    return F.linear(x, head)


def _gpt2_forward(a: Arch, p: Params, tokens: torch.Tensor) -> torch.Tensor:
    t = tokens.shape[1]
    x = p["transformer.wte.weight"][tokens] + p["transformer.wpe.weight"][:t]
    for n in range(a.layers):
        pre = f"transformer.h.{n}."
        h = F.layer_norm(x, (a.hidden,), p[f"{pre}ln_1.weight"], p[f"{pre}ln_1.bias"])
        qkv = h @ p[f"{pre}attn.c_attn.weight"] + p[f"{pre}attn.c_attn.bias"]
        q, k, v = (_heads(part, a.heads) for part in qkv.split(a.hidden, dim=-1))
        att = _merge_heads(F.scaled_dot_product_attention(q, k, v, is_causal=True))
        x = x + att @ p[f"{pre}attn.c_proj.weight"] + p[f"{pre}attn.c_proj.bias"]
        h = F.layer_norm(x, (a.hidden,), p[f"{pre}ln_2.weight"], p[f"{pre}ln_2.bias"])
        h = F.gelu(h @ p[f"{pre}mlp.c_fc.weight"] + p[f"{pre}mlp.c_fc.bias"], approximate="tanh")
        x = x + h @ p[f"{pre}mlp.c_proj.weight"] + p[f"{pre}mlp.c_proj.bias"]
    x = F.layer_norm(x, (a.hidden,), p["transformer.ln_f.weight"], p["transformer.ln_f.bias"])
    return F.linear(x, p["transformer.wte.weight"])


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
