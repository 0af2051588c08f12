"""A model zoo with known lineage: tiny real models written as Hugging Face repos, plus the truth.

`generate_zoo(out_dir, size="tiny", seed=0)` trains several independent base models per
architecture, derives the others from them with real recipes (fine-tunes, chains, LoRA, partial
fine-tunes, casts, quantization round trips, merges, re-uploads, vocabulary extensions, disguised
copies), and writes the layout of docs/contracts.md: `manifest.json` (Hub-style metadata),
`truth.json` (what was really done, and every injected anomaly) and `repos/<org>/<name>/`.

The zoo is a pure function of (size, seed): no clock, no global random state, one CPU thread per
worker, sorted JSON. Families are independent, so they are generated in worker processes; the
result does not depend on how many.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import yaml

from lineage.lab import zoo_train as zt

# Where generator kinds (docs/contracts.md) map to tool relations and to what a card would declare.
RELATION_OF_KIND = {
    "root": None, "finetune": "finetune", "chain": "finetune", "vocab_ext": "finetune",
    "disguised": "finetune", "lora": "adapter", "partial": "partial", "cast": "copy",
    "reupload": "copy", "quant_int8": "quantized", "quant_4bit": "quantized", "merge": "merge",
}  # fmt: skip
# `base_model_relation` on the card; casts and re-uploads have no Hub relation, so none is written.
CARD_RELATION = {
    "finetune": "finetune", "chain": "finetune", "vocab_ext": "finetune", "partial": "finetune",
    "disguised": "finetune", "lora": "adapter", "quant_int8": "quantized", "quant_4bit": "quantized",
    "merge": "merge",
}  # fmt: skip
LICENSES = {"aurora-labs": "apache-2.0", "cobalt-ai": "mit", "meridian-research": "llama3",
            "opencraft": "mit", "lumen-nlp": "apache-2.0"}  # fmt: skip
BASE_DATE = datetime(2023, 3, 1, tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class Spec:
    """One model of the plan. Fields not used by its kind keep their defaults.

    Attributes:
        declares: card `base_model`: None declares the true parents, () declares nothing,
            a tuple declares exactly those ids (possibly wrong).
        downloads: fixed 30-day downloads (anomaly rules depend on them), None to sample.
        before_parent: dated before its parent (the rare Hub exception to "parents are older").
    """

    id: str
    kind: str
    parents: tuple[str, ...] = ()
    style: str = "llama"
    tied: bool = False
    steps: int = 0
    lr: float = 0.0
    declares: tuple[str, ...] | None = None
    downloads: int | None = None
    shards: int = 1
    before_parent: bool = False
    dtype: str = "float32"
    lora: str = ""
    rank: int = 8
    train_layers: tuple[int, ...] = ()
    merge_weight: float = 0.5
    method: str = ""


A, B, C = "aurora-labs/Aurora-Base", "cobalt-ai/Cobalt-LM", "meridian-research/Meridian-7"
A1, B1, C1 = (
    "aurora-labs/Aurora-Instruct",
    "cobalt-ai/Cobalt-LM-Chat",
    "meridian-research/Meridian-7-Instruct",
)
D, E = "opencraft/craft-gpt", "lumen-nlp/lumen-gpt"
# Family by family, parents first. Steps are for the tiny size (scaled by Size.step_scale).
PLAN: tuple[Spec, ...] = (
    Spec(A, "root", steps=60, lr=2e-3, shards=2),
    Spec(A1, "finetune", (A,), steps=15, lr=1e-4),
    Spec("bytewright/Aurora-Base-code", "finetune", (A,), steps=15, lr=3e-4),
    Spec("cedar-ml/Aurora-Roleplay-v1", "finetune", (A,), steps=80, lr=2e-3),  # aggressive
    Spec("dunefox/Aurora-Instruct-dpo", "chain", (A1,), steps=12, lr=5e-5),
    Spec("emberfield/Aurora-Instruct-dpo-v2", "chain", ("dunefox/Aurora-Instruct-dpo",), steps=12, lr=5e-5),
    Spec("frostbyte/Aurora-dpo-v2-medical", "chain", ("emberfield/Aurora-Instruct-dpo-v2",), steps=12,
         lr=1e-4, declares=("dunefox/Aurora-Instruct-dpo",)),  # declares its grandparent
    Spec("gale-ai/Aurora-Base-lora-qv", "lora", (A,), steps=15, lr=1e-3, lora="qv", rank=8),
    Spec("harborlight/Aurora-Instruct-lora-all", "lora", (A1,), steps=15, lr=1e-3, lora="all", rank=16),
    Spec("ivy-tensor/Aurora-Base-partial", "partial", (A,), steps=15, lr=3e-4, train_layers=(2, 3)),
    Spec("quantbarn/Aurora-Instruct-bf16", "cast", (A1,), dtype="bfloat16"),
    Spec("quantbarn/Aurora-Instruct-int8", "quant_int8", (A1,)),
    Spec("bitpress/Aurora-Base-4bit", "quant_4bit", (A,), dtype="float16"),
    Spec("juniper-lab/Aurora-Merge", "merge", ("bytewright/Aurora-Base-code", "cedar-ml/Aurora-Roleplay-v1")),
    Spec("kestrel-dev/Aurora-Base", "reupload", (A,), declares=(), downloads=3),
    Spec("lumen-tinker/Aurora-Base-ext-vocab", "vocab_ext", (A,), steps=12, lr=3e-4),
    Spec("mossy-weights/SuperModel-v1", "disguised", (A1,), declares=(), downloads=4, method="noise"),
    Spec(B, "root", tied=True, steps=60, lr=2e-3),
    Spec(B1, "finetune", (B,), steps=15, lr=1e-4),
    Spec("nimbus-ml/Cobalt-Chat-ft", "chain", (B1,), steps=12, lr=1e-4),
    Spec("orchid-ai/Cobalt-Chat-ft-v2", "chain", ("nimbus-ml/Cobalt-Chat-ft",), steps=12, lr=1e-4),
    Spec("pinecone-dev/Cobalt-LM-lora", "lora", (B,), steps=15, lr=1e-3, lora="qv", rank=4),
    Spec("quill-nlp/Cobalt-LM-partial", "partial", (B,), steps=15, lr=3e-4, train_layers=(0, 1)),
    Spec("quantbarn/Cobalt-LM-Chat-fp16", "cast", (B1,), dtype="float16"),
    Spec("bitpress/Cobalt-LM-Chat-4bit", "quant_4bit", (B1,), dtype="float16"),
    Spec("ridge-ai/Cobalt-Math", "finetune", (B,), steps=30, lr=5e-4, declares=(A,), downloads=540),
    Spec("sable-ml/Cobalt-Blend", "merge", (B1, "ridge-ai/Cobalt-Math"), declares=(B1,), merge_weight=0.6),
    Spec("tundra-labs/Cobalt-Prune", "disguised", (B1,), declares=(), method="prune"),
    Spec("umber-dev/Cobalt-LM-Chat", "reupload", (B1,), downloads=40),
    Spec("vale-ai/Cobalt-int8", "quant_int8", (B,), declares=()),
    Spec(C, "root", steps=60, lr=2e-3, shards=2),
    Spec(C1, "finetune", (C,), steps=15, lr=1e-4),
    Spec("willow-ai/Meridian-Instruct-code", "chain", (C1,), steps=12, lr=2e-4),
    Spec("xenon-ml/Meridian-code-v2", "chain", ("willow-ai/Meridian-Instruct-code",), steps=12, lr=1e-4),
    Spec("yarrow-dev/Meridian-code-v3", "chain", ("xenon-ml/Meridian-code-v2",), steps=12, lr=1e-4),
    Spec("zephyr-nlp/Meridian-7-lora-all", "lora", (C,), steps=15, lr=1e-3, lora="all", rank=8),
    Spec("quantbarn/Meridian-7-Instruct-int8", "quant_int8", (C1,)),
    Spec("quantbarn/Meridian-7-bf16", "cast", (C,), dtype="bfloat16"),
    Spec("amber-ai/Meridian-Story", "finetune", (C,), steps=50, lr=1e-3, declares=(B,), downloads=20),
    Spec("birch-ml/Meridian-7-partial", "partial", (C,), steps=15, lr=3e-4, train_layers=(1, 2)),
    Spec("copper-dev/Meridian-Instruct-ext", "vocab_ext", (C1,), steps=12, lr=3e-4, shards=2),
    Spec("delta-weights/Meridian-Merge", "merge", (C1, "birch-ml/Meridian-7-partial")),
    Spec("echo-ai/Meridian-7-Instruct-ft", "chain", (C1,), steps=12, lr=1e-4, declares=(), before_parent=True),
    Spec(D, "root", style="gpt2", tied=True, steps=60, lr=2e-3),
    Spec("opencraft/craft-gpt-instruct", "finetune", (D,), style="gpt2", steps=15, lr=1e-4),
    Spec("fjord-ml/craft-gpt-poetry", "chain", ("opencraft/craft-gpt-instruct",), style="gpt2", steps=12, lr=2e-4),
    Spec("quantbarn/craft-gpt-int8", "quant_int8", (D,), style="gpt2"),
    Spec("grove-dev/craft-gpt", "reupload", (D,), style="gpt2", declares=(), downloads=1),
    Spec("heron-ai/craft-gpt-lora", "lora", (D,), style="gpt2", steps=15, lr=1e-3, lora="qv", rank=8),
    Spec(E, "root", style="gpt2", tied=True, steps=60, lr=2e-3),
    Spec("iris-ml/lumen-gpt-chat", "finetune", (E,), style="gpt2", steps=15, lr=1e-4, before_parent=True),
    Spec("quantbarn/lumen-gpt-chat-fp16", "cast", ("iris-ml/lumen-gpt-chat",), style="gpt2", dtype="float16"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Size:
    """Model dimensions and training effort for one zoo size."""

    llama: zt.Arch
    gpt2: zt.Arch
    step_scale: float
    batch: int = 4
    seq_len: int = 32
    max_shard_bytes: int = 2**31


SIZES = {
    "tiny": Size(zt.Arch("llama", 128, 4, 1024, 512, 4), zt.Arch("gpt2", 192, 3, 768, 768, 4), 1.0),
    "small": Size(zt.Arch("llama", 256, 6, 4096, 1024, 8), zt.Arch("gpt2", 384, 4, 4096, 1536, 6), 0.5),
    # A few hundred MB per fp32 model, for benchmarks: a few optimizer steps only.
    "large": Size(zt.Arch("llama", 768, 8, 16384, 2048, 12), zt.Arch("gpt2", 768, 8, 16384, 3072, 12),
                  0.04, max_shard_bytes=200 * 2**20),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ZooSummary:
    """What `generate_zoo` wrote: model count, family roots, and the zoo folder."""

    n_models: int
    families: tuple[str, ...]
    path: Path


@dataclass(frozen=True, slots=True)
class _Job:
    """One family: its specs in plan order, generated start to end by one process."""

    root: str
    size: str
    seed: int
    out: str


def generate_zoo(
    out_dir: str | os.PathLike, *, size: str = "tiny", seed: int = 0, workers: int | None = None
) -> ZooSummary:
    """Train and write the whole zoo into `out_dir` (replacing a zoo already there).

    Args:
        out_dir: folder to write; created if needed. A non-empty folder that is not a zoo is refused.
        size: "tiny" (seconds), "small" or "large" (models of a few hundred MB).
        seed: everything random (weights, data, downloads, dates) follows from it.
        workers: processes to use; default min(2, CPUs). The files do not depend on it.

    Returns:
        The summary, with `families` the root ids in plan order.
    """
    if size not in SIZES:
        raise ValueError(f"unknown zoo size {size!r}: use one of {', '.join(SIZES)}")
    out = Path(out_dir)
    _prepare(out)
    families = _families(PLAN)
    jobs = [_Job(root, size, seed, str(out)) for root in families]
    _run_jobs(jobs, workers or min(2, os.cpu_count() or 1))
    metas = _metadata(PLAN, seed)
    for spec in PLAN:
        _write_card(out / "repos" / spec.id, spec, metas[spec.id])
    _write_json(out / "manifest.json", {"models": [metas[s.id] for s in PLAN]})
    _write_json(out / "truth.json", _truth(PLAN, metas, seed))
    return ZooSummary(len(PLAN), tuple(families), out)


def _run_jobs(jobs: list[_Job], workers: int) -> None:
    """Generate families in `workers` child interpreters (plain subprocesses, not multiprocessing,
    so callers need no `if __name__ == "__main__"` guard), or in this process when workers == 1."""
    if workers <= 1 or len(jobs) == 1:
        for job in jobs:
            _run_family(job)
        return
    # Greedy bin packing by training steps, so the workers finish at about the same time.
    bins: list[list[_Job]] = [[] for _ in range(min(workers, len(jobs)))]
    loads = [0] * len(bins)
    for job in sorted(jobs, key=lambda j: -sum(s.steps for s in PLAN if _root_of(s.id) == j.root)):
        i = loads.index(min(loads))
        bins[i].append(job)
        loads[i] += sum(s.steps for s in PLAN if _root_of(s.id) == job.root)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            filter(None, [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH")])
        ),
    )
    code = (
        "import sys, json; from lineage.lab.zoo import _worker_main; _worker_main(json.load(sys.stdin))"
    )
    with ThreadPoolExecutor(max_workers=len(bins)) as pool:
        runs = [
            pool.submit(subprocess.run, [sys.executable, "-c", code], input=json.dumps([asdict(j) for j in b]),
                        text=True, capture_output=True, env=env)
            for b in bins
        ]  # fmt: skip
        for run in runs:
            done = run.result()
            if done.returncode:
                raise RuntimeError(
                    f"zoo worker failed (exit {done.returncode}):\n{done.stderr[-4000:]}"
                )


def _worker_main(jobs: list[dict]) -> None:
    """Entry point of a worker interpreter: generate the families it was given."""
    for job in jobs:
        _run_family(_Job(**job))


def _prepare(out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        if not (out / "manifest.json").exists():
            raise FileExistsError(
                f"{out} is not empty and holds no zoo; choose an empty or new folder"
            )
        shutil.rmtree(out / "repos", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)


@functools.cache
def _root_of(model_id: str) -> str:
    """The family root of a plan model: follow first parents up."""
    spec = next(s for s in PLAN if s.id == model_id)
    return model_id if not spec.parents else _root_of(spec.parents[0])


def _families(plan: tuple[Spec, ...]) -> list[str]:
    return [s.id for s in plan if s.kind == "root"]


def _seed_for(seed: int, *parts: str) -> int:
    """A stable 63-bit seed from the zoo seed and names (Python's hash() is salted per process)."""
    digest = hashlib.sha256(":".join([str(seed), *parts]).encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


# ---------------------------------------------------------------------------------------------
# Weights (runs in worker processes)


def _run_family(job: _Job) -> None:
    import torch

    size = SIZES[job.size]
    specs = [s for s in PLAN if _root_of(s.id) == job.root]
    last_use = {p: i for i, s in enumerate(specs) for p in s.parents}
    models: dict[str, tuple[zt.Arch, zt.Params]] = {}
    with zt.deterministic(), torch.no_grad():
        for i, spec in enumerate(specs):
            repo = Path(job.out) / "repos" / spec.id
            if spec.kind == "reupload":
                _copy_weights(Path(job.out) / "repos" / spec.parents[0], repo)
                models[spec.id] = models[spec.parents[0]]
            else:
                arch, params = _derive(spec, models, size, job.seed)
                params = _to_dtype(params, spec.dtype)
                _write_weights(
                    repo,
                    params,
                    max(spec.shards, math.ceil(_nbytes(params) / size.max_shard_bytes)),
                )
                _write_json(repo / "config.json", _config(arch, spec.dtype))
                models[spec.id] = (arch, params)
            for done in [m for m in models if last_use.get(m, -1) <= i and m != spec.id]:
                del models[done]  # large zoos: keep only models that still have children to come


def _derive(spec: Spec, models: dict, size: Size, seed: int) -> tuple[zt.Arch, zt.Params]:
    import torch

    steps = max(2, round(spec.steps * size.step_scale)) if spec.steps else 0
    settings = zt.TrainSettings(steps=steps, lr=spec.lr, batch=size.batch, seq_len=size.seq_len)
    data_seed = _seed_for(seed, spec.id, "data")
    if spec.kind == "root":
        arch = replace(size.llama if spec.style == "llama" else size.gpt2, tied=spec.tied)
        params = zt.init_params(arch, zt.generator(_seed_for(seed, spec.id, "init")))
        with torch.enable_grad():
            return arch, zt.train(arch, params, settings, data_seed=data_seed)
    arch, parent = models[spec.parents[0]]
    parent = _to_dtype(parent, "float32")
    if spec.kind in ("finetune", "chain"):
        with torch.enable_grad():
            return arch, zt.train(arch, parent, settings, data_seed=data_seed)
    if spec.kind == "partial":
        layers = set(spec.train_layers)
        with torch.enable_grad():
            return arch, zt.train(arch, parent, settings, data_seed=data_seed,
                                  trainable=lambda n: zt.layer_index(n) in layers)  # fmt: skip
    if spec.kind == "lora":
        targets = zt.lora_targets(arch, spec.lora)
        with torch.enable_grad():
            return arch, zt.lora_finetune(arch, parent, settings, data_seed=data_seed, targets=targets,
                                          rank=spec.rank, alpha=2.0 * spec.rank)  # fmt: skip
    if spec.kind == "vocab_ext":
        arch, grown = zt.extend_vocab(
            arch, parent, 8, zt.generator(_seed_for(seed, spec.id, "vocab"))
        )
        with torch.enable_grad():
            return arch, zt.train(arch, grown, settings, data_seed=data_seed)
    if spec.kind == "cast":
        return arch, parent
    if spec.kind in ("quant_int8", "quant_4bit"):
        quant = zt.quant_int8 if spec.kind == "quant_int8" else zt.quant_4bit
        return arch, {
            n: quant(t) if zt.is_quantizable(arch, n, t) else t for n, t in parent.items()
        }
    if spec.kind == "merge":
        other = _to_dtype(models[spec.parents[1]][1], "float32")
        return arch, zt.merge_linear(parent, other, spec.merge_weight)
    if spec.kind == "disguised":
        if spec.method == "noise":
            return arch, zt.add_noise(parent, 0.01, zt.generator(_seed_for(seed, spec.id, "noise")))
        return arch, zt.prune_smallest(parent, 0.10)
    raise ValueError(f"unknown generator kind {spec.kind!r} for {spec.id}")


def _to_dtype(params: zt.Params, dtype: str) -> zt.Params:
    import torch

    want = getattr(torch, dtype)
    return {n: t if t.dtype == want else t.to(want) for n, t in params.items()}


def _nbytes(params: zt.Params) -> int:
    return sum(t.numel() * t.element_size() for t in params.values())


def _write_weights(repo: Path, params: zt.Params, shards: int) -> None:
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
    _write_json(
        repo / "model.safetensors.index.json",
        {"metadata": {"total_size": total}, "weight_map": weight_map},
    )


def _copy_weights(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        if f.name != "README.md":
            shutil.copyfile(f, dst / f.name)


def _config(arch: zt.Arch, dtype: str) -> dict:
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


# ---------------------------------------------------------------------------------------------
# Metadata, cards and truth (main process)


def declared_bases(spec: Spec) -> tuple[str, ...]:
    """What the card's `base_model` says (see Spec.declares)."""
    return spec.parents if spec.declares is None else spec.declares


def _metadata(plan: tuple[Spec, ...], seed: int) -> dict[str, dict]:
    """Hub-style ModelMeta per model: heavy-tailed downloads, creation dates after parents."""
    rng = np.random.default_rng(_seed_for(seed, "metadata"))
    created: dict[str, datetime] = {}
    metas = {}
    for spec in plan:
        org = spec.id.split("/")[0]
        root_org = _root_of(spec.id).split("/")[0]
        if spec.kind == "root":
            downloads = int(rng.lognormal(math.log(20000), 1.0))
            when = BASE_DATE + timedelta(days=float(rng.uniform(0, 120)))
        else:
            official = org == root_org
            downloads = int(
                rng.lognormal(math.log(2000 if official else 3), 1.0 if official else 1.6)
            )
            parent_date = max(created[p] for p in spec.parents)
            gap = timedelta(days=float(rng.lognormal(math.log(20), 0.8)))
            when = (
                parent_date - timedelta(days=float(rng.uniform(1, 10)))
                if spec.before_parent
                else parent_date + gap
            )
        downloads = spec.downloads if spec.downloads is not None else downloads
        when = when.replace(microsecond=0)
        created[spec.id] = when
        modified = when + timedelta(days=float(rng.uniform(0, 30)))
        metas[spec.id] = {
            "id": spec.id,
            "author": org,
            "downloads": downloads,
            "downloadsAllTime": downloads + int(downloads * rng.uniform(0.5, 20)),
            "likes": int(math.sqrt(downloads) * rng.uniform(0, 0.5)),
            "createdAt": _iso(when),
            "lastModified": _iso(modified.replace(microsecond=0)),
            "tags": _tags(spec),
            "gated": False,
            "pipeline_tag": "text-generation",
            "library_name": "transformers",
            "private": False,
        }
    return metas


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _license(spec: Spec) -> str:
    # Disguised copies launder the license; everything else inherits the family's.
    return "apache-2.0" if spec.kind == "disguised" else LICENSES[_root_of(spec.id).split("/")[0]]


def _tags(spec: Spec) -> list[str]:
    tags = ["transformers", "safetensors", spec.style, "text-generation"]
    tags += {"lora": ["lora", "peft"], "merge": ["mergekit", "merge"], "quant_int8": ["8-bit"],
             "quant_4bit": ["4-bit"]}.get(spec.kind, [])  # fmt: skip
    relation = CARD_RELATION.get(spec.kind)
    for base in declared_bases(spec):
        tags.append(f"base_model:{base}")
        if relation:
            tags.append(f"base_model:{relation}:{base}")
    tags.append(f"license:{_license(spec)}")
    return tags


def _write_card(repo: Path, spec: Spec, meta: dict) -> None:
    front: dict = {
        "license": _license(spec),
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
    }
    declared = declared_bases(spec)
    if declared:
        front["base_model"] = list(declared) if len(declared) > 1 else declared[0]
        if spec.kind in CARD_RELATION:
            front["base_model_relation"] = CARD_RELATION[spec.kind]
    front["tags"] = [t for t in meta["tags"] if not t.startswith(("base_model:", "license:"))]
    links = " and ".join(f"[{d}](https://huggingface.co/{d})" for d in declared)
    what = {
        "adapter": "A LoRA fine-tune of",
        "quantized": "A quantized version of",
        "merge": "A merge of",
    }
    body = f"{what.get(CARD_RELATION.get(spec.kind, ''), 'Based on')} {links}.\n" if declared else (
        "A text-generation model.\n")  # fmt: skip
    text = (
        "---\n"
        + yaml.safe_dump(front, sort_keys=True)
        + "---\n\n"
        + f"# {spec.id.split('/')[1]}\n\n"
        + body
    )
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "README.md").write_text(text, encoding="utf-8")


def _truth(plan: tuple[Spec, ...], metas: dict[str, dict], seed: int) -> dict:
    models = {
        s.id: {"family": _root_of(s.id), "parents": list(s.parents), "kind": s.kind,
               "relation": RELATION_OF_KIND[s.kind], "arch": s.style}
        for s in plan
    }  # fmt: skip
    return {"seed": seed, "models": models, "anomalies": truth_anomalies(plan, metas)}


def truth_anomalies(plan: tuple[Spec, ...], metas: dict[str, dict]) -> list[dict]:
    """The anomalies injected into the zoo, by the rules of docs/evaluation.md.

    A copy (re-upload or disguised) with <10 downloads is a `suspicious_copy`; a derivative that
    declares nothing has `missing_base`; a merge declaring a proper subset of its parents is an
    `undeclared_merge`; any other declaration that differs from the true parents is a
    `declared_base_mismatch`, and also `mislabeled` when a declared base lies in another family
    and the model has >100 downloads.
    """
    out = []
    for s in plan:
        if s.kind == "root":
            continue
        downloads = metas[s.id]["downloads"]
        parents, declared = list(s.parents), list(declared_bases(s))
        if s.kind == "reupload":
            out.append({"model": s.id, "kind": "reupload", "related": parents})
        if s.kind in ("reupload", "disguised") and downloads < 10:
            out.append({"model": s.id, "kind": "suspicious_copy", "related": parents})
        if not declared:
            out.append({"model": s.id, "kind": "missing_base", "related": parents})
        elif s.kind == "merge" and set(declared) < set(parents):
            out.append({"model": s.id, "kind": "undeclared_merge", "related": parents})
        elif set(declared) != set(parents):
            out.append(
                {"model": s.id, "kind": "declared_base_mismatch", "related": parents + declared}
            )
            foreign = [d for d in declared if _root_of(d) != _root_of(s.id)]
            if foreign and downloads > 100:
                out.append({"model": s.id, "kind": "mislabeled", "related": foreign})
    return out


def _write_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")
