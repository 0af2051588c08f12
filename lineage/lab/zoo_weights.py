"""The zoo's weights: derive each model of a family from its parents and write its files.

Runs in worker processes (see `lineage.lab.zoo`); one family at a time, start to end, so a
family's models only depend on the zoo seed and their names.
"""

from __future__ import annotations

import importlib
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from lineage.lab import zoo_nets as zn
from lineage.lab import zoo_train as zt
from lineage.lab.zoo_meta import write_json
from lineage.lab.zoo_plan import FORMAT_KINDS, PLAN, SIZES, Size, Spec, root_of, seed_for

__all__ = ["RECIPES", "FamilyJob", "run_family"]


@dataclass(frozen=True, slots=True)
class FamilyJob:
    """One family: its specs in plan order, generated start to end by one process."""

    root: str
    size: str
    seed: int
    out: str


def run_family(job: FamilyJob) -> None:
    """Derive and write every model of `job`'s family, parents first, under `job.out/repos`."""
    size = SIZES[job.size]
    specs = [s for s in PLAN if root_of(s.id) == job.root]
    last_use = {p: i for i, s in enumerate(specs) for p in s.parents}
    models: dict[str, tuple[zn.Arch, zn.Params]] = {}
    with zn.deterministic(), torch.no_grad():
        for i, spec in enumerate(specs):
            repo = Path(job.out) / "repos" / spec.id
            if spec.kind == "reupload":
                _copy_weights(Path(job.out) / "repos" / spec.parents[0], repo)
                models[spec.id] = models[spec.parents[0]]
            elif spec.kind in FORMAT_KINDS:
                arch, params = models[spec.parents[0]]
                _write_format(
                    spec.kind, repo, _to_dtype(params, "float32"), _config(arch, "float16")
                )
                models[spec.id] = (arch, params)
            else:
                arch, params = _derive(spec, models, size, job.seed)
                params = _to_dtype(params, spec.dtype)
                _write_weights(
                    repo,
                    params,
                    max(spec.shards, math.ceil(_nbytes(params) / size.max_shard_bytes)),
                )
                write_json(repo / "config.json", _config(arch, spec.dtype))
                models[spec.id] = (arch, params)
            for done in [m for m in models if last_use.get(m, -1) <= i and m != spec.id]:
                del models[done]  # large zoos: keep only models that still have children to come


@dataclass(frozen=True, slots=True)
class _Step:
    """What a recipe needs besides the parent: the spec, training settings and seeds."""

    spec: Spec
    settings: zt.TrainSettings
    data_seed: int
    seed: int
    models: dict


Recipe = Callable[[_Step, zn.Arch, zn.Params], tuple[zn.Arch, zn.Params]]


def _finetune(s: _Step, arch: zn.Arch, parent: zn.Params) -> tuple[zn.Arch, zn.Params]:
    with torch.enable_grad():
        return arch, zt.train(arch, parent, s.settings, data_seed=s.data_seed)


def _partial(s: _Step, arch: zn.Arch, parent: zn.Params) -> tuple[zn.Arch, zn.Params]:
    layers = set(s.spec.train_layers)
    with torch.enable_grad():
        return arch, zt.train(arch, parent, s.settings, data_seed=s.data_seed,
                              trainable=lambda n: zt.layer_index(n) in layers)  # fmt: skip


def _lora(s: _Step, arch: zn.Arch, parent: zn.Params) -> tuple[zn.Arch, zn.Params]:
    targets = zt.lora_targets(arch, s.spec.lora)
    with torch.enable_grad():
        return arch, zt.lora_finetune(arch, parent, s.settings, data_seed=s.data_seed,
                                      targets=targets, rank=s.spec.rank,
                                      alpha=2.0 * s.spec.rank)  # fmt: skip


def _vocab_ext(s: _Step, arch: zn.Arch, parent: zn.Params) -> tuple[zn.Arch, zn.Params]:
    arch, grown = zt.extend_vocab(
        arch, parent, 8, zn.generator(seed_for(s.seed, s.spec.id, "vocab"))
    )
    with torch.enable_grad():
        return arch, zt.train(arch, grown, s.settings, data_seed=s.data_seed)


def _cast(s: _Step, arch: zn.Arch, parent: zn.Params) -> tuple[zn.Arch, zn.Params]:
    return arch, parent  # the dtype is applied when the weights are written


def _quantize(s: _Step, arch: zn.Arch, parent: zn.Params) -> tuple[zn.Arch, zn.Params]:
    quant = zt.quant_int8 if s.spec.kind == "quant_int8" else zt.quant_4bit
    return arch, {n: quant(t) if zt.is_quantizable(arch, n, t) else t for n, t in parent.items()}


def _merge(s: _Step, arch: zn.Arch, parent: zn.Params) -> tuple[zn.Arch, zn.Params]:
    other = _to_dtype(s.models[s.spec.parents[1]][1], "float32")
    return arch, zt.merge_linear(parent, other, s.spec.merge_weight)


