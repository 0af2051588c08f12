"""One row per compared pair: the DataFrame every table and figure of the report starts from.

`pairs_frame(pairs, models, tree)` joins each stored pair result with what the report needs
from the models (downloads, creation dates, declared bases) and the recovered tree (families).
Download buckets are right-closed, exactly like the seed: "0-10" is downloads <= 10, "10-100" is
10 < downloads <= 100, "100-1k" is 100 < downloads <= 1000 and ">1k" is downloads > 1000. The
downloads are those of the *derived* model of the pair (the later created one).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

__all__ = [
    "ALL",
    "BUCKETS",
    "declared_families",
    "download_bucket",
    "pairs_frame",
    "quality_flag",
]

BUCKETS = ("0-10", "10-100", "100-1k", ">1k")
# Right-closed bins: (-inf, 10] (10, 100] (100, 1000] (1000, inf), the seed's "<= 10" etc.
_BUCKET_EDGES = (-np.inf, 10, 100, 1000, np.inf)
ALL = "all"  # the bucket (and family) label of rows that pool everything


_FRAME_COLUMNS = (
    "a",
    "b",
    "overlap",
    "identity",
    "p_value",
    "log10_p",
    "overlap_std",
    "overlap_median",
    "overlap_min",
    "slots_compared",
    "verdict",
    "family_a",
    "family_b",
    "same_family",
    "declared_family_a",
    "declared_family_b",
    "declared_same_family",
    "declarer",
    "derived",
    "derived_family",
    "derived_declared_family",
    "derived_downloads",
    "downloads_a",
    "downloads_b",
    "bucket",
    "quality",
    "per_slot",
)


def download_bucket(downloads: float | None) -> str | None:
    """The seed's bucket of a download count ("0-10" means <= 10); None when unknown."""
    if downloads is None or pd.isna(downloads):
        return None
    for label, upper in zip(BUCKETS, _BUCKET_EDGES[1:], strict=True):
        if downloads <= upper:
            return label
    raise AssertionError("unreachable: the last edge is +inf")


def quality_flag(downloads: float | None) -> str | None:
    """The seed's flag-all quality flag: "high" (> 100), "medium" (> 10), else "low"."""
    if downloads is None or pd.isna(downloads):
        return None
    return "high" if downloads > 100 else "medium" if downloads > 10 else "low"


def declared_families(models: Iterable[Any], tree: Mapping) -> dict[str, str]:
    """Families as the cards declare them: connected components of "declares base" links.

    Links come from `ModelRecord.declared_bases` and from the tree nodes' `declared_base`.
    A component is named after its member that declares no base (the smallest id if several).

    Returns:
        model id -> family name, for models in some declared link only.
    """
    graph = nx.Graph()
    declarers = set()
    for model_id, bases in _declared_links(models, tree).items():
        for base in bases:
            graph.add_edge(model_id, base)
            declarers.add(model_id)
    family = {}
    for members in nx.connected_components(graph):
        roots = sorted(m for m in members if m not in declarers) or sorted(members)
        family.update(dict.fromkeys(members, roots[0]))
    return family


def _declared_links(models: Iterable[Any], tree: Mapping) -> dict[str, set[str]]:
    links: dict[str, set[str]] = {}
    for m in models:
        links.setdefault(m.id, set()).update(b.id for b in m.declared_bases)
    for node in tree.get("nodes", []):
        links.setdefault(node["id"], set()).update(node.get("declared_base") or ())
    return {k: v - {k} for k, v in links.items() if v - {k}}


