"""The report folder: the seed study's tables as CSV and Markdown, with the figures.

`build_report(pairs_df, tree, out_dir)` writes report.md, stats_by_bucket.csv, ttests.csv,
suspicious.csv, strategies.csv, pairs.csv and figures/ (see docs/report.md for how to read each).
The rows come from `lineage.frames.pairs_frame`, the numbers from
`lineage.present.report_stats`; the figures from `lineage.present.plots`, imported only when
figures are drawn.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lineage.frames import ALL, pairs_frame
from lineage.present.report_stats import (
    IDENTICAL_FROM,
    IDENTICAL_SLOT,
    MAP_REGIONS,
    PARTIAL_FROM,
    UNRELATED_BELOW,
    filter_strategies,
    lineage_map_regions,
    stats_by_bucket,
    suspicious_pairs,
    welch_ttests,
)

# pairs_frame and lineage_map_regions are re-exported for docs/report.md's example.
__all__ = ["ReportPaths", "build_report", "lineage_map_regions", "markdown_table", "pairs_frame"]


def markdown_table(df: pd.DataFrame, *, digits: int = 4) -> str:
    """A pipe table whose columns are padded, so it reads as plain text too.

    Floats get `digits` decimals, p-values scientific notation, missing values "-".
    """
    if df.empty:
        return "_(none)_\n"

    def cell(col: str, v: Any) -> str:
        if v is None or (not isinstance(v, str) and pd.isna(v)):
            return "-"
        if isinstance(v, (float, np.floating)):
            if col.startswith("p_value"):
                return f"{v:.2e}"
            return f"{v:.0f}" if col.endswith("downloads") else f"{v:.{digits}f}"
        return str(v)

    header = [str(c) for c in df.columns]
    body = [
        [cell(c, v) for c, v in zip(df.columns, row, strict=True)]
        for row in df.itertuples(index=False)
    ]
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(header)]
    numeric = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]

    def line(cells: Sequence[str]) -> str:
        padded = (
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(cells, widths, numeric, strict=True)
        )
        return "| " + " | ".join(padded) + " |"

    rule = "|".join(
        "-" * (w + 1) + ":" if num else "-" * (w + 2)
        for w, num in zip(widths, numeric, strict=True)
    )
    rule = f"|{rule}|"
    return "\n".join([line(header), rule, *(line(r) for r in body)]) + "\n"


@dataclass(frozen=True, slots=True)
class ReportPaths:
    """What `build_report` wrote.

    Attributes:
        report: report.md.
        stats_by_bucket, ttests, suspicious, strategies, pairs: the CSV files.
        figures: the PNG and SVG files (empty when figures were not asked for).
    """

    report: Path
    stats_by_bucket: Path
    ttests: Path
    suspicious: Path
    strategies: Path
    pairs: Path
    figures: tuple[Path, ...] = ()


def build_report(
    pairs_df: pd.DataFrame,
    tree: Mapping,
    out_dir: str | Path,
    *,
    figures: bool = True,
    top_families: int = 5,
) -> ReportPaths:
    """Write report.md, the CSVs and (unless `figures=False`) the figures under `out_dir`.

    Args:
        pairs_df: from `pairs_frame`.
        tree: the tree JSON (for the figures and the family count; the anomalies its nodes list
            decide the suspicious table, see `suspicious_pairs`).
        out_dir: created if missing; figures go to `out_dir/figures`.
        figures: draw the figures (matplotlib) too.
        top_families: the Markdown tables show "all" and this many families with the most pairs;
            the CSVs hold every family.

    Returns:
        The paths written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stats = stats_by_bucket(pairs_df)
    ttests = welch_ttests(pairs_df)
    suspicious = suspicious_pairs(pairs_df, tree)
    strategies = filter_strategies(pairs_df)
    paths = ReportPaths(
        report=out / "report.md",
        stats_by_bucket=out / "stats_by_bucket.csv",
        ttests=out / "ttests.csv",
        suspicious=out / "suspicious.csv",
        strategies=out / "strategies.csv",
        pairs=out / "pairs.csv",
    )
    stats.to_csv(paths.stats_by_bucket, index=False)
    ttests.to_csv(paths.ttests, index=False)
    suspicious.to_csv(paths.suspicious, index=False)
    strategies.to_csv(paths.strategies, index=False)
    lineage_map_regions(pairs_df).drop(columns=["per_slot"], errors="ignore").to_csv(
        paths.pairs, index=False
    )
    drawn: tuple[Path, ...] = ()
    if figures:
        from lineage.present.plots import write_all_figures

        drawn = tuple(write_all_figures(pairs_df, tree, out / "figures"))
    tables = {"stats": stats, "ttests": ttests, "suspicious": suspicious, "strategies": strategies}
    text = _report_text(pairs_df, tree, tables, drawn, out, top_families)
    paths.report.write_text(text, encoding="utf-8")
    return dataclasses.replace(paths, figures=drawn)