def _disguise(s: _Step, arch: zn.Arch, parent: zn.Params) -> tuple[zn.Arch, zn.Params]:
    if s.spec.method == "noise":
        return arch, zt.add_noise(parent, 0.01, zn.generator(seed_for(s.seed, s.spec.id, "noise")))
    return arch, zt.prune_smallest(parent, 0.10)


# Generator kind (docs/contracts.md) -> how the model is made from its first parent (in float32).
RECIPES: dict[str, Recipe] = {
    "finetune": _finetune, "chain": _finetune, "partial": _partial, "lora": _lora,
    "vocab_ext": _vocab_ext, "cast": _cast, "quant_int8": _quantize, "quant_4bit": _quantize,
    "merge": _merge, "disguised": _disguise,
}  # fmt: skip


def _derive(spec: Spec, models: dict, size: Size, seed: int) -> tuple[zn.Arch, zn.Params]:
    steps = max(2, round(spec.steps * size.step_scale)) if spec.steps else 0
    settings = zt.TrainSettings(steps=steps, lr=spec.lr, batch=size.batch, seq_len=size.seq_len)
    data_seed = seed_for(seed, spec.id, "data")
    if spec.kind == "root":
        arch = replace(size.llama if spec.style == "llama" else size.gpt2, tied=spec.tied)
        params = zn.init_params(arch, zn.generator(seed_for(seed, spec.id, "init")))
        with torch.enable_grad():
            return arch, zt.train(arch, params, settings, data_seed=data_seed)
    arch, parent = models[spec.parents[0]]
    recipe = RECIPES.get(spec.kind)
    if recipe is None:
        raise ValueError(f"unknown generator kind {spec.kind!r} for {spec.id}")
    return recipe(
        _Step(spec, settings, data_seed, seed, models), arch, _to_dtype(parent, "float32")
    )


def _to_dtype(params: zn.Params, dtype: str) -> zn.Params:
    want = getattr(torch, dtype)
    return {n: t if t.dtype == want else t.to(want) for n, t in params.items()}


def _nbytes(params: zn.Params) -> int:
    return sum(t.numel() * t.element_size() for t in params.values())


def _write_weights(repo: Path, params: zn.Params, shards: int) -> None:
    """model.safetensors, or HF-style shards in state-dict order plus model.safetensors.index.json."""
    from safetensors.torch import save_file

    repo.mkdir(parents=True, exist_ok=True)
    names = list(params)
    if shards <= 1:
        save_file(
            {n: params[n].contiguous() for n in names},
            str(repo / "model.safetensors"),
            metadata={"format": "pt"},
        )
        return
    total = _nbytes(params)
    groups: list[list[str]] = [[] for _ in range(shards)]
    acc = 0
    for n in names:
        # Cut by cumulative bytes so shards come out about equal, as save_pretrained does.
        groups[min(shards - 1, acc * shards // total)].append(n)
        acc += params[n].numel() * params[n].element_size()
    weight_map = {}
    for i, group in enumerate(groups, 1):
        fname = f"model-{i:05d}-of-{shards:05d}.safetensors"
        save_file(
            {n: params[n].contiguous() for n in group}, str(repo / fname), metadata={"format": "pt"}
        )
        weight_map.update(dict.fromkeys(group, fname))
    write_json(
        repo / "model.safetensors.index.json",
        {"metadata": {"total_size": total}, "weight_map": weight_map},
    )


def _write_format(kind: str, repo: Path, params: zn.Params, config: dict) -> None:
    """The parent's weights as a quantized or converted upload in a real file format."""
    target, options = FORMAT_KINDS[kind]
    module, _, name = target.partition(":")
    writer = getattr(importlib.import_module(module), name)
    repo.mkdir(parents=True, exist_ok=True)
    writer(params, config, repo, **options)


def _copy_weights(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        if f.name != "README.md":
            shutil.copyfile(f, dst / f.name)


def _config(arch: zn.Arch, dtype: str) -> dict:
    if arch.style == "llama":
        return {
            "architectures": ["LlamaForCausalLM"], "attention_bias": False, "bos_token_id": 1,
            "eos_token_id": 2, "hidden_act": "silu", "hidden_size": arch.hidden,
            "initializer_range": 0.02, "intermediate_size": arch.intermediate,
            "max_position_embeddings": arch.max_positions, "model_type": "llama",
            "num_attention_heads": arch.heads, "num_hidden_layers": arch.layers,
            "num_key_value_heads": arch.heads, "rms_norm_eps": 1e-06, "rope_theta": 10000.0,
            "tie_word_embeddings": arch.tied, "torch_dtype": dtype, "transformers_version": "4.44.2",
            "use_cache": True, "vocab_size": arch.vocab,
        }  # fmt: skip
    return {
        "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "bos_token_id": 0,
        "eos_token_id": 0, "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "model_type": "gpt2",
        "n_embd": arch.hidden, "n_head": arch.heads, "n_inner": arch.intermediate, "n_layer": arch.layers,
        "n_positions": arch.max_positions, "tie_word_embeddings": True, "torch_dtype": dtype,
        "transformers_version": "4.44.2", "vocab_size": arch.vocab,
    }  # fmt: skip
