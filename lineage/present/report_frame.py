"""The pairs frame of the report, where the report's modules have always found it.

The frame itself is built in the core (`lineage.frames.pairs_frame`), beside the other store
frames, so that a notebook gets it without the presentation layer; this module names the same
objects for the report's code and for callers that import them from here.
"""

from __future__ import annotations

from lineage.frames import (
    ALL,
    BUCKETS,
    declared_families,
    download_bucket,
    pairs_frame,
    quality_flag,
)

__all__ = [
    "ALL",
    "BUCKETS",
    "declared_families",
    "download_bucket",
    "pairs_frame",
    "quality_flag",
]
