"""Detailed pair comparisons, cached in the store under both models' revisions.

A pair is recomputed only when one of its models changed (a new revision drops its signature
and pairs in the store) or the comparison rules did (`COMPARE_VERSION`, kept in `detail`). A detailed pair is stored once: the `pairs` columns hold what they name
and `detail` the rest of the `PairResult` (`DETAIL_FIELDS`), so `pair_result` rebuilds it
exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields
from operator import attrgetter
from typing import TYPE_CHECKING

from fingerprint.comparison import COMPARE_VERSION, PairResult, SlotComparison, compare
from fingerprint.significance import log10
from hub.records import ModelRecord
from lineage.store import PairRow, Store

if TYPE_CHECKING:  # reading stored pairs (audit) imports neither torch nor scipy
    from fingerprint.signature import Signature
    from lineage.allpairs import PairStats

__all__ = [
    "BACKGROUND_DETAIL",
    "DETAIL_FIELDS",
    "cached_pairs",
    "is_current",
    "pair_result",
    "pair_row",
]

# up to this many unrelated pairs get a full per-slot comparison (for the lineage map)
BACKGROUND_DETAIL = 20_000
# The fields of a PairResult that are not columns of `pairs`, kept in `detail`.
DETAIL_FIELDS = (
    "overlap_std",
    "overlap_median",
    "overlap_min",
    "slots_a",
    "slots_b",
    "per_slot",
    "warnings",
    "layer_map",
)
# ... of which a row must hold these to stand for a comparison (the others have defaults)
_REQUIRED = DETAIL_FIELDS[:6]
# `per_slot`'s stored columns (`pack_detail` sorts a slot's field names), and a slot's values
_SLOT_COLUMNS = sorted(f.name for f in fields(SlotComparison))
_slot_row = attrgetter(*_SLOT_COLUMNS)


def pair_row(
    p: PairResult, records: Mapping[str, ModelRecord], *, columns: bool = False
) -> PairRow:
    """The stored form of a detailed comparison, with `a < b` and each value once.

    `columns`: `per_slot` already in the form the store packs it in (`pack_detail`: the field
    names once, a row of values a slot), read from the records directly, for rows going
    straight to `put_pairs`: the same stored bytes without a dictionary a slot made and taken
    apart again (a first build writes tens of thousands of pairs of 64 slots). Rows read back
    hold `per_slot` as dictionaries either way.
    """
    if columns:
        detail = {name: getattr(p, name) for name in DETAIL_FIELDS}
        detail["per_slot"] = (
            {"columns": _SLOT_COLUMNS, "rows": [list(_slot_row(s)) for s in p.per_slot]}
            if p.per_slot
            else []
        )
        detail["warnings"] = list(p.warnings)
        detail["layer_map"] = [list(m) for m in p.layer_map]
    else:
        d = p.to_dict()
        detail = {k: d[k] for k in DETAIL_FIELDS}
    detail["compare"] = COMPARE_VERSION
    a, b = p.a, p.b
    if a > b:  # the store keeps a < b: the slot counts follow their models
        a, b = b, a
        detail["slots_a"], detail["slots_b"] = p.slots_b, p.slots_a
        detail["layer_map"] = sorted([j, i] for i, j in p.layer_map)
    return PairRow(
        a=a,
        b=b,
        revision_a=records[a].revision,
        revision_b=records[b].revision,
        overlap=p.overlap,
        identity=p.identity,
        p_value=p.p_value,
        log10_p=p.log10_p,
        slots_compared=p.slots_compared,
        verdict=p.verdict,
        detail=detail,
    )


def has_detail(row: PairRow | None) -> bool:
    """Whether `row` holds a full comparison (not only the overlap of a background pair)."""
    return row is not None and all(k in row.detail for k in _REQUIRED)


def is_current(row: PairRow | None, records: Mapping[str, ModelRecord]) -> bool:
    """Whether a cached row can stand for a fresh comparison: a full comparison, made by these
    comparison rules, of the models' current revisions."""
    return (
        has_detail(row)
        and row is not None
        and row.detail.get("compare") == COMPARE_VERSION
        and row.revision_a == records[row.a].revision
        and row.revision_b == records[row.b].revision
    )


def _float(value: float | None) -> float:
    # SQLite stores NaN as NULL; a detailed comparison never has a missing float otherwise.
    return math.nan if value is None else value


