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
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from lineage.frames import ALL, BUCKETS

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

# The seed's filters: keep pairs whose derived model has more than this many downloads.
STRATEGIES = (("conservative", 100), ("balanced", 10), ("flag-all", None))

# Lineage map regions, in the order they are tested (first match wins). The map's x axis is the
# share of a pair's slots that are byte-identical ("untouched"): the one per-pair number that
# separates partial fine-tunes and merged adapters (some tensors untouched, others trained) from
# full fine-tunes, quantizations and casts (every tensor changed) and from copies. A merge cannot
# be told from one pair (each of its pairs looks like a fine-tune): merges are found by the graph,
# from where a model sits between two lines, never by a region of this map.
MAP_REGIONS = ("unrelated", "byte-identical", "partly untouched", "trained throughout")
UNRELATED_BELOW = 0.1  # mean overlap under this: unrelated (the seed's "< 0.1" pattern)
PARTIAL_FROM = 0.25  # share of untouched slots from this: partly untouched
IDENTICAL_FROM = 0.95  # share of untouched slots from this: byte-identical (copy, re-upload)
# A slot is untouched when its exact-value identity reaches this: the graph's own threshold
# (`lineage.graph.GraphParams.identical_slot`, not imported: it would load the graph code).
IDENTICAL_SLOT = 0.9

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
    tree: Mapping | None = None,
    *,
    copy_downloads_below: float = 10,
    copy_overlap_above: float = 0.9,
    mislabel_downloads_above: float = 100,
    mislabel_overlap_below: float = 0.1,
) -> pd.DataFrame:
    """The seed's two patterns: likely copies or test uploads, and likely wrong base_model cards.

    With a `tree` whose nodes list their anomalies (`LineageGraph.to_json()`), a model is listed
    exactly when the anomaly rules (`lineage.anomalies`) flagged it `suspicious_copy` or
    `mislabeled`: the rules also ask that a copy is not a declared fine-tune, quantization or
    format conversion, which the seed's bare thresholds cannot see (on the demo zoo those flag 33
    of 52 models, the rules 4). Without one (a bare pairs table), the seed's thresholds decide:

    - `suspicious_copy`: a model with fewer than 10 downloads has overlap > 0.9 with an older
      model. One row per model, `other` being its recovered parent (with a tree) or its closest
      older model, and `matches` how many older models pass the overlap threshold.
    - `mislabeled`: a model with more than 100 downloads has overlap < 0.1 with the base its card
      declares. One row per (model, declared base).

    Returns:
        Columns pattern, model (the derived model, or the declaring one), other, downloads,
        overlap, identity, family, matches, reason; sorted by pattern then model.
    """
    flagged = _flagged(tree)
    rows = []
    copy = df[
        (df["derived_downloads"] < copy_downloads_below) & (df["overlap"] > copy_overlap_above)
    ]
    copy_reason = f"< {copy_downloads_below:g} downloads, overlap > {copy_overlap_above:g}"
    if flagged is not None:
        copy_reason += "; not a declared or packaged derivative (anomaly rule)"
    if flagged is None:
        groups = list(copy.groupby("derived", sort=True))
    else:  # the rules' models, each with every pair it is in
        groups = [
            (m, df[(df["a"] == m) | (df["b"] == m)]) for m in sorted(flagged["suspicious_copy"])
        ]
    for model, group in groups:
        if group.empty:
            continue
        parent = flagged["parent"].get(model) if flagged is not None else None
        to_parent = group[(group["a"] == parent) | (group["b"] == parent)]
        r = group.loc[to_parent.index[0] if len(to_parent) else group["overlap"].idxmax()]
        is_a = model == r["a"]
        rows.append(
            {
                "pattern": "suspicious_copy",
                "model": model,
                "other": r["b"] if is_a else r["a"],
                "downloads": r["downloads_a"] if is_a else r["downloads_b"],
                "overlap": r["overlap"],
                "identity": r["identity"],
                "family": r["family_a"] if is_a else r["family_b"],
                "matches": int(
                    ((group["derived"] == model) & (group["overlap"] > copy_overlap_above)).sum()
                ),
                "reason": copy_reason,
            }
        )
    for r in df[df["declarer"].notna()].itertuples():
        is_a = r.declarer == r.a
        downloads = r.downloads_a if is_a else r.downloads_b
        if flagged is not None and r.declarer not in flagged["mislabeled"]:
            continue
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


def _flagged(tree: Mapping | None) -> dict[str, Any] | None:
    """The models the anomaly rules flagged per pattern, and each model's recovered parent;
    None when the tree does not carry the rules' outcome (nodes without `anomalies`)."""
    nodes = list((tree or {}).get("nodes", []))
    if not nodes or not all("anomalies" in n for n in nodes):
        return None
    return {
        "suspicious_copy": {n["id"] for n in nodes if "suspicious_copy" in n["anomalies"]},
        "mislabeled": {n["id"] for n in nodes if "mislabeled" in n["anomalies"]},
        "parent": {n["id"]: n.get("parent") for n in nodes},
    }


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
# The lineage map: mean overlap vs the share of untouched slots
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


def untouched_share(per_slot: Iterable[Any], identical_slot: float = IDENTICAL_SLOT) -> float:
    """The share of a pair's slots whose weights are byte-identical (identity >= identical_slot).

    NaN for a pair without per-slot detail (the store keeps none for most unrelated pairs).
    """
    values = [
        s.get("identity") if isinstance(s, dict) else getattr(s, "identity", None) for s in per_slot
    ]
    known = [float(v) for v in values if v is not None]
    return float(np.mean([v >= identical_slot for v in known])) if known else np.nan


def lineage_map_regions(
    df: pd.DataFrame,
    *,
    unrelated_below: float = UNRELATED_BELOW,
    partial_from: float = PARTIAL_FROM,
    identical_from: float = IDENTICAL_FROM,
) -> pd.DataFrame:
    """A copy of `df` with an `untouched` column (`untouched_share` of its per_slot, unless `df`
    has one) and a `region` column (see `MAP_REGIONS`).

    - "unrelated": mean overlap in [0, unrelated_below), whatever else (no per-slot detail is
      needed to call a pair unrelated);
    - "byte-identical": related, untouched share >= identical_from (a copy or re-upload);
    - "partly untouched": related, untouched share in [partial_from, identical_from): some
      tensors byte-identical, others trained (a partial fine-tune, a merged adapter, or two
      siblings that both kept what their parent left untouched);
    - "trained throughout": related, untouched share < partial_from (fine-tunes, quantizations,
      casts, and merges: a merge is not a region, see the module notes);
    - None where the overlap is missing, or where a related pair has no per-slot detail.
    """
    out = df.copy()
    if "untouched" not in out.columns:
        per_slot = out["per_slot"] if "per_slot" in out.columns else pd.Series([[]] * len(out))
        out["untouched"] = [untouched_share(p) for p in per_slot]
    out["untouched"] = out["untouched"].astype(float)
    out["region"] = None
    related = query_pairs(out, overlap_min=unrelated_below)
    out.loc[query_pairs(out, overlap_max=unrelated_below).index, "region"] = "unrelated"
    share = related["untouched"]
    out.loc[related.index[(share >= identical_from).to_numpy()], "region"] = "byte-identical"
    partly = (share >= partial_from) & (share < identical_from)
    out.loc[related.index[partly.to_numpy()], "region"] = "partly untouched"
    out.loc[related.index[(share < partial_from).to_numpy()], "region"] = "trained throughout"
    return out
