"""The seed's two suspicious patterns (likely copy or test upload; likely mislabeled card),
as the anomaly rules decided them when the tree carries them, and what the seed's download
filters keep.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

# The seed's filters: keep pairs whose derived model has more than this many downloads.
STRATEGIES = (("conservative", 100), ("balanced", 10), ("flag-all", None))


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