def pair_result(row: PairRow | None) -> PairResult | None:
    """The `PairResult` a stored row holds, or None when it holds no per-slot detail."""
    if row is None or not has_detail(row):
        return None
    return PairResult.from_dict(
        {
            "a": row.a,
            "b": row.b,
            "overlap": _float(row.overlap),
            "identity": _float(row.identity),
            "p_value": _float(row.p_value),
            "log10_p": _float(row.log10_p),
            "slots_compared": row.slots_compared,
            "verdict": row.verdict,
            **{k: row.detail[k] for k in DETAIL_FIELDS if k in row.detail},
        }
    )


def cached_pairs(
    store: Store,
    records: Mapping[str, ModelRecord],
    sigs: Mapping[str, Signature],
    stats: PairStats,
    counter: dict[str, int] | None = None,
    top: int | None = None,
) -> list[PairResult]:
    """Detailed results for significant pairs, from the store when current.

    `top`: only each model's strongest this-many partners (None: every significant pair).
    `counter["compared"]` (when given) is increased by the comparisons actually computed.
    """
    from lineage.allpairs import candidate_pairs

    wanted = [
        (a, b) if a < b else (b, a)
        for a, b in ((stats.ids[i], stats.ids[j]) for i, j in sorted(candidate_pairs(stats, top)))
    ]
    stored, current, held = _stored(store, records, set(wanted), stats.background is not None)
    computed = {
        (a, b): compare(sigs[a], sigs[b], alpha=stats.alpha_pair)
        for a, b in _by_family([key for key in wanted if key not in stored])
    }
    out = [stored.get(key) or computed[key] for key in wanted]
    fresh = [computed[key] for key in wanted if key in computed]
    if fresh:
        store.put_pairs(pair_row(p, records, columns=True) for p in fresh)
    if counter is not None:
        counter["compared"] = counter.get("compared", 0) + len(fresh)
    if stats.background is not None:
        # unrelated same-architecture pairs, for reports: full per-slot detail while that is
        # cheap, the overlap alone beyond
        bi, bj, bo, bp = stats.background
        rows = [
            (*sorted((stats.ids[i], stats.ids[j])), o, pv)
            for i, j, o, pv in zip(bi.tolist(), bj.tolist(), bo.tolist(), bp.tolist(), strict=True)
        ]
        detailed = [r for r in rows if r[:2] not in current]
        if len(detailed) <= BACKGROUND_DETAIL:
            if counter is not None:
                counter["compared"] += len(detailed)
            store.put_pairs(
                pair_row(compare(sigs[a], sigs[b], alpha=stats.alpha_pair), records, columns=True)
                for a, b, _, _ in detailed
            )
        else:  # overlap only, and only for pairs the store does not hold yet
            store.put_pairs(
                PairRow(
                    a,
                    b,
                    records[a].revision,
                    records[b].revision,
                    float(o),
                    None,
                    float(pv),
                    log10(float(pv)),
                    0,
                    "unrelated",
                    {},
                )
                for a, b, o, pv in rows
                if (a, b) not in held
            )
    return out


def _stored(
    store: Store,
    records: Mapping[str, ModelRecord],
    wanted: set[tuple[str, str]],
    background: bool,
) -> tuple[dict[tuple[str, str], PairResult], set[tuple[str, str]], set[tuple[str, str]]]:
    """From the store's pairs, read a batch at a time: the current results of `wanted` pairs,
    and (with `background`) which pairs are stored current and which are stored at all.

    Only what the build keeps is held: every row unpacked at once was most of a rebuild's
    memory (its peak was 1986 MB at 2,000 synthetic models, 1459 MB read this way)."""
    found: dict[tuple[str, str], PairResult] = {}
    current: set[tuple[str, str]] = set()
    held: set[tuple[str, str]] = set()
    for row in store.iter_pairs():
        key = (row.a, row.b)
        fresh = is_current(row, records)
        p = pair_result(row) if fresh and key in wanted else None
        if p is not None:  # a current row holds detail
            found[key] = p
        if background:
            held.add(key)
            if fresh:
                current.add(key)
    return found, current, held


def _by_family(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """`pairs` grouped by connected component (a family, mostly), then sorted: a model's
    comparisons come while the models it meets are still in the comparison's cache
    (`fingerprint.slot_counts`), whatever order the ids are in. The results do not depend on it."""
    root: dict[str, str] = {}

    def find(x: str) -> str:
        root.setdefault(x, x)
        while root[x] != x:
            root[x] = root[root[x]]
            x = root[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            root[max(ra, rb)] = min(ra, rb)
    return sorted(pairs, key=lambda p: (find(p[0]), p))
