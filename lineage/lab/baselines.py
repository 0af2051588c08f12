"""Three baseline lineage methods, scored by lineage/evaluation.py exactly like the tool.

Each reads a zoo folder (manifest.json, README front matter, config.json, safetensors) and returns
the `tree --format json` object, an anomalies list and similarity pairs:

1. `declared`: trust the cards. Parent = first declared `base_model` that is in the zoo.
2. `minhash`: the seed's method. Per tensor, a bottom-k MinHash (k=256) over the distinct value
   bytes; the pair's "avg overlap ratio" is the mean Jaccard estimate over common tensors. Each
   model's parent is its most similar strictly older model (createdAt) above 0.1, else a root.
3. `mother`: MoTHer (Horwitz et al. 2024). Full-weight L2 distance between same-architecture
   models, direction from weight kurtosis, minimum spanning arborescence (Edmonds) per
   architecture, then edges longer than half the median pairwise distance are cut into families.

Details and the reasons for each rule are in docs/evaluation.md.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np

from fingerprint.hashing import splitmix64
from hub.card import split_front_matter

# Tool relation a card's `base_model_relation` stands for; unstated counts as a fine-tune.
_CARD_TO_RELATION = {
    "finetune": "finetune",
    "adapter": "adapter",
    "quantized": "quantized",
    "merge": "merge",
}
_HASH_SEED = 0x9E3779B97F4A7C15


@dataclass(frozen=True, slots=True)
class ZooModel:
    """What a baseline may know about one zoo model: Hub metadata, card, config, weight files."""

    id: str
    arch: str
    created_at: str
    downloads: int
    declared: tuple[str, ...]
    declared_relation: str | None
    files: tuple[Path, ...]


@dataclass(frozen=True, slots=True)
class BaselineResult:
    """A baseline's answer, in the CLI's formats (tree, anomalies) plus pair scores."""

    name: str
    tree: dict
    anomalies: list[dict]
    pairs: list[dict]


def read_zoo(zoo: str | Path) -> dict[str, ZooModel]:
    """Models of a zoo folder, in manifest order."""
    zoo = Path(zoo)
    manifest = json.loads((zoo / "manifest.json").read_text(encoding="utf-8"))
    out = {}
    for meta in manifest["models"]:
        repo = zoo / "repos" / meta["id"]
        card, _ = split_front_matter((repo / "README.md").read_text(encoding="utf-8"))
        base = card.get("base_model") or []
        declared = tuple([base] if isinstance(base, str) else base)
        # a GGUF upload has no config.json: the baselines read safetensors only, so for them it
        # is a model of an unknown architecture with no tensors (they cannot place it)
        cfg = repo / "config.json"
        config = json.loads(cfg.read_text(encoding="utf-8")) if cfg.is_file() else {}
        out[meta["id"]] = ZooModel(
            id=meta["id"],
            arch=config.get("model_type", "unknown"),
            created_at=meta["createdAt"],
            downloads=int(meta.get("downloads", 0)),
            declared=declared,
            declared_relation=card.get("base_model_relation"),
            files=tuple(sorted(repo.glob("*.safetensors"))),
        )
    return out


# ---------------------------------------------------------------------------------------------
# Shared: trees and tree-derived anomalies


def seed_confidence(downloads: int) -> float:
    """The seed's download buckets: >100 -> 1.0, >10 -> 0.7, else 0.3."""
    return 1.0 if downloads > 100 else 0.7 if downloads > 10 else 0.3