def _top(table: pd.DataFrame, families: list[str]) -> pd.DataFrame:
    """The rows of family "all", then those of `families`, in that order."""
    order = {f: i for i, f in enumerate([ALL, *families])}
    keep = table[table["family"].isin(order)]
    return keep.iloc[np.argsort(keep["family"].map(order).to_numpy(), kind="stable")]


def _report_text(
    df: pd.DataFrame,
    tree: Mapping,
    tables: dict[str, pd.DataFrame],
    figures: Sequence[Path],
    out: Path,
    top: int,
) -> str:
    n_models = len(set(df["a"]) | set(df["b"]))
    n_families = len({n.get("family") for n in tree.get("nodes", [])})
    n_same = int(df["same_family"].sum())
    lines = [
        "# Lineage report",
        "",
        f"{len(df)} compared pairs over {n_models} models; {n_families} recovered families. "
        f"{n_same} same-family pairs, {len(df) - n_same} different-family pairs.",
        "",
        "Download buckets are those of the derived (later created) model of each pair: "
        "`0-10` is <= 10, `10-100` is 11-100, `100-1k` is 101-1000, `>1k` is > 1000. "
        f'Tables show family "all" and the {top} families with the most pairs; the CSV files '
        "hold every family. How to read each table and figure: docs/report.md.",
        "",
    ]
    if len(df) and not df["derived_downloads"].any():
        lines += [
            "**Every model has 0 downloads** (models added from local folders carry no download "
            "counts), so all pairs fall in bucket `0-10` and the download filters keep nothing.",
            "",
        ]

    def md(table: pd.DataFrame) -> str:
        return markdown_table(table).rstrip("\n")

    stats, ttests = tables["stats"], tables["ttests"]
    for basis, fam_col in (
        ("recovered", "derived_family"),
        ("declared", "derived_declared_family"),
    ):
        s = stats[stats["basis"] == basis]
        if s.empty:
            continue
        families = list(df[fam_col].dropna().value_counts().index[:top])
        lines += [f"## Overlap by download bucket: {basis} families", ""]
        lines += [md(_top(s, families).drop(columns="basis")), ""]
        t = ttests[ttests["basis"] == basis]
        lines += [f"### Welch t-tests, same vs different family ({basis})", ""]
        lines += ["Two-sided, unequal variances (scipy.stats.ttest_ind, equal_var=False).", ""]
        lines += [md(_top(t, families).drop(columns="basis")), ""]
    regions = lineage_map_regions(df)["region"].value_counts()
    region_table = pd.DataFrame(
        {"region": list(MAP_REGIONS), "n_pairs": [int(regions.get(r, 0)) for r in MAP_REGIONS]}
    )
    suspicious_note = (
        "The models the anomaly rules flagged (`lineage anomalies`): `suspicious_copy`, a model "
        "with < 10 downloads and overlap > 0.9 with its recovered parent that is not a declared "
        "derivative, a quantization or a format conversion; `mislabeled`, a model with > 100 "
        "downloads and overlap < 0.1 with the base its card declares."
        if any("anomalies" in n for n in tree.get("nodes", []))
        else "The seed's thresholds (no anomalies in the tree): `suspicious_copy`, derived model "
        "with < 10 downloads and overlap > 0.9 (a copy or a test upload); `mislabeled`, a model "
        "with > 100 downloads and overlap < 0.1 with the base its card declares."
    )
    lines += [
        "## Suspicious pairs",
        "",
        suspicious_note,
        "",
        md(tables["suspicious"]),
        "",
        "## Filter strategies",
        "",
        "What each filter on the derived model's downloads keeps.",
        "",
        md(tables["strategies"]),
        "",
        "## Lineage map regions",
        "",
        f"A slot is untouched when its exact-value identity is >= {IDENTICAL_SLOT}. unrelated: "
        f"mean overlap < {UNRELATED_BELOW}; byte-identical: >= {IDENTICAL_FROM:.0%} of slots "
        f"untouched (copies); partly untouched: {PARTIAL_FROM:.0%} to {IDENTICAL_FROM:.0%} "
        "(partial fine-tunes, merged adapters); trained throughout: the rest (fine-tunes, "
        "quantizations, casts, and merges, which no region of one pair can tell apart: the "
        "graph finds them).",
        "",
        md(region_table),
        "",
    ]
    pngs = [p for p in figures if p.suffix == ".png"]
    if pngs:
        lines += ["## Figures", ""]
        lines += [f"![{p.stem}]({p.relative_to(out).as_posix()})\n" for p in pngs]
    return "\n".join(lines)