def pairs_frame(pairs: Iterable[Any], models: Iterable[Any], tree: Mapping) -> pd.DataFrame:
    """One row per compared pair, with what the report needs from the models and the tree.

    Args:
        pairs: `PairRow`s (from `Store.pairs()`) or mappings with the same keys.
        models: `ModelRecord`s (from `Store.models()`): downloads, created_at, declared bases.
            A model missing here takes its downloads and created_at from its tree node.
        tree: the tree JSON (`lineage tree --format json`): the recovered families.

    Returns:
        A DataFrame with columns a, b, overlap, identity, p_value, log10_p, overlap_std,
        overlap_median, overlap_min, slots_compared, verdict (from the pair); family_a,
        family_b, same_family (recovered; a model absent from the tree is a family of its own);
        declared_family_a/b and declared_same_family (NA unless both models are in some declared
        link); declarer (the model whose card declares the other as its base, else None);
        derived (the later created of a and b; unknown dates count as latest, ties go to the
        larger id), derived_family, derived_declared_family, derived_downloads, downloads_a/b;
        bucket (of derived_downloads, see `download_bucket`), quality (see `quality_flag`), and
        per_slot (the per-slot list, for layer profiles).
    """
    models = list(models)
    nodes = {n["id"]: n for n in tree.get("nodes", [])}
    records = {m.id: m for m in models}
    declared = declared_families(models, tree)
    links = _declared_links(models, tree)

    @functools.cache
    def info(model_id: str) -> tuple[float, pd.Timestamp | None]:
        """(downloads, creation time) of a model: its record first, else its tree node."""
        rec, node = records.get(model_id), nodes.get(model_id, {})
        downloads = rec.downloads if rec is not None else node.get("downloads")
        created = (rec.created_at if rec is not None else None) or node.get("created_at")
        when = pd.to_datetime(created, utc=True, errors="coerce") if created else None
        return (np.nan if downloads is None else float(downloads)), (
            None if when is None or pd.isna(when) else when
        )

    rows = []
    for pair in pairs:
        p = _as_mapping(pair)
        a, b = p["a"], p["b"]
        detail = p.get("detail") or {}
        (dl_a, t_a), (dl_b, t_b) = info(a), info(b)
        derived = max((a, t_a), (b, t_b), key=lambda m: (m[1] is None, m[1] or 0, m[0]))[0]
        fam_a, fam_b = nodes.get(a, {}).get("family") or a, nodes.get(b, {}).get("family") or b
        dfam_a, dfam_b = declared.get(a), declared.get(b)
        if b in links.get(a, ()) and a in links.get(b, ()):
            declarer = derived
        elif b in links.get(a, ()):
            declarer = a
        elif a in links.get(b, ()):
            declarer = b
        else:
            declarer = None
        derived_downloads = dl_a if derived == a else dl_b
        rows.append(
            {
                "a": a,
                "b": b,
                "overlap": _float(p.get("overlap")),
                "identity": _float(p.get("identity")),
                "p_value": _float(p.get("p_value")),
                "log10_p": _float(p.get("log10_p")),
                "overlap_std": _float(detail.get("overlap_std")),
                "overlap_median": _float(detail.get("overlap_median")),
                "overlap_min": _float(detail.get("overlap_min")),
                "slots_compared": p.get("slots_compared"),
                "verdict": p.get("verdict"),
                "family_a": fam_a,
                "family_b": fam_b,
                "same_family": fam_a == fam_b,
                "declared_family_a": dfam_a,
                "declared_family_b": dfam_b,
                "declared_same_family": (
                    pd.NA if dfam_a is None or dfam_b is None else dfam_a == dfam_b
                ),
                "declarer": declarer,
                "derived": derived,
                "derived_family": fam_a if derived == a else fam_b,
                "derived_declared_family": dfam_a if derived == a else dfam_b,
                "derived_downloads": derived_downloads,
                "downloads_a": dl_a,
                "downloads_b": dl_b,
                "bucket": download_bucket(derived_downloads),
                "quality": quality_flag(derived_downloads),
                "per_slot": list(detail.get("per_slot") or []),
            }
        )
    df = pd.DataFrame(rows, columns=list(_FRAME_COLUMNS))
    df["same_family"] = df["same_family"].astype(bool)
    df["declared_same_family"] = df["declared_same_family"].astype("boolean")
    for col in ("overlap", "identity", "p_value", "log10_p", "overlap_std", "derived_downloads"):
        df[col] = df[col].astype(float)
    return df


def _as_mapping(pair: Any) -> Mapping:
    if isinstance(pair, Mapping):
        return pair
    return {f.name: getattr(pair, f.name) for f in dataclasses.fields(pair)}


def _float(value: Any) -> float:
    return np.nan if value is None else float(value)
