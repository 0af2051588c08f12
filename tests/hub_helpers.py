"""The crawl zoo and helpers shared by the tests that talk to the emulated Hub
(tests/hub/test_hubsource.py, tests/hub/test_layout.py, tests/lineage/test_crawl.py)."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from hub.retry import RetryPolicy
from tests.factory import llama_tensors, noisy, write_model

TOKEN = "hf_SeCrEtTokenValue0123456789abcdefXYZ"
BASE = "org/base"
FINETUNES = [f"org/ft-{i}" for i in range(1, 5)]
GOOD = [
    BASE,
    *FINETUNES,
    "org/sharded",
    "org/adapter",
    "org/pipe",
    "other/root",
    "org/disguised",
]
BAD = {
    "org/gated": "gated",
    "org/pickle": "no_safetensors",
    "org/bad-header": "malformed",
    "org/disabled": "not_found",
}


def small(seed: int) -> dict[str, torch.Tensor]:
    """A small Llama-shaped model: 64-wide, two layers, every matrix >= 4096 elements."""
    return llama_tensors(seed, layers=2, hidden=64, inter=128, vocab=256)


def card(bases=(), relation=None, license_="apache-2.0") -> str:
    lines = [f"license: {license_}"]
    if bases:
        lines.append("base_model:")
        lines += [f"- {b}" for b in bases]
    if relation:
        lines.append(f"base_model_relation: {relation}")
    return "---\n" + "\n".join(lines) + "\n---\n\n# model\n"


def meta(repo_id: str, i: int, **extra) -> dict:
    return {
        "id": repo_id,
        "author": repo_id.split("/")[0],
        "downloads": 1000 - 10 * i,
        "downloadsAllTime": 5000 - i,
        "likes": i,
        "createdAt": f"2024-01-{i + 1:02d}T10:00:00.000Z",
        "lastModified": f"2024-03-{i + 1:02d}T10:00:00.000Z",
        "tags": ["safetensors", "text-generation"],
        "gated": False,
        "pipeline_tag": "text-generation",
        "library_name": "transformers",
        **extra,
    }


def build_zoo(root: Path) -> Path:
    """The crawl zoo: a base, fine-tunes (one sharded), an adapter, a two-folder pipeline, an
    unrelated root, a fine-tune that declares the wrong base, and four unreadable repos."""
    repos = root / "repos"
    base = small(0)
    write_model(repos / BASE, base, card=card())
    for i, rid in enumerate(FINETUNES, 1):
        write_model(
            repos / rid, noisy(base, 0.01, i), card=card([BASE], "finetune", license_="mit")
        )
    write_model(repos / "org/sharded", noisy(base, 0.01, 9), card=card([BASE]), shards=2)
    write_model(repos / "other/root", small(7), card=card())
    # derived from org/base, but its card names other/root
    write_model(repos / "org/disguised", noisy(base, 0.01, 11), card=card(["other/root"]))
    g = torch.Generator().manual_seed(3)
    adapter = repos / "org/adapter"
    adapter.mkdir(parents=True)
    save_file(
        {
            "base_model.model.layers.0.self_attn.q_proj.lora_A.weight": torch.randn(
                16, 256, generator=g
            ),
            "base_model.model.layers.0.self_attn.q_proj.lora_B.weight": torch.randn(
                256, 16, generator=g
            ),
        },
        str(adapter / "adapter_model.safetensors"),
    )
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": BASE}))
    (adapter / "README.md").write_text(card([BASE], "adapter"))
    pipe = repos / "org/pipe"
    for sub, name, seed in (
        ("text_encoder", "model.safetensors", 21),
        ("unet", "diffusion_pytorch_model.safetensors", 22),
    ):
        (pipe / sub).mkdir(parents=True)
        t = small(seed)
        save_file({n: t[n].contiguous() for n in sorted(t)}, str(pipe / sub / name))
    (pipe / "model_index.json").write_text(json.dumps({"_class_name": "Pipe"}))
    write_model(repos / "org/gated", small(5), card=card())
    pickle = repos / "org/pickle"
    pickle.mkdir(parents=True)
    (pickle / "pytorch_model.bin").write_bytes(b"\x80\x02not really a pickle" * 100)
    (pickle / "config.json").write_text("{}")
    bad = repos / "org/bad-header"
    bad.mkdir(parents=True)
    (bad / "model.safetensors").write_bytes(struct.pack("<Q", 10_000) + b'{"a": 1}' + bytes(64))
    write_model(repos / "org/disabled", small(6), card=card())
    ids = [*GOOD, *BAD]
    extras = {"org/gated": {"gated": "manual"}, "org/disabled": {"disabled": True}}
    manifest = {"models": [meta(rid, i, **extras.get(rid, {})) for i, rid in enumerate(ids)]}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


class Sleeps(list):
    """A sleep function that records the waits instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def fast_retry(attempts: int = 6) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, base_delay=0.01, max_sleep=60.0, sleep=Sleeps())


def resolve_bytes(server) -> int:
    """Body bytes of file downloads (weights, indexes), not API calls."""
    return sum(n for p, n in server.counters.bytes_by_path.items() if "/resolve/" in p)


class NoSleep:
    """Stands in for the `time` module inside huggingface_hub's backoff: no real waiting."""

    def __getattr__(self, name):
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        pass
