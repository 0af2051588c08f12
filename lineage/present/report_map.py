"""The lineage map's regions: mean overlap against the share of a pair's slots that are
byte-identical ("untouched"), and half-open range queries over the pairs frame.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

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
