"""Handlers of the commands that write files: report, plot and demo."""

from __future__ import annotations

import argparse

from lineage.store import Store

__all__ = ["cmd_demo", "cmd_plot", "cmd_report"]


def _report_inputs(store: Store, device: str):
    from lineage.build import build_lineage
    from lineage.present.report_frame import pairs_frame

    graph = build_lineage(store, device=device)
    tree = graph.to_json()
    return graph, tree, pairs_frame(store.pairs(), store.models(), tree)


def cmd_report(args: argparse.Namespace, store: Store) -> int:
    """`lineage report`: the report folder (tables, CSVs and figures)."""
    from lineage.present.report import build_report

    _, tree, df = _report_inputs(store, args.device)
    paths = build_report(df, tree, args.out, figures=not args.no_figures)
    print(f"wrote {paths.report} ({len(df)} pairs, {len(paths.figures)} figure files)")
    return 0


def cmd_plot(args: argparse.Namespace, store: Store) -> int:
    """`lineage plot FIGURE`: one figure of `lineage.present.figures.FIGURES`, or all."""
    from lineage.present.figures import draw_figure

    graph, tree, df = _report_inputs(store, args.device)
    family = None
    if args.family:
        family = next((n.family for n in graph.nodes if n.id == args.family), args.family)
    for path in draw_figure(args.figure, df, tree, args.out, family=family):
        print(f"wrote {path}")
    return 0


def cmd_demo(args: argparse.Namespace, store: Store | None) -> int:
    """`lineage demo`: the offline end-to-end demo; exit 1 when it recovered nothing."""
    from lineage.lab.demo import run_demo

    d = run_demo(args.out, seed=args.seed, device=args.device)
    auc = f"{d.pair_auc:.3f}" if d.pair_auc is not None else "n/a"
    print()
    print(
        f"demo done in {d.seconds:.0f} s: {d.models} models, {d.families} families, "
        f"{d.edges} parent edges, {d.anomalies} anomalies; {d.bytes_fetched / 1e6:.1f} MB fetched"
    )
    print(
        f"against the zoo's truth: parent accuracy {d.parent_accuracy:.1%}, "
        f"family ARI {d.family_ari:.3f}, pair AUC {auc}"
    )
    print(d.next_steps())
    return 0 if d.models and d.edges else 1
