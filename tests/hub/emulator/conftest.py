"""Fixtures of the emulator tests: a small zoo folder served by `hub_env.start(zoo, ...)`."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import get_session
from safetensors.numpy import save_file

BASE = "org/base"


def _repo(root: Path, repo_id: str, *, seed: int, bases=(), relation=None, shards=0) -> None:
    folder = root / "repos" / repo_id
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    tensors = {
        "embed.weight": rng.standard_normal((8, 4)).astype(np.float32),
        "layer.0.weight": rng.standard_normal((4, 4)).astype(np.float16),
        "layer.0.bias": np.zeros(4, np.float32),
    }
    if shards:
        names = sorted(tensors)
        weight_map = {}
        for i in range(shards):
            shard = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
            part = {n: tensors[n] for n in names[i::shards]}
            save_file(part, folder / shard)
            weight_map.update(dict.fromkeys(part, shard))
        index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
        (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    else:
        save_file(tensors, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps({"model_type": "tiny", "hidden_size": 4}))
    front = ["license: mit"]
    if bases:
        front.append("base_model:")
        front += [f"- {b}" for b in bases]
    if relation:
        front.append(f"base_model_relation: {relation}")
    (folder / "README.md").write_text("---\n" + "\n".join(front) + "\n---\n\n# Model\n")


def _meta(repo_id: str, i: int, **extra) -> dict:
    meta = {
        "id": repo_id,
        "author": repo_id.split("/")[0],
        "downloads": (i * 37) % 101,
        "downloadsAllTime": 1000 + i,
        "likes": i,
        "createdAt": f"2024-02-{i + 1:02d}T10:00:00.000Z",
        "lastModified": f"2024-03-{i + 1:02d}T10:00:00.000Z",
        "tags": ["safetensors", "tiny"],
        "gated": False,
        "pipeline_tag": "text-generation",
        "library_name": "transformers",
    }
    return {**meta, **extra}


@pytest.fixture
def zoo(tmp_path: Path) -> Path:
    """Ten models: a base, eight fine-tunes of it, a sharded one; plus a gated and a private."""
    root = tmp_path / "zoo"
    models = []
    _repo(root, BASE, seed=0)
    models.append(_meta(BASE, 0))
    for i in range(1, 9):
        repo_id = f"team{i % 2}/child-{i}"
        _repo(root, repo_id, seed=i, bases=[BASE], relation="finetune")
        models.append(_meta(repo_id, i))
    _repo(root, "org/sharded", seed=9, shards=2)
    models.append(_meta("org/sharded", 9))
    _repo(root, "org/gated", seed=10)
    models.append(_meta("org/gated", 10, gated="manual"))
    _repo(root, "org/secret", seed=11)
    models.append(_meta("org/secret", 11, private=True))
    (root / "manifest.json").write_text(json.dumps({"models": models}))
    return root


@pytest.fixture
def http_lib():
    """The HTTP library huggingface_hub uses (httpx on 1.x, httpx2 on 2.x), for its errors."""
    return importlib.import_module(type(get_session()).__module__.split(".")[0])
