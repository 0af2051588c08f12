"""Tiny real language models for the model zoo: shapes, initialization and the forward pass.

A model is a dict from Hugging Face tensor names (`model.layers.0.self_attn.q_proj.weight`,
`transformer.h.0.attn.c_attn.weight`...) to tensors, so the names written to safetensors are
exactly the ones trained. Two architectures: a Llama-style decoder (RMSNorm, rotary attention,
SwiGLU MLP, tied or untied head) and a GPT-2-style decoder (LayerNorm with bias, learned
positions, GELU MLP, Conv1D weights stored as (in, out), tied head).

Callers must run these functions under `deterministic()`: one CPU thread, so the bytes written do
not depend on the machine's core count.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

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