def build_tree(
    models: Mapping[str, ZooModel],
    parents: Mapping[str, tuple[str, ...]],
    relations: Mapping[str, str | None],
    overlaps: Mapping[tuple[str, str], float] | None = None,
) -> dict:
    """The `tree --format json` object for given parents; a family is named by its root."""

    def root_of(mid: str) -> str:
        seen = set()
        while parents.get(mid) and mid not in seen:
            seen.add(mid)
            mid = parents[mid][0]
        return mid

    nodes, edges = [], []
    for mid, m in models.items():
        ps = parents.get(mid, ())
        node = {
            "id": mid, "family": root_of(mid), "parent": ps[0] if ps else None,
            "relation": relations.get(mid) if ps else None, "confidence": seed_confidence(m.downloads),
            "downloads": m.downloads, "created_at": m.created_at, "declared_base": list(m.declared),
        }  # fmt: skip
        if len(ps) > 1:
            node["parents"] = list(ps)
        nodes.append(node)
        for p in ps:
            edges.append({
                "parent": p, "child": mid, "overlap": (overlaps or {}).get((p, mid)), "identity": None,
                "p_value": None, "confidence": seed_confidence(m.downloads), "relation": relations.get(mid),
            })  # fmt: skip
    return {"nodes": nodes, "edges": edges}


def tree_anomalies(
    models: Mapping[str, ZooModel], parents: Mapping[str, tuple[str, ...]]
) -> list[dict]:
    """What any recovered tree implies about the cards: no base declared, or a different one."""
    out = []
    for mid, ps in parents.items():
        if not ps:
            continue
        declared = set(models[mid].declared)
        if not declared:
            out.append(
                _anomaly(
                    mid, "missing_base", 0.5, "a parent was recovered; the card declares none", ps
                )
            )
        elif len(ps) > 1 and declared < set(ps):
            out.append(
                _anomaly(
                    mid,
                    "undeclared_merge",
                    0.5,
                    "merge of parents the card does not all declare",
                    ps,
                )
            )
        elif not declared & set(ps):
            out.append(_anomaly(mid, "declared_base_mismatch", 0.5, "recovered parent is not the declared base",
                                (*ps, *sorted(declared))))  # fmt: skip
    return out


def _anomaly(model: str, kind: str, score: float, evidence: str, related) -> dict:
    return {"model": model, "kind": kind, "severity": "warning", "score": score, "evidence": evidence,
            "related": list(related)}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# 1. Declared base_model only


def declared_baseline(models: Mapping[str, ZooModel]) -> BaselineResult:
    """Parent = first declared base that is in the zoo (all of them for a declared merge)."""
    parents, relations = {}, {}
    for mid, m in models.items():
        known = [d for d in m.declared if d in models and d != mid]
        relation = _CARD_TO_RELATION.get(m.declared_relation or "", "finetune")
        parents[mid] = tuple(known) if relation == "merge" and len(known) > 1 else tuple(known[:1])
        relations[mid] = relation
    # Trusting the cards, it sees nothing wrong with them.
    return BaselineResult("declared", build_tree(models, parents, relations), [], [])


# ---------------------------------------------------------------------------------------------
# 2. The seed's exact-value MinHash


def _load_tensors(m: ZooModel):
    from safetensors import safe_open

    for f in m.files:
        with safe_open(str(f), framework="pt") as fh:
            for name in fh.keys():  # noqa: SIM118 (safe_open is not a Mapping)
                yield name, fh.get_tensor(name)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 of the seeded values: a fast, well-spread 64-bit hash of 64-bit integers."""
    return splitmix64(x ^ np.uint64(_HASH_SEED))


def value_sketch(tensor, k: int = 256) -> np.ndarray:
    """The k smallest hashes of the tensor's distinct value bit patterns (sorted uint64)."""
    import torch

    width = tensor.element_size()
    as_int = {8: torch.int64, 4: torch.int32, 2: torch.int16, 1: torch.int8}[width]
    bits = tensor.contiguous().view(as_int).flatten().numpy().astype(np.int64)
    # The width goes into the hash so equal bit patterns of different dtypes do not collide.
    hashes = _mix64(bits.view(np.uint64) + np.uint64(width << 56))
    # Equal values hash equal, so the k smallest distinct hashes are among the smallest few
    # thousand; a full sort of every tensor is what made this slow.
    head = 8 * k
    if len(hashes) > head:
        distinct = np.unique(np.partition(hashes, head)[: head + 1])
        if len(distinct) >= k:
            return distinct[:k]
    return np.unique(hashes)[:k]


