"""The seed study's statistics over the pairs frame (`lineage.present.report_frame`).

- `stats_by_bucket`: overlap of same- vs different-family pairs per download bucket (n, mean,
  median, std, min, max), per family, for the recovered families and, where cards declare bases,
  for the declared ones;
- `welch_ttests`: same vs different family, per bucket and overall (scipy, `equal_var=False`);
- `suspicious_pairs`: the seed's two patterns (likely copy or test upload; likely mislabeled);
- `filter_strategies`: what the conservative / balanced / flag-all filters keep;
- `lineage_map_regions` and `query_pairs`: the lineage map's regions and half-open range queries.

`lineage.present.report` writes all of it to a folder; docs/report.md says how to read each table.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np
import pandas as pd

from lineage.present.report_frame import ALL, BUCKETS

__all__ = [
    "MAP_REGIONS",
    "STRATEGIES",
    "UNRELATED_BELOW",
    "VARIABLE_FROM",
    "filter_strategies",
    "lineage_map_regions",
    "query_pairs",
    "stats_by_bucket",
    "suspicious_pairs",
    "welch_ttests",
]

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
