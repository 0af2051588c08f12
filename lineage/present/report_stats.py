"""The seed study's statistics over the pairs frame (`lineage.frames.pairs_frame`).

- `stats_by_bucket`: overlap of same- vs different-family pairs per download bucket (n, mean,
  median, std, min, max), per family, for the recovered families and, where cards declare bases,
  for the declared ones;
- `welch_ttests`: same vs different family, per bucket and overall (scipy, `equal_var=False`);
- `suspicious_pairs`: the seed's two patterns (likely copy or test upload; likely mislabeled), as
  the anomaly rules decided them;
- `filter_strategies`: what the conservative / balanced / flag-all filters keep;
- `lineage_map_regions` and `query_pairs`: the lineage map's regions and half-open range queries.

`lineage.present.report` writes all of it to a folder; docs/report.md says how to read each table.

The pattern tables live in `report_patterns`, the map's in `report_map`; their names are
re-exported here.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np
import pandas as pd

from lineage.frames import ALL, BUCKETS
from lineage.present.report_map import (
    IDENTICAL_FROM,
    IDENTICAL_SLOT,
    MAP_REGIONS,
    PARTIAL_FROM,
    UNRELATED_BELOW,
    lineage_map_regions,
    query_pairs,
    untouched_share,
)
from lineage.present.report_patterns import STRATEGIES, filter_strategies, suspicious_pairs

__all__ = [
    "MAP_REGIONS",
    "STRATEGIES",
    "IDENTICAL_FROM",
    "IDENTICAL_SLOT",
    "PARTIAL_FROM",
    "UNRELATED_BELOW",
    "filter_strategies",
    "lineage_map_regions",
    "query_pairs",
    "stats_by_bucket",
    "suspicious_pairs",
    "untouched_share",
    "welch_ttests",
]

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