def sketch_jaccard(a: np.ndarray, b: np.ndarray, k: int = 256) -> float:
    """Bottom-k Jaccard estimate: the share of the union's k smallest hashes found in both.

    `a` and `b` are sorted and duplicate-free, so one sort of both finds the union (first copies)
    and the shared hashes (values that occur twice).
    """
    merged = np.sort(np.concatenate((a, b)))
    if not len(merged):
        return 0.0
    first = np.ones(len(merged), dtype=bool)
    first[1:] = merged[1:] != merged[:-1]
    twice = np.zeros(len(merged), dtype=bool)
    twice[:-1] = merged[:-1] == merged[1:]
    in_both = twice[first][:k]
    return float(in_both.sum() / len(in_both))


def minhash_baseline(
    models: Mapping[str, ZooModel], *, k: int = 256, threshold: float = 0.1
) -> BaselineResult:
    """The seed's method (see module doc), with its two anomaly patterns and the tree's."""
    sketches = {
        mid: {n: value_sketch(t, k) for n, t in _load_tensors(m)} for mid, m in models.items()
    }
    overlap: dict[tuple[str, str], float] = {}
    pairs = []
    for a, b in itertools.combinations(models, 2):
        if models[a].arch != models[b].arch:
            continue
        common = sorted(sketches[a].keys() & sketches[b].keys())
        value = (
            float(np.mean([sketch_jaccard(sketches[a][n], sketches[b][n], k) for n in common]))
            if common
            else 0.0
        )
        overlap[(a, b)] = overlap[(b, a)] = value
        pairs.append({"a": a, "b": b, "overlap": value})
    parents: dict[str, tuple[str, ...]] = {}
    relations: dict[str, str | None] = {}
    anomalies: list[dict] = []
    for mid, m in models.items():
        older = [o for o in models if models[o].created_at < m.created_at and (o, mid) in overlap]
        best = max(older, key=lambda o: (overlap[(o, mid)], models[o].created_at), default=None)
        if best is not None and overlap[(best, mid)] > threshold:
            parents[mid] = (best,)
            relations[mid] = "copy" if overlap[(best, mid)] >= 0.999 else "finetune"
            if relations[mid] == "copy":
                anomalies.append(
                    _anomaly(mid, "reupload", 1.0, "same values as an older model", (best,))
                )
        else:
            parents[mid] = ()
        # The seed's pattern 1: few downloads, near-identical to an older model.
        top = max((overlap[(o, mid)] for o in older), default=0.0)
        if m.downloads < 10 and top > 0.9:
            anomalies.append(
                _anomaly(
                    mid, "suspicious_copy", top, f"overlap {top:.2f} with an older model", (best,)
                )
            )
        # The seed's pattern 2: popular, yet barely overlaps the base it declares.
        for d in m.declared:
            if (d, mid) in overlap and m.downloads > 100 and overlap[(d, mid)] < 0.1:
                anomalies.append(_anomaly(mid, "mislabeled", 1 - overlap[(d, mid)],
                                          f"overlap {overlap[(d, mid)]:.2f} with declared base", (d,)))  # fmt: skip
    anomalies += tree_anomalies(models, parents)
    tree = build_tree(models, parents, relations, overlap)
    return BaselineResult("minhash", tree, anomalies, pairs)


# ---------------------------------------------------------------------------------------------
# 3. MoTHer: L2 distance, kurtosis direction, Edmonds arborescence


