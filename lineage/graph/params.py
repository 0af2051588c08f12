"""The graph's thresholds and prior weights, and the download-based confidence.

The weights were chosen on three zoo seeds (docs/design.md, "Graph"); changing one changes
recovered parents, so each says what it weighs.
"""

from __future__ import annotations

from dataclasses import dataclass

from lineage.allpairs import DEFAULT_ALPHA, PairStats


@dataclass(frozen=True, slots=True)
class Confidence:
    """Download-weighted confidence, the seed's buckets by default: >100: 1.0, >10: 0.7, else 0.3."""

    buckets: tuple[tuple[int, float], ...] = ((100, 1.0), (10, 0.7))
    floor: float = 0.3

    def __call__(self, downloads: int) -> float:
        for threshold, value in self.buckets:
            if downloads > threshold:
                return value
        return self.floor


@dataclass(frozen=True, slots=True)
class GraphParams:
    """Thresholds and weights of the graph steps (significance, priors, merges, relations)."""

    alpha: float = DEFAULT_ALPHA
    candidates: int = 16
    detail_all: int = 50_000
    # a merge's drift to each parent is below this share of the parents' drift to each other
    merge_between: float = 0.6
    # ... or below this share when the card declares both parents
    merge_between_declared: float = 0.95
    # two fine-tunes of the main parent make a merge only if the child is no closer to that
    # parent than this share of its drift to them
    merge_far: float = 0.8
    # a slot with fewer distinct values per row than this share is on a quantization grid,
    # and a model with this share of such slots is quantized
    coarse_distinct: float = 0.6
    coarse_share: float = 0.25
    identical_slot: float = 0.9
    # in drift units (-ln overlap): see `branch.parent_score`
    declared: float = 0.05
    download_deficit: float = 0.02
    # drift is divided by 1 + popularity x log10(1 + the candidate's downloads)
    popularity: float = 0.3
    # orientation from a download gap of 10x or more: this much per decade, capped
    downloads_orientation: float = 0.75
    downloads_orientation_cap: float = 2.5
    confidence: Confidence = Confidence()


def detail_top(stats: PairStats, params: GraphParams) -> int | None:
    """How many partners per model get a per-slot comparison (the `top` of `candidate_pairs`).

    Every significant pair while that is affordable (None); beyond, each model's strongest
    `params.candidates`.
    """
    return None if stats.i.size <= params.detail_all else params.candidates
