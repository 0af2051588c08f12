"""The zoo's metadata, model cards and truth: everything written in the main process.

Hub-style metadata (downloads, dates, tags) is drawn from the zoo seed; cards declare what
each `Spec` says; `truth.json` records what was really done and every injected anomaly.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import yaml

from lineage.lab.zoo_plan import (
    BASE_DATE,
    CARD_RELATION,
    LICENSES,
    RELATION_OF_KIND,
    Spec,
    declared_bases,
    root_of,
    seed_for,
)

__all__ = ["metadata", "truth", "truth_anomalies", "write_card", "write_json"]


def metadata(plan: tuple[Spec, ...], seed: int) -> dict[str, dict]:
    """Hub-style ModelMeta per model: heavy-tailed downloads, creation dates after parents.

    Each model draws from its own stream (seeded by the zoo seed and its id), so adding a model
    to the plan leaves every other model's metadata as it was.
    """
    created: dict[str, datetime] = {}
    metas = {}
    for spec in plan:
        rng = np.random.default_rng(seed_for(seed, "metadata", spec.id))
        org = spec.id.split("/")[0]
        root_org = root_of(spec.id).split("/")[0]
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
    return "apache-2.0" if spec.kind == "disguised" else LICENSES[root_of(spec.id).split("/")[0]]


def _tags(spec: Spec) -> list[str]:
    fmt = spec.kind.split("_")[0]
    storage = {"gguf": "gguf", "onnx": "onnx"}.get(fmt, "safetensors")
    tags = ["transformers", storage, spec.style, "text-generation"]
    tags += {"lora": ["lora", "peft"], "merge": ["mergekit", "merge"], "quant_int8": ["8-bit"],
             "quant_4bit": ["4-bit"]}.get(spec.kind, [])  # fmt: skip
    relation = CARD_RELATION.get(spec.kind)
    for base in declared_bases(spec):
        tags.append(f"base_model:{base}")
        if relation:
            tags.append(f"base_model:{relation}:{base}")
    tags.append(f"license:{_license(spec)}")
    return tags


def write_card(repo: Path, spec: Spec, meta: dict) -> None:
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


def truth(plan: tuple[Spec, ...], metas: dict[str, dict], seed: int) -> dict:
    models = {
        s.id: {"family": root_of(s.id), "parents": list(s.parents), "kind": s.kind,
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
            foreign = [d for d in declared if root_of(d) != root_of(s.id)]
            if foreign and downloads > 100:
                out.append({"model": s.id, "kind": "mislabeled", "related": foreign})
    return out


def write_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")