def _kurtosis_sum(weights: Mapping[str, np.ndarray]) -> float:
    """MoTHer's calc_ku: the sum of excess kurtosis over square 2-D tensors."""
    from scipy.stats import kurtosis

    return float(
        sum(
            kurtosis(w.ravel())
            for w in weights.values()
            if w.ndim == 2 and w.shape[0] == w.shape[1]
        )
    )


def _l2(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> float:
    """L2 distance over common tensors; a grown embedding is compared on its shared rows."""
    total = 0.0
    for name in a.keys() & b.keys():
        x, y = a[name], b[name]
        if x.shape != y.shape:
            if x.ndim != y.ndim or x.shape[1:] != y.shape[1:]:
                continue
            rows = min(x.shape[0], y.shape[0])
            x, y = x[:rows], y[:rows]
        total += float(np.sum(np.square(x - y), dtype=np.float64))
    return total**0.5


def _float_weights(m: ZooModel) -> dict[str, np.ndarray]:
    """A model's tensors as float arrays, or {} when any is not floating point (packed)."""
    out = {}
    for n, t in _load_tensors(m):
        if not t.is_floating_point():
            return {}
        out[n] = t.float().numpy()
    return out


def mother_baseline(
    models: Mapping[str, ZooModel], *, lam: float = 0.3, cut: float = 0.5
) -> BaselineResult:
    """MoTHer on full weights (see module doc). `lam` is the paper's direction prior weight."""
    weights = {mid: _float_weights(m) for mid, m in models.items()}
    parents: dict[str, tuple[str, ...]] = {mid: () for mid in models}
    relations: dict[str, str | None] = {}
    pairs, distance = [], {}
    for arch in sorted({m.arch for m in models.values()}):
        # a model without float safetensors weights (GGUF, ONNX, GPTQ integers ...) is beyond this
        # baseline: it stays a root (the L2 over the few float tensors it shares, embeddings and
        # norms, would make it everybody's nearest neighbour)
        ids = [mid for mid, m in models.items() if m.arch == arch and weights[mid]]
        for a, b in itertools.combinations(ids, 2):
            distance[(a, b)] = distance[(b, a)] = _l2(weights[a], weights[b])
            pairs.append({"a": a, "b": b, "overlap": -distance[(a, b)]})  # higher = more alike
        if len(ids) < 2:
            continue
        ku = {mid: _kurtosis_sum(weights[mid]) for mid in ids}
        all_d = [distance[(a, b)] for a, b in itertools.combinations(ids, 2)]
        penalty = lam * float(np.mean(all_d))
        graph = nx.DiGraph()
        for a, b in itertools.permutations(ids, 2):
            # MoTHer: fine-tuning lowers kurtosis, so an edge to a child with higher kurtosis pays.
            graph.add_edge(a, b, weight=distance[(a, b)] + (penalty if ku[b] > ku[a] else 0.0))
        tree = nx.minimum_spanning_arborescence(graph, attr="weight", preserve_attrs=False)
        limit = cut * float(np.median(all_d))
        for a, b in tree.edges():
            if distance[(a, b)] <= limit:
                parents[b] = (a,)
                relations[b] = "copy" if distance[(a, b)] == 0.0 else "finetune"
    anomalies = [
        _anomaly(mid, "reupload", 1.0, "identical weights", ps) for mid, ps in parents.items()
        if ps and distance[(ps[0], mid)] == 0.0
    ]  # fmt: skip
    anomalies += tree_anomalies(models, parents)
    return BaselineResult("mother", build_tree(models, parents, relations), anomalies, pairs)


BASELINES: dict[str, Callable[[Mapping[str, ZooModel]], BaselineResult]] = {
    "declared": declared_baseline,
    "minhash": minhash_baseline,
    "mother": mother_baseline,
}


def run_baselines(
    zoo: str | Path, names: tuple[str, ...] = tuple(BASELINES)
) -> list[BaselineResult]:
    """Run the named baselines on a zoo folder."""
    models = read_zoo(zoo)
    return [BASELINES[n](models) for n in names]
