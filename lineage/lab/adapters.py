"""Sibling and unrelated LoRA adapters, trained for real, for the Grassmann similarity check.

Per seed: a tiny Llama-style base is trained on its own Markov-chain data
(`lineage.lab.zoo_train`); then LoRA factors are trained on it, the base frozen:

* two **siblings**: the same task data (one Markov chain), different factor init and different
  batch order: two children that learnt the same thing;
* an **unrelated** adapter: another task (another chain) on the same base;
* a **random** adapter: Gaussian factors, nothing learnt;
* and the same without adapters: two full fine-tunes on the task data (other batch order) and
  one on the other data, compared by their dense updates (`lineage.adapters.compare_finetunes`).

Each is written as PEFT writes one (`adapter_model.safetensors` with
`base_model.model.<module>.lora_A.weight` names and `{"format": "pt"}` metadata, plus
`adapter_config.json`) and compared through the product's path: opened as a folder,
factors read by `hub.adapters`, scored by `lineage.adapters.compare_adapters`.

Run under `zoo_nets.deterministic()` (one torch thread): the numbers do not depend on the machine.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from fingerprint.subspace import SubspaceResult
from lineage.adapters import compare_adapters, compare_finetunes
from lineage.lab.zoo_nets import Arch, Params, deterministic, forward, generator, init_params
from lineage.lab.zoo_train import TrainSettings, lora_targets, markov_source, sample_tokens, train

# Small enough that one adapter trains in a few seconds on one thread, large enough that r = 4
# directions are a small part of the space (baseline k / d = 4 / 64).
ARCH = Arch("llama", 64, 2, 256, 128, 4)
BASE_TRAINING = TrainSettings(steps=150, lr=3e-3)
ADAPTER_TRAINING = TrainSettings(steps=200, lr=3e-3)
FINETUNE_TRAINING = TrainSettings(steps=100, lr=1e-3)
RANK = 4
ALPHA = 8.0
# directions compared per matrix for full fine-tunes, as many as an adapter's rank
FINETUNE_K = RANK
KINDS = ("sibling", "unrelated", "random", "ft-sibling", "ft-unrelated")

Factors = dict[str, tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True, slots=True)
class PairScore:
    """One compared pair of adapters.

    Attributes:
        seed: the experiment seed (base, tasks and inits derive from it).
        kind: "sibling" (same data, other init and order), "unrelated" (other data) or
            "random" (a trained adapter against Gaussian factors); "ft-sibling" and
            "ft-unrelated" the same for full fine-tunes.
        result: the comparison (similarity, left, right, baseline, modules).
    """

    seed: int
    kind: str
    result: SubspaceResult


def train_base(arch: Arch, seed: int, settings: TrainSettings = BASE_TRAINING) -> Params:
    """A base model trained on its own data (seeded by `seed`)."""
    return train(arch, init_params(arch, generator(seed)), settings, data_seed=10_000 + seed)


def train_lora(
    arch: Arch,
    base: Params,
    settings: TrainSettings,
    *,
    data_seed: int,
    init_seed: int,
    rank: int = RANK,
    alpha: float = ALPHA,
    which: str = "qv",
) -> Factors:
    """LoRA factors trained on `data_seed`'s chain, the base frozen; init and batch order from
    `init_seed`. A has PEFT's Kaiming-uniform-like init and B starts at zero, as in PEFT.

    Returns:
        weight name (`model.layers.0.self_attn.q_proj.weight`) -> (A [r, in], B [out, r]).
    """
    gen = generator(init_seed)
    factors: Factors = {}
    for name in lora_targets(arch, which):
        rows, cols = base[name].shape
        a = (torch.rand(rank, cols, generator=gen) * 2 - 1) / math.sqrt(cols)
        factors[name] = (a.requires_grad_(True), torch.zeros(rows, rank, requires_grad=True))
    src = markov_source(arch.vocab, data_seed)
    # The batch order is the sibling's own: two siblings see the same chain, not the same batches.
    data = sample_tokens(
        src, settings.batch * settings.steps, settings.seq_len, generator(init_seed + 1)
    )
    opt = torch.optim.AdamW(
        [t for pair in factors.values() for t in pair], lr=settings.lr, betas=(0.9, 0.95),
        weight_decay=0.0,
    )  # fmt: skip
    scale = alpha / rank
    for tokens in data.split(settings.batch):
        eff = {**base, **{n: base[n] + scale * (b @ a) for n, (a, b) in factors.items()}}
        logits = forward(arch, eff, tokens[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return {n: (a.detach().clone(), b.detach().clone()) for n, (a, b) in factors.items()}


def finetune(
    arch: Arch, base: Params, settings: TrainSettings, *, data_seed: int, order_seed: int
) -> Params:
    """A full fine-tune on `data_seed`'s chain with its own batch order (`order_seed`).

    `zoo_train.train` draws the batch order from the data seed, so two of its fine-tunes on one
    chain would be the same model: siblings need their own order.
    """
    live = {n: t.detach().clone().requires_grad_(True) for n, t in base.items()}
    opt = torch.optim.AdamW(
        list(live.values()), lr=settings.lr, betas=(0.9, 0.95), weight_decay=settings.weight_decay
    )
    src = markov_source(arch.vocab, data_seed)
    data = sample_tokens(
        src, settings.batch * settings.steps, settings.seq_len, generator(order_seed)
    )
    for tokens in data.split(settings.batch):
        logits = forward(arch, live, tokens[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return {n: t.detach() for n, t in live.items()}


def write_model(folder: Path, params: Params) -> Path:
    """A model folder holding only model.safetensors (enough for `open_local_model`)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({n: t.contiguous() for n, t in params.items()}, str(folder / "model.safetensors"))
    return folder


