"""The numbers of the report: one row per compared pair, and the seed study's statistics on it.

Everything starts from one DataFrame with a row per compared pair (`pairs_frame`). From it:

- `stats_by_bucket`: overlap of same- vs different-family pairs per download bucket (n, mean,
  median, std, min, max), per family, for the recovered families and, where cards declare bases,
  for the declared ones;
- `welch_ttests`: same vs different family, per bucket and overall (scipy, `equal_var=False`);
- `suspicious_pairs`: the seed's two patterns (likely copy or test upload; likely mislabeled);
- `filter_strategies`: what the conservative / balanced / flag-all filters keep;
- `lineage_map_regions` and `query_pairs`: the lineage map's regions and half-open range queries.

Download buckets are right-closed, exactly like the seed: "0-10" is downloads <= 10, "10-100" is
10 < downloads <= 100, "100-1k" is 100 < downloads <= 1000 and ">1k" is downloads > 1000. The
downloads are those of the *derived* model of the pair (the later created one). `lineage.present.report`
writes all of it to a folder; docs/report.md says how to read each table.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

__all__ = [
    "ALL",
    "BUCKETS",
    "MAP_REGIONS",
    "STRATEGIES",
    "UNRELATED_BELOW",
    "VARIABLE_FROM",
    "declared_families",
    "download_bucket",
    "filter_strategies",
    "lineage_map_regions",
    "pairs_frame",
    "quality_flag",
    "query_pairs",
    "stats_by_bucket",
    "suspicious_pairs",
    "welch_ttests",
]

BUCKETS = ("0-10", "10-100", "100-1k", ">1k")
# Right-closed bins: (-inf, 10] (10, 100] (100, 1000] (1000, inf), the seed's "<= 10" etc.
_BUCKET_EDGES = (-np.inf, 10, 100, 1000, np.inf)
ALL = "all"  # the bucket (and family) label of rows that pool everything

# The seed's filters: keep pairs whose derived model has more than this many downloads.
STRATEGIES = (("conservative", 100), ("balanced", 10), ("flag-all", None))

# Lineage map regions, in the order they are tested (first match wins).
MAP_REGIONS = ("unrelated", "partial or merged", "clear derivative")
UNRELATED_BELOW = 0.1  # mean overlap under this: unrelated (the seed's "< 0.1" pattern)
VARIABLE_FROM = 0.15  # overlap std across slots from this: partial or merged

# Basis of a family comparison: (name, family of the derived model, same-family column).
_BASES = (
    ("recovered", "derived_family", "same_family"),
    ("declared", "derived_declared_family", "declared_same_family"),
)

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
_TTEST_COLUMNS = (
    "basis",
    "family",
    "bucket",
    "n_same",
    "n_different",
    "mean_same",
    "mean_different",
    "ratio",
    "t",
    "p_value",
    "note",
)


# --------------------------------------------------------------------------------------------
# The pairs frame
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------


def _bases(df: pd.DataFrame) -> Iterable[tuple[str, pd.DataFrame]]:
    """Each basis with its pairs: columns `family` (of the derived model) and bool `same`."""
    scored = df[df["overlap"].notna()]
    for basis, fam_col, same_col in _BASES:
        part = scored[scored[same_col].notna()]
        yield (
            basis,
            pd.DataFrame(
                {
                    "family": part[fam_col].astype(object),
                    "same": part[same_col].astype(bool),
                    "bucket": part["bucket"],
                    "overlap": part["overlap"],
                }
            ),
        )


def _family_groups(part: pd.DataFrame) -> Iterable[tuple[str, pd.DataFrame]]:
    """(ALL, everything), then each family with its pairs, most pairs first."""
    yield ALL, part
    order = part["family"].value_counts(sort=True)
    for family in sorted(order.index, key=lambda f: (-order[f], f)):
        yield family, part[part["family"] == family]


def _bucket_groups(part: pd.DataFrame) -> Iterable[tuple[str, pd.DataFrame]]:
    for bucket in BUCKETS:
        yield bucket, part[part["bucket"] == bucket]
    yield ALL, part


def stats_by_bucket(df: pd.DataFrame) -> pd.DataFrame:
    """Overlap of same- vs different-family pairs per download bucket, per family.

    Families are those of the derived model (the seed's "Llama - different family" table holds the
    pairs whose derived model is a Llama). Family "all" pools every family; bucket "all" pools every
    bucket (and pairs whose downloads are unknown). The declared basis uses only pairs where both models are in declared links. Pairs
    without an overlap are left out; empty groups have no row; std is the sample std (ddof=1,
    NaN for one pair), as pandas and the seed compute it.

    Returns:
        Columns basis, family, relation ("same"/"different"), bucket, n, mean, median, std, min,
        max.
    """
    rows = []
    for basis, part in _bases(df):
        for family, fam in _family_groups(part):
            for relation, same in (("same", True), ("different", False)):
                for bucket, grp in _bucket_groups(fam[fam["same"] == same]):
                    ov = grp["overlap"]
                    if ov.empty:
                        continue
                    rows.append(
                        {
                            "basis": basis,
                            "family": family,
                            "relation": relation,
                            "bucket": bucket,
                            "n": len(ov),
                            "mean": ov.mean(),
                            "median": ov.median(),
                            "std": ov.std(),
                            "min": ov.min(),
                            "max": ov.max(),
                        }
                    )
    columns = ["basis", "family", "relation", "bucket", "n", "mean", "median", "std", "min", "max"]
    return pd.DataFrame(rows, columns=columns)


def welch_ttests(df: pd.DataFrame) -> pd.DataFrame:
    """Welch t-tests (unequal variances) of overlap, same vs different family.

    One test per basis, family (and "all") and bucket (and "all"), where both sides have at least
    two pairs; other groups get a row with a note and no p-value.

    Returns:
        Columns basis, family, bucket, n_same, n_different, mean_same, mean_different, ratio
        (mean_same / mean_different, the seed's "x times"), t, p_value, note.
    """
    from scipy import stats

    rows = []
    for basis, part in _bases(df):
        for family, fam in _family_groups(part):
            for bucket, grp in _bucket_groups(fam):
                same = grp.loc[grp["same"], "overlap"].to_numpy()
                diff = grp.loc[~grp["same"], "overlap"].to_numpy()
                if len(same) + len(diff) == 0:
                    continue
                t = p = np.nan
                note = ""
                if len(same) < 2 or len(diff) < 2:
                    note = "too few pairs (need 2 per side)"
                else:
                    with warnings.catch_warnings():
                        # Constant samples make scipy warn and return NaN; the note says so.
                        warnings.simplefilter("ignore", RuntimeWarning)
                        res = stats.ttest_ind(same, diff, equal_var=False)
                    t, p = float(res.statistic), float(res.pvalue)
                    if np.isnan(p):
                        note = "undefined (no variance)"
                mean_same = same.mean() if len(same) else np.nan
                mean_diff = diff.mean() if len(diff) else np.nan
                rows.append(
                    {
                        "basis": basis,
                        "family": family,
                        "bucket": bucket,
                        "n_same": len(same),
                        "n_different": len(diff),
                        "mean_same": mean_same,
                        "mean_different": mean_diff,
                        "ratio": mean_same / mean_diff if mean_diff and mean_diff > 0 else np.nan,
                        "t": t,
                        "p_value": p,
                        "note": note,
                    }
                )
    return pd.DataFrame(rows, columns=_TTEST_COLUMNS)


def suspicious_pairs(
    df: pd.DataFrame,
    *,
    copy_downloads_below: float = 10,
    copy_overlap_above: float = 0.9,
    mislabel_downloads_above: float = 100,
    mislabel_overlap_below: float = 0.1,
) -> pd.DataFrame:
    """The seed's two patterns, with its strict inequalities.

    - `suspicious_copy`: a model with fewer than 10 downloads has overlap > 0.9 with an older
      model: likely a copy or a test upload. One row per such model, `other` being its closest
      older model and `matches` how many older models pass the threshold (the seed's table held
      one base per model; all pairs would list every close relative of every sibling).
    - `mislabeled`: a model with more than 100 downloads has overlap < 0.1 with the base its card
      declares: likely a wrong `base_model`. One row per (model, declared base).

    Returns:
        Columns pattern, model (the derived model, or the declaring one), other, downloads,
        overlap, identity, family, matches, reason; sorted by pattern then model.
    """
    rows = []
    copy = df[
        (df["derived_downloads"] < copy_downloads_below) & (df["overlap"] > copy_overlap_above)
    ]
    for model, group in copy.groupby("derived", sort=True):
        r = group.loc[group["overlap"].idxmax()]
        rows.append(
            {
                "pattern": "suspicious_copy",
                "model": model,
                "other": r["b"] if model == r["a"] else r["a"],
                "downloads": r["derived_downloads"],
                "overlap": r["overlap"],
                "identity": r["identity"],
                "family": r["derived_family"],
                "matches": len(group),
                "reason": f"< {copy_downloads_below:g} downloads, overlap > {copy_overlap_above:g}",
            }
        )
    for r in df[df["declarer"].notna()].itertuples():
        is_a = r.declarer == r.a
        downloads = r.downloads_a if is_a else r.downloads_b
        if downloads > mislabel_downloads_above and r.overlap < mislabel_overlap_below:
            rows.append(
                {
                    "pattern": "mislabeled",
                    "model": r.declarer,
                    "other": r.b if is_a else r.a,
                    "downloads": downloads,
                    "overlap": r.overlap,
                    "identity": r.identity,
                    "family": r.family_a if is_a else r.family_b,
                    "matches": 1,
                    "reason": f"> {mislabel_downloads_above:g} downloads, overlap < "
                    f"{mislabel_overlap_below:g} with its declared base",
                }
            )
    columns = [
        "pattern",
        "model",
        "other",
        "downloads",
        "overlap",
        "identity",
        "family",
        "matches",
        "reason",
    ]
    out = pd.DataFrame(rows, columns=columns)
    return out.sort_values(["pattern", "model", "other"], ignore_index=True)


def filter_strategies(df: pd.DataFrame) -> pd.DataFrame:
    """What the seed's filters keep: conservative (> 100), balanced (> 10), flag-all (everything).

    The thresholds apply to the derived model's downloads. flag-all keeps every pair and counts its
    quality flags (high > 100, medium > 10, low otherwise; see `quality_flag`).

    Returns:
        Columns strategy, rule, n_pairs, n_models, n_same, n_different, mean_same,
        mean_different, high, medium, low (the flag counts among the kept pairs).
    """
    rows = []
    for name, above in STRATEGIES:
        kept = df if above is None else df[df["derived_downloads"] > above]
        same = kept.loc[kept["same_family"], "overlap"]
        diff = kept.loc[~kept["same_family"], "overlap"]
        flags = kept["quality"].value_counts()
        rows.append(
            {
                "strategy": name,
                "rule": "keep all, flag quality"
                if above is None
                else f"derived downloads > {above}",
                "n_pairs": len(kept),
                "n_models": len(set(kept["a"]) | set(kept["b"])),
                "n_same": len(same),
                "n_different": len(diff),
                "mean_same": same.mean() if len(same) else np.nan,
                "mean_different": diff.mean() if len(diff) else np.nan,
                **{flag: int(flags.get(flag, 0)) for flag in ("high", "medium", "low")},
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# The lineage map: mean overlap vs its variability across slots
# --------------------------------------------------------------------------------------------


def query_pairs(
    df: pd.DataFrame,
    *,
    overlap_min: float | None = None,
    overlap_max: float | None = None,
    std_min: float | None = None,
    std_max: float | None = None,
) -> pd.DataFrame:
    """Pairs with overlap in [overlap_min, overlap_max) and overlap_std in [std_min, std_max).

    A bound left as None is open. Half-open ranges tile the map: adjacent queries never share a
    pair. Pairs without an overlap_std are only returned when no std bound is given.
    """
    keep = pd.Series(True, index=df.index)
    for col, lo, hi in (("overlap", overlap_min, overlap_max), ("overlap_std", std_min, std_max)):
        if lo is not None:
            keep &= df[col] >= lo
        if hi is not None:
            keep &= df[col] < hi
    return df[keep]


def lineage_map_regions(
    df: pd.DataFrame,
    *,
    unrelated_below: float = UNRELATED_BELOW,
    variable_from: float = VARIABLE_FROM,
) -> pd.DataFrame:
    """A copy of `df` with a `region` column (see `MAP_REGIONS`).

    - "unrelated": mean overlap in [0, unrelated_below), whatever its std (the store keeps no
      per-slot detail for most unrelated pairs, and none is needed to call them unrelated);
    - "partial or merged": mean overlap >= unrelated_below and overlap_std >= variable_from
      (some slots shared, others not: partial training, merges, frozen layers);
    - "clear derivative": mean overlap >= unrelated_below and overlap_std < variable_from;
    - None where the overlap is missing, or where a related pair has no overlap_std.
    """
    out = df.copy()
    out["region"] = None
    related = query_pairs(out, overlap_min=unrelated_below).index
    out.loc[query_pairs(out, overlap_max=unrelated_below).index, "region"] = "unrelated"
    partial = query_pairs(out.loc[related], std_min=variable_from).index
    derivative = query_pairs(out.loc[related], std_max=variable_from).index
    out.loc[partial, "region"] = "partial or merged"
    out.loc[derivative, "region"] = "clear derivative"
    return out
