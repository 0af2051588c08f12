"""Tiny real HF-style model folders for tests (safetensors + config.json + README)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file


def llama_tensors(
    seed: int, *, layers: int = 3, hidden: int = 128, inter: int = 384, vocab: int = 1024
) -> dict[str, torch.Tensor]:
    """Weights of a small Llama-shaped model, heavy-tailed like trained weights."""
    g = torch.Generator().manual_seed(seed)

    def w(*shape: int) -> torch.Tensor:
        # student-t-like tails: trained weights are not Gaussian
        x = torch.randn(*shape, generator=g)
        return x * (1 + 0.5 * torch.randn(*shape, generator=g).abs()) * 0.02

    t = {"model.embed_tokens.weight": w(vocab, hidden), "model.norm.weight": torch.ones(hidden)}
    for i in range(layers):
        p = f"model.layers.{i}."
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            t[p + f"self_attn.{name}.weight"] = w(hidden, hidden)
        t[p + "mlp.gate_proj.weight"] = w(inter, hidden)
        t[p + "mlp.up_proj.weight"] = w(inter, hidden)
        t[p + "mlp.down_proj.weight"] = w(hidden, inter)
        t[p + "input_layernorm.weight"] = torch.ones(hidden)
    t["lm_head.weight"] = w(vocab, hidden)
    return t


def write_model(
    folder: Path, tensors: dict[str, torch.Tensor], *, card: str | None = None, shards: int = 1
) -> Path:
    """Write a model folder; `shards` > 1 writes a sharded checkpoint with its index."""
    folder.mkdir(parents=True, exist_ok=True)
    names = sorted(tensors)
    if shards == 1:
        save_file({n: tensors[n].contiguous() for n in names}, str(folder / "model.safetensors"))
    else:
        weight_map = {}
        for s in range(shards):
            part = names[s::shards]
            fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            save_file({n: tensors[n].contiguous() for n in part}, str(folder / fname))
            weight_map.update({n: fname for n in part})
        (folder / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {}, "weight_map": weight_map})
        )
    (folder / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    if card is not None:
        (folder / "README.md").write_text(card)
    return folder


def noisy(tensors: dict[str, torch.Tensor], fraction: float, seed: int) -> dict[str, torch.Tensor]:
    """Every tensor moved by Gaussian noise of `fraction` x its own std."""
    g = torch.Generator().manual_seed(seed)
    return {
        n: v + fraction * v.std() * torch.randn(v.shape, generator=g) for n, v in tensors.items()
    }


class MemorySource:
    """Float32 tensors in memory as a `fingerprint.protocol.TensorSource` (no files, no hub)."""

    def __init__(self, model_id: str, tensors: dict[str, torch.Tensor]):
        from fingerprint.protocol import TensorInfo

        self.model_id = model_id
        self._values = {n: t.contiguous().float().numpy().ravel() for n, t in tensors.items()}
        self._infos = [
            TensorInfo(n, "F32", tuple(t.shape), decodable=True) for n, t in sorted(tensors.items())
        ]
        self.windows_read = 0

    def tensor_infos(self):
        return self._infos

    def read_window(self, name: str, n: int):
        from fingerprint.protocol import Window

        values = self._values[name][:n].copy()
        self.windows_read += 1
        return Window(values=values, raw=values.tobytes())
