"""Synthetic pair results shared by the report and plot tests: three families, a merge, a planted
copy and a planted mislabel, with per-slot lists whose mean and std are each pair's overlap."""

from __future__ import annotations

import itertools
import math

import numpy as np

from hub.records import DeclaredBase, ModelRecord
from lineage.store import PairRow

# id: (family, parents, relation, downloads, created, declared bases, anomalies)
MODELS = {
    "meta/llama-base": ("meta/llama-base", [], None, 500_000, "2023-01-01", [], []),
    "org1/llama-chat": (
        "meta/llama-base",
        ["meta/llama-base"],
        "finetune",
        20_000,
        "2023-02-01",
        ["meta/llama-base"],
        [],
    ),
    "org4/llama-code": (
        "meta/llama-base",
        ["meta/llama-base"],
        "finetune",
        2_000,
        "2023-02-15",
        ["meta/llama-base"],
        [],
    ),
    "org2/llama-chat-int8": (
        "meta/llama-base",
        ["org1/llama-chat"],
        "quantized",
        300,
        "2023-03-01",
        ["org1/llama-chat"],
        [],
    ),
    "org3/llama-merge": (
        "meta/llama-base",
        ["org1/llama-chat", "org4/llama-code"],
        "merge",
        90,
        "2023-04-01",
        ["org1/llama-chat"],
        ["undeclared_merge"],
    ),
    "u1/llama-copy": (
        "meta/llama-base",
        ["meta/llama-base"],
        "copy",
        3,
        "2023-05-01",
        [],
        ["suspicious_copy", "missing_base"],
    ),
    "u2/llama-tiny-ft": (
        "meta/llama-base",
        ["org1/llama-chat"],
        "finetune",
        40,
        "2023-06-01",
        ["org1/llama-chat"],
        [],
    ),
    "qwen/qwen-base": ("qwen/qwen-base", [], None, 300_000, "2023-01-10", [], []),
    "qwen/qwen-instruct": (
        "qwen/qwen-base",
        ["qwen/qwen-base"],
        "finetune",
        5_000,
        "2023-02-10",
        ["qwen/qwen-base"],
        [],
    ),
    "u3/qwen-lora": (
        "qwen/qwen-base",
        ["qwen/qwen-instruct"],
        "adapter",
        8,
        "2023-03-10",
        ["qwen/qwen-instruct"],
        [],
    ),
    "u4/qwen-mislabeled": (
        "qwen/qwen-base",
        ["qwen/qwen-base"],
        "finetune",
        250,
        "2023-04-10",
        ["meta/llama-base"],
        ["declared_base_mismatch", "mislabeled"],
    ),
    "x/mistral": ("x/mistral", [], None, 1_500, "2023-01-20", [], []),
    "y/mistral-partial": (
        "x/mistral",
        ["x/mistral"],
        "partial",
        60,
        "2023-02-20",
        ["x/mistral"],
        [],
    ),
}
COPY_PAIR = ("meta/llama-base", "u1/llama-copy")
MISLABELED_PAIR = ("meta/llama-base", "u4/qwen-mislabeled")
PARTIAL_PAIR = ("x/mistral", "y/mistral-partial")
N_SLOTS = 12


def synthetic_models() -> list[ModelRecord]:
    return [
        ModelRecord(
            id=m,
            downloads=dl,
            created_at=f"{created}T00:00:00.000Z",
            declared_bases=tuple(DeclaredBase(b, "finetune") for b in bases),
        )
        for m, (_, _, _, dl, created, bases, _) in MODELS.items()
    ]


def _per_slot(pair: tuple[str, str], rng: np.random.Generator) -> list[float]:
    a, b = pair
    if pair == COPY_PAIR:
        return list(rng.uniform(0.95, 0.99, N_SLOTS))
    if pair == PARTIAL_PAIR:  # half the layers frozen, half retrained
        return [1.0] * (N_SLOTS // 2) + list(rng.uniform(0.003, 0.01, N_SLOTS // 2))
    if MODELS[a][0] == MODELS[b][0] and pair != MISLABELED_PAIR:
        center = rng.uniform(0.3, 0.8)
        return list(np.clip(rng.normal(center, 0.06, N_SLOTS), 0.2, 0.88))
    return list(rng.uniform(0.002, 0.012, N_SLOTS))


def synthetic_pairs() -> list[PairRow]:
    """All 78 pairs, a < b, with per-slot lists whose mean and std are the pair's overlap."""
    rng = np.random.default_rng(6)
    rows = []
    for a, b in itertools.combinations(sorted(MODELS), 2):
        ov = np.array(_per_slot((a, b), rng))
        ident = np.where(ov > 0.99, 1.0, 0.0)
        per_slot = [
            {
                "tensor": f"layers.{i}.mlp.down_proj.weight",
                "overlap": float(o),
                "identity": float(d),
            }
            for i, (o, d) in enumerate(zip(ov, ident, strict=True))
        ]
        rows.append(
            PairRow(
                a=a,
                b=b,
                revision_a="r",
                revision_b="r",
                overlap=float(ov.mean()),
                identity=float(ident.mean()),
                p_value=1e-300 if ov.mean() > 0.1 else 0.5,
                log10_p=-300.0 if ov.mean() > 0.1 else math.log10(0.5),
                slots_compared=N_SLOTS,
                verdict="derived" if ov.mean() > 0.1 else "unrelated",
                detail={
                    "overlap_std": float(ov.std()),
                    "overlap_median": float(np.median(ov)),
                    "overlap_min": float(ov.min()),
                    "per_slot": per_slot,
                },
            )
        )
    return rows


def synthetic_tree() -> dict:
    overlaps = {(p.a, p.b): p for p in synthetic_pairs()}
    nodes, edges = [], []
    for m, (family, parents, relation, dl, created, bases, anomalies) in MODELS.items():
        nodes.append(
            {
                "id": m,
                "family": family,
                "parent": parents[0] if parents else None,
                "parents": parents,
                "relation": relation,
                "confidence": 1.0 if dl > 100 else 0.7 if dl > 10 else 0.3,
                "downloads": dl,
                "created_at": f"{created}T00:00:00Z",
                "declared_base": bases,
                "anomalies": anomalies,
            }
        )
        for p in parents:
            row = overlaps[tuple(sorted((p, m)))]
            edges.append(
                {
                    "parent": p,
                    "child": m,
                    "overlap": row.overlap,
                    "identity": row.identity,
                    "p_value": row.p_value,
                    "confidence": nodes[-1]["confidence"],
                    "relation": relation,
                }
            )
    return {"nodes": nodes, "edges": edges}
