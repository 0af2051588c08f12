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


def write_raw_safetensors(path: Path, tensors: dict[str, tuple[str, list[int], bytes]]) -> Path:
    """A safetensors file written byte by byte, for names and shapes the library may refuse to
    write: name -> (dtype, shape, data). Tensors are laid out in the given order, contiguously."""
    header: dict[str, dict] = {}
    blobs: list[bytes] = []
    offset = 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {
            "dtype": dtype,
            "shape": shape,
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()  # a lone surrogate is written as its \\u escape
    text += b" " * (-len(text) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(len(text).to_bytes(8, "little") + text + b"".join(blobs))
    return path


# Valid safetensors files (the safetensors library opens each) that no signature can hold as is.
POISONS = {
    "long-name": {"w" * 70_000: ("F32", [64, 64], bytes(64 * 64 * 4))},
    "many-dims": {"deep": ("F32", [1] * 256 + [64, 64], bytes(64 * 64 * 4))},
    "surrogate": {"layer.\ud800.weight": ("F32", [64, 64], bytes(64 * 64 * 4))},
}


def write_poisoned_model(folder: Path, kind: str) -> Path:
    """A model folder whose one weight file is the poison `kind` (a key of `POISONS`), beside a
    normal tensor, with a config and a card."""
    g = torch.Generator().manual_seed(99)
    normal = torch.randn(64, 64, generator=g).numpy().tobytes()
    tensors = {"model.embed_tokens.weight": ("F32", [64, 64], normal), **POISONS[kind]}
    write_raw_safetensors(folder / "model.safetensors", tensors)
    (folder / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    (folder / "README.md").write_text("---\nlicense: mit\n---\n")
    return folder
