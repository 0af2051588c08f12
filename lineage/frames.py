"""The store as pandas DataFrames: models, signatures and compared pairs, one row per record.

For notebooks and the report. pandas (and numpy, networkx) are imported inside the functions,
never at import, so code that only reads a stored graph does not pay for them. The recovered
graph's own tables are `LineageGraph.nodes_frame()`, `edges_frame()` and `anomalies_frame()`.

`pairs_frame` is the frame every table and figure of the report starts from. Download buckets
are right-closed, exactly like the seed: "0-10" is downloads <= 10, "10-100" is
10 < downloads <= 100, "100-1k" is 100 < downloads <= 1000 and ">1k" is downloads > 1000. The
downloads are those of the *derived* model of the pair (the later created one).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from lineage.records import LineageGraph

if TYPE_CHECKING:
    import pandas as pd

    from lineage.store import Store

__all__ = [
    "ALL",
    "BUCKETS",
    "declared_families",
    "download_bucket",
    "models_frame",
    "pairs_frame",
    "quality_flag",
    "signatures_frame",
]

BUCKETS = ("0-10", "10-100", "100-1k", ">1k")
# Right-closed bins: (-inf, 10] (10, 100] (100, 1000] (1000, inf), the seed's "<= 10" etc.
_BUCKET_UPPER = (10, 100, 1000, math.inf)
ALL = "all"  # the bucket (and family) label of rows that pool everything

_MODEL_COLUMNS = (
    "id",
    "revision",
    "author",
    "downloads",
    "downloads_all_time",
    "likes",
    "created_at",
    "last_modified",
    "library",
    "pipeline_tag",
    "license",
    "gated",
    "tags",
    "declared_bases",
    "declared_relations",
    "parameter_count",
    "source",
    "path",
    "status",
    "reason",
)
_SIGNATURE_COLUMNS = ("model", "revision", "arch", "slots", "bytes_read", "params", "created_at")
_PAIR_COLUMNS = (
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


def models_frame(store: Store) -> pd.DataFrame:
    """One row per stored model: its metadata as the store holds it.

    Args:
        store: the database.

    Returns:
        Columns id, revision, author, downloads, downloads_all_time, likes, created_at and
        last_modified (UTC timestamps, NaT when unknown), library, pipeline_tag, license, gated,
        tags (a list), declared_bases (the ids the card declares, a list), declared_relations
        (their relations, a list of the same length, None where the card does not say),
        parameter_count, source, path, status, reason. Sorted by id.
    """
    import pandas as pd

    rows = [
        {
            **{f: getattr(m, f) for f in _MODEL_COLUMNS if hasattr(m, f)},
            "tags": list(m.tags),
            "declared_bases": [b.id for b in m.declared_bases],
            "declared_relations": [b.relation for b in m.declared_bases],
        }
        for m in sorted(store.models(), key=lambda m: m.id)
    ]
    df = pd.DataFrame(rows, columns=list(_MODEL_COLUMNS))
    for col in ("created_at", "last_modified"):
        df[col] = pd.to_datetime(df[col], utc=True, errors="coerce", format="ISO8601")
    return df


def signatures_frame(store: Store) -> pd.DataFrame:
    """One row per stored signature: what was read to fingerprint each model.

    Args:
        store: the database.

    Returns:
        Columns model, revision, arch (models are compared within one arch only), slots (how many
        the signature holds), bytes_read (weight bytes read for it), params (the signature
        parameters: two signatures compare only when equal), created_at (when it was stored, a
        UTC timestamp). Sorted by model.
    """
    import pandas as pd

    rows = [
        {
            "model": s.model_id,
            "revision": s.revision,
            "arch": s.arch,
            "slots": s.n_slots,
            "bytes_read": s.bytes_read,
            "params": s.params,
            "created_at": s.created_at,
        }
        for s in sorted(store.signatures(), key=lambda s: s.model_id)
    ]
    df = pd.DataFrame(rows, columns=list(_SIGNATURE_COLUMNS))
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True, errors="coerce", format="ISO8601")
    return df.astype({"slots": "int64", "bytes_read": "int64"})


def download_bucket(downloads: float | None) -> str | None:
    """The seed's bucket of a download count ("0-10" means <= 10); None when unknown."""
    if _missing(downloads):
        return None
    for label, upper in zip(BUCKETS, _BUCKET_UPPER, strict=True):
        if downloads <= upper:  # type: ignore[operator]  # not missing: a number
            return label
    raise AssertionError("unreachable: the last edge is +inf")


def quality_flag(downloads: float | None) -> str | None:
    """The seed's flag-all quality flag: "high" (> 100), "medium" (> 10), else "low"."""
    if _missing(downloads):
        return None
    return "high" if downloads > 100 else "medium" if downloads > 10 else "low"  # type: ignore[operator]


def declared_families(models: Iterable[Any], tree: Mapping) -> dict[str, str]:
    """Families as the cards declare them: connected components of "declares base" links.

    Links come from `ModelRecord.declared_bases` and from the tree nodes' `declared_base`.
    A component is named after its member that declares no base (the smallest id if several).

    Returns:
        model id -> family name, for models in some declared link only.
    """
    import networkx as nx

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


def pairs_frame(
    source: Store | Iterable[Any],
    models: Iterable[Any] | None = None,
    tree: Mapping | LineageGraph | None = None,
) -> pd.DataFrame:
    """One row per compared pair, with what the report needs from the models and the tree.

    Args:
        source: a `Store` (its pairs; `models` and `tree` then default to the store's models and
            its lineage, `build_lineage(store)`, read back when stored), or the pairs themselves:
            `PairRow`s (from `Store.pairs()`) or mappings with the same keys.
        models: `ModelRecord`s (from `Store.models()`): downloads, created_at, declared bases.
            A model missing here takes its downloads and created_at from its tree node.
        tree: the recovered families: a `LineageGraph` or its tree JSON (`lineage tree
            --format json`).

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

    Raises:
        TypeError: pairs were given without `models` and `tree`.
    """
    import numpy as np
    import pandas as pd

    from lineage.store import Store

    if isinstance(source, Store):
        pairs: Iterable[Any] = source.pairs()
        if models is None:
            models = source.models()
        if tree is None:
            from lineage.build import build_lineage

            tree = build_lineage(source)
    else:
        pairs = source
        if models is None or tree is None:
            raise TypeError("pairs_frame(pairs, models, tree): give the models and the tree")
    tree_json: Mapping = tree.to_json() if isinstance(tree, LineageGraph) else tree
    models = list(models)
    nodes = {n["id"]: n for n in tree_json.get("nodes", [])}
    records = {m.id: m for m in models}
    declared = declared_families(models, tree_json)
    links = _declared_links(models, tree_json)

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
    df = pd.DataFrame(rows, columns=list(_PAIR_COLUMNS))
    df["same_family"] = df["same_family"].astype(bool)
    df["declared_same_family"] = df["declared_same_family"].astype("boolean")
    for col in ("overlap", "identity", "p_value", "log10_p", "overlap_std", "derived_downloads"):
        df[col] = df[col].astype(float)
    return df


def _missing(value: Any) -> bool:
    """None, NaN or pandas' NA: a count nobody knows."""
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN is the one number unequal to itself
    except TypeError:  # pd.NA refuses to be a bool
        return True


def _as_mapping(pair: Any) -> Mapping:
    if isinstance(pair, Mapping):
        return pair
    return {f.name: getattr(pair, f.name) for f in dataclasses.fields(pair)}


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)