def random_lora(
    arch: Arch, base: Params, seed: int, rank: int = RANK, which: str = "qv"
) -> Factors:
    """Gaussian factors of the same shapes: an update that learnt nothing."""
    gen = generator(seed)
    out: Factors = {}
    for name in lora_targets(arch, which):
        rows, cols = base[name].shape
        out[name] = (torch.randn(rank, cols, generator=gen), torch.randn(rows, rank, generator=gen))
    return out


def write_peft_adapter(
    folder: Path,
    factors: Factors,
    *,
    rank: int = RANK,
    alpha: float = ALPHA,
    base_model: str = "zoo/adapter-base",
) -> Path:
    """Write `factors` as PEFT's `save_pretrained` does: the weights' module names under
    `base_model.model.`, `.lora_A.weight` / `.lora_B.weight`, and its adapter_config.json."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    modules: set[str] = set()
    for name, (a, b) in factors.items():
        module = name.removesuffix(".weight")
        tensors[f"base_model.model.{module}.lora_A.weight"] = a.contiguous()
        tensors[f"base_model.model.{module}.lora_B.weight"] = b.contiguous()
        modules.add(module.rsplit(".", 1)[-1])
    save_file(tensors, str(folder / "adapter_model.safetensors"), metadata={"format": "pt"})
    config = {
        "base_model_name_or_path": base_model,
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": True,
        "lora_alpha": alpha,
        "lora_dropout": 0.0,
        "modules_to_save": None,
        "peft_type": "LORA",
        "r": rank,
        "target_modules": sorted(modules),
        "task_type": "CAUSAL_LM",
        "use_rslora": False,
    }
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")
    return folder


def run_seed(
    seed: int,
    workdir: Path,
    *,
    arch: Arch = ARCH,
    base_training: TrainSettings = BASE_TRAINING,
    adapter_training: TrainSettings = ADAPTER_TRAINING,
    finetune_training: TrainSettings | None = FINETUNE_TRAINING,
) -> list[PairScore]:
    """Train one base, its four adapters (and, unless `finetune_training` is None, three full
    fine-tunes) for `seed`, write them as folders and compare the pairs of `KINDS`."""
    task, other = 20_000 + seed, 30_000 + seed
    with deterministic():
        base = train_base(arch, seed, base_training)
        made = {
            "sib1": train_lora(arch, base, adapter_training, data_seed=task, init_seed=100 * seed),
            "sib2": train_lora(
                arch, base, adapter_training, data_seed=task, init_seed=100 * seed + 50
            ),
            "other": train_lora(
                arch, base, adapter_training, data_seed=other, init_seed=100 * seed + 70
            ),
            "random": random_lora(arch, base, 100 * seed + 90),
        }
        tuned = {}
        if finetune_training is not None:
            tuned = {
                name: finetune(arch, base, finetune_training, data_seed=data, order_seed=order)
                for name, data, order in (
                    ("ft1", task, 100 * seed + 11),
                    ("ft2", task, 100 * seed + 61),
                    ("ft-other", other, 100 * seed + 81),
                )
            }
    root = workdir / f"seed{seed}"
    paths = {
        k: str(write_peft_adapter(root / k, f, base_model=f"zoo/base-{seed}"))
        for k, f in made.items()
    }
    scores = [
        PairScore(seed, kind, compare_adapters(paths[a], paths[b]))
        for kind, a, b in (
            ("sibling", "sib1", "sib2"),
            ("unrelated", "sib1", "other"),
            ("random", "sib1", "random"),
        )
    ]
    if tuned:
        base_path = str(write_model(root / "base", base))
        ft = {k: str(write_model(root / k, p)) for k, p in tuned.items()}
        scores += [
            PairScore(seed, kind, compare_finetunes(base_path, ft[a], ft[b], k=FINETUNE_K))
            for kind, a, b in (("ft-sibling", "ft1", "ft2"), ("ft-unrelated", "ft1", "ft-other"))
        ]
    return scores


def run(seeds: list[int], workdir: Path) -> list[PairScore]:
    """`run_seed` over `seeds`, in order."""
    return [score for seed in seeds for score in run_seed(seed, workdir)]
