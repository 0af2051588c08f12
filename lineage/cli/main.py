"""`lineage`: a thin shell over the library. Each subcommand is one library call.

Exit codes: 0 success, 1 a user-facing error (one line saying what to do), 2 usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from lineage.store import Store, default_db_path

EPILOG = "Database: --db PATH, else $LINEAGE_DB, else ./lineage.db. Every command has --help."


def _print_json(obj: object) -> None:
    json.dump(obj, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def _report_failures(failures) -> None:
    for f in failures:
        print(f"error: {f.reason}", file=sys.stderr)


# ---- commands ----------------------------------------------------------------------------


def cmd_add(args: argparse.Namespace, store: Store) -> int:
    from lineage import pipeline
    from lineage.progress import Progress

    summary = pipeline.add_local(store, args.paths)
    fp = None
    if not args.no_fingerprint:
        ids = [*summary.new, *summary.changed]
        fp = (
            pipeline.fingerprint_models(
                store,
                ids,
                device=args.device,
                progress=Progress("fingerprint", enabled=not args.json),
            )
            if ids
            else None
        )
    if args.json:
        _print_json(
            {
                "new": list(summary.new),
                "changed": list(summary.changed),
                "unchanged": list(summary.unchanged),
                "failed": [_failure(f) for f in (*summary.failed, *(fp.failed if fp else ()))],
                "fingerprinted": list(fp.fingerprinted) if fp else [],
            }
        )
    else:
        print(
            f"added {len(summary.new)} new, {len(summary.changed)} changed, "
            f"{len(summary.unchanged)} unchanged, {len(summary.failed)} failed"
            + (
                f"; fingerprinted {len(fp.fingerprinted)} ({fp.bytes_read / 1e6:.1f} MB read)"
                if fp
                else ""
            )
        )
    _report_failures(summary.failed)
    if fp:
        _report_failures(fp.failed)
    return 1 if summary.failed or (fp and fp.failed) else 0


def _failure(f) -> dict:
    return {"model": f.model, "status": f.status, "reason": f.reason}


def cmd_fingerprint(args: argparse.Namespace, store: Store) -> int:
    from lineage import pipeline
    from lineage.progress import Progress

    summary = pipeline.fingerprint_models(
        store,
        args.ids,
        everything=args.all,
        device=args.device,
        progress=Progress("fingerprint", enabled=not args.json),
    )
    if args.json:
        _print_json(
            {
                "fingerprinted": list(summary.fingerprinted),
                "skipped": list(summary.skipped),
                "failed": [_failure(f) for f in summary.failed],
                "bytes_read": summary.bytes_read,
            }
        )
    else:
        print(
            f"fingerprinted {len(summary.fingerprinted)}, up to date {len(summary.skipped)}, "
            f"failed {len(summary.failed)}; {summary.bytes_read / 1e6:.1f} MB read"
        )
    _report_failures(summary.failed)
    return 1 if summary.failed else 0


def cmd_compare(args: argparse.Namespace, store: Store) -> int:
    from lineage import pipeline

    result = pipeline.compare_refs(store, args.a, args.b, device=args.device, alpha=args.alpha)
    if args.json:
        _print_json(result.to_dict())
        return 0
    p = f"{result.p_value:.3g}" if result.p_value > 0 else "< 1e-300"
    print(f"{result.a}  vs  {result.b}")
    print(f"  verdict   {result.verdict}")
    print(
        f"  overlap   {result.overlap:.4f} (median {result.overlap_median:.4f}, "
        f"min {result.overlap_min:.4f}, std {result.overlap_std:.4f})"
    )
    print(f"  identity  {result.identity:.4f}  (fraction of exactly equal weights)")
    print(f"  p-value   {p}  over {result.slots_compared} slots")
    for w in result.warnings:
        print(f"  note: {w}")
    if args.per_slot:
        for s in result.per_slot:
            print(f"    {s.tensor:<50} overlap {s.overlap:.3f} identity {s.identity:.3f}")
    return 0


def cmd_tree(args: argparse.Namespace, store: Store) -> int:
    from lineage.build import build_lineage
    from lineage.present.export import export

    graph = build_lineage(store, device=args.device)
    family = None
    if args.family:
        node = next((n for n in graph.nodes if n.id == args.family), None)
        if node is None:
            from lineage.errors import UnknownModelError

            raise UnknownModelError(
                args.family,
                f"{args.family!r} has no signature in the database; "
                "`lineage add` or `lineage crawl` it first",
            )
        family = node.family
    if args.out is None:
        if args.format != "json":
            print(f"error: --format {args.format} needs --out PATH", file=sys.stderr)
            return 1
        _print_json(graph.to_json(family))
        return 0
    for path in export(graph, args.format, args.out, family):
        print(f"wrote {path}")
    return 0


def cmd_anomalies(args: argparse.Namespace, store: Store) -> int:
    from lineage.build import build_lineage

    graph = build_lineage(store, device=args.device)
    found = [a for a in graph.anomalies if args.kind is None or a.kind in args.kind]
    if args.json:
        _print_json([a.to_dict() for a in found])
        return 0
    if not found:
        print("no anomalies found")
    for a in found:
        print(f"{a.severity:<6} {a.kind:<24} {a.model}\n       {a.evidence}")
    return 0


def cmd_audit(args: argparse.Namespace, store: Store) -> int:
    from lineage.build import audit

    report = audit(store, args.id, device=args.device)
    doc = report.to_dict()
    if args.plot and report.closest:
        from lineage.present.plots import plot_layer_profile

        closest = {c["model"]: c for c in doc["closest"]}
        best = report.parent_edges[0].parent if report.parent_edges else doc["closest"][0]["model"]
        per_slot = closest.get(best, doc["closest"][0])["per_slot"]
        doc["plot"] = [
            str(p) for p in plot_layer_profile(per_slot, args.plot, f"{args.id} vs {best}")
        ]
    if args.json:
        _print_json(doc)
        return 0
    print(args.id)
    print(f"  declared base   {', '.join(doc['declared_base']) or '(none)'}")
    print(
        f"  recovered       {', '.join(doc['recovered_parents']) or '(root: no parent found)'}"
        + (f"  [{doc['relation']}]" if doc["relation"] else "")
    )
    print(f"  family          {doc['family']}")
    if doc["children"]:
        print(f"  children        {', '.join(doc['children'])}")
    print("  closest models")
    for c in doc["closest"]:
        p = f"{c['p_value']:.2g}" if c["p_value"] > 0 else "<1e-300"
        print(f"    {c['model']:<44} overlap {c['overlap']:.3f} identity {c['identity']:.2f} p {p}")
        if c["shared_layers"]:
            print(f"      identical layers: {len(c['shared_layers'])} of {len(c['per_slot'])}")
    for a in doc["anomalies"]:
        print(f"  anomaly [{a['severity']}] {a['kind']}: {a['evidence']}")
    if "plot" in doc:
        print(f"  layer profile   {', '.join(doc['plot'])}")
    return 0


def _report_inputs(store: Store, device: str):
    from lineage.build import build_lineage
    from lineage.present.report import pairs_frame

    graph = build_lineage(store, device=device)
    tree = graph.to_json()
    return graph, tree, pairs_frame(store.pairs(), store.models(), tree)


def cmd_report(args: argparse.Namespace, store: Store) -> int:
    from lineage.present.report import build_report

    _, tree, df = _report_inputs(store, args.device)
    paths = build_report(df, tree, args.out, figures=not args.no_figures)
    print(f"wrote {paths.report} ({len(df)} pairs, {len(paths.figures)} figure files)")
    return 0


def cmd_plot(args: argparse.Namespace, store: Store) -> int:
    from lineage.present import plots
    from lineage.present.plots_map import plot_lineage_map
    from lineage.present.plots_tree import plot_family_tree

    graph, tree, df = _report_inputs(store, args.device)
    out = args.out
    if args.figure == "all":
        written = plots.write_all_figures(df, tree, out)
    elif args.figure == "tree":
        family = None
        if args.family:
            family = next((n.family for n in graph.nodes if n.id == args.family), args.family)
        written = plot_family_tree(tree, f"{out}/family_tree", family=family)
    elif args.figure == "heatmap":
        written = plots.plot_heatmap(df, tree, f"{out}/overlap_heatmap")
    elif args.figure == "downloads":
        written = plots.plot_downloads_vs_overlap(df, f"{out}/downloads_vs_overlap")
    else:
        written = plot_lineage_map(df, f"{out}/lineage_map")
    for path in written:
        print(f"wrote {path}")
    return 0


def cmd_demo(args: argparse.Namespace, store: Store | None) -> int:
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
    print(
        f"look at: {d.out}/evaluation.md, {d.out}/report/report.md, {d.out}/exports/, "
        f"{d.out}/lineage.db (try `lineage --db {d.out}/lineage.db anomalies`)"
    )
    return 0 if d.models and d.edges else 1


# ---- parser ------------------------------------------------------------------------------

Command = Callable[[argparse.Namespace, Store], int]


def _device(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where to compute signatures: auto uses a GPU when torch sees one (default: auto)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lineage",
        description="Recover the family trees of machine-learning models from their weights.",
        epilog=EPILOG,
    )
    parser.add_argument(
        "--db", default=None, help="SQLite database (default: $LINEAGE_DB or ./lineage.db)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "add",
        help="register local model folders (or a folder of them) and fingerprint them",
        description="Register local HF-style model folders: safetensors (single or sharded), "
        "config.json and README front matter. Only headers and small windows are read. "
        "A folder of folders is searched (ids are relative paths, e.g. org/name).",
    )
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--no-fingerprint", action="store_true", help="only read metadata")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _device(p)
    p.set_defaults(func=cmd_add)

    p = sub.add_parser(
        "fingerprint",
        help="compute signatures for models in the database",
        description="Compute signatures. Without IDs: every model whose signature is missing "
        "or stale. With IDs: those, recomputed. --all: recompute everything.",
    )
    p.add_argument("ids", nargs="*", metavar="ID")
    p.add_argument("--all", action="store_true", help="recompute every model's signature")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _device(p)
    p.set_defaults(func=cmd_fingerprint)

    p = sub.add_parser(
        "compare",
        help="does B derive from A? overlap, identity, p-value, verdict",
        description="Compare two models given as ids in the database or local model folders. "
        "overlap: mean fraction of shared bottom-k positions (1 = same extremes, about k/window "
        "for unrelated models); identity: fraction of exactly equal weights; p-value: chance "
        "of this much overlap between unrelated models. Verdict: identical, derived, "
        "unrelated or incomparable (no tensors in common).",
    )
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--per-slot", action="store_true", help="list every compared tensor")
    p.add_argument(
        "--alpha", type=float, default=1e-4, help="significance level for 'derived' (default 1e-4)"
    )
    _device(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "tree",
        help="the recovered family trees (json, graphml, gexf, csv, dot)",
        description="Recover families and parent -> child edges from every fingerprinted model "
        "and print them as JSON (nodes: id, family, parent, parents, relation, confidence, "
        "downloads, created_at, declared_base, anomalies; edges: parent, child, overlap, "
        "identity, p_value, confidence, relation) or export them with --out.",
    )
    p.add_argument("--family", metavar="ID", help="only the family of this model")
    p.add_argument("--format", choices=("json", "graphml", "gexf", "csv", "dot"), default="json")
    p.add_argument(
        "--out", metavar="PATH", help="write here (csv writes PATH_nodes.csv and PATH_edges.csv)"
    )
    _device(p)
    p.set_defaults(func=cmd_tree)

    p = sub.add_parser(
        "audit",
        help="declared vs recovered lineage of one model, closest relatives, anomalies",
        description="Audit one model: its declared base against the parent recovered from the "
        "weights, its closest models with overlap / identity / p-value, which layers are "
        "byte-identical, and any anomalies.",
    )
    p.add_argument("id", metavar="ID")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--plot", metavar="PATH", help="also draw the per-layer overlap profile (PNG+SVG)"
    )
    _device(p)
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser(
        "anomalies",
        help="models whose declared lineage does not match their weights",
        description="Kinds: declared_base_mismatch, missing_base, reupload, suspicious_copy "
        "(<10 downloads, overlap > 0.9), mislabeled (>100 downloads, overlap < 0.1 with the "
        "declared base), undeclared_merge. Each has a severity, a score and its evidence.",
    )
    p.add_argument("--kind", action="append", help="only this kind (repeatable)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _device(p)
    p.set_defaults(func=cmd_anomalies)

    p = sub.add_parser(
        "report",
        help="the seed study on the database: overlap by download bucket, t-tests, figures",
        description="Write report.md, CSVs and figures: same- vs different-family overlap by "
        "download bucket (0-10, 10-100, 100-1k, >1k: n, mean, median, std, min, max), Welch "
        "t-tests, the two suspicious patterns, the filter strategies, and every figure.",
    )
    p.add_argument(
        "--out", default="lineage-report", metavar="DIR", help="(default: ./lineage-report)"
    )
    p.add_argument("--no-figures", action="store_true", help="tables only")
    _device(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "plot",
        help="draw one figure (tree, heatmap, downloads, map) or all of them",
        description="tree: family trees layered by generation (size: downloads, colour: "
        "relation, width: overlap, red: anomalies); heatmap: overlap ordered by family; "
        "downloads: the seed's downloads-vs-overlap panels; map: mean overlap vs its "
        "variability across layers, with regions. PNG and SVG. The per-layer profile of one "
        "pair is `lineage audit ID --plot PATH`.",
    )
    p.add_argument("figure", choices=("all", "tree", "heatmap", "downloads", "map"))
    p.add_argument("--family", metavar="ID", help="tree: only the family of this model")
    p.add_argument(
        "--out", default="lineage-figures", metavar="DIR", help="(default: ./lineage-figures)"
    )
    _device(p)
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser(
        "demo",
        help="offline end-to-end demo on a generated model zoo (a few minutes)",
        description="Generate a small zoo of models with known lineage, serve it as a local "
        "Hub on 127.0.0.1, crawl it through huggingface_hub, fingerprint, recover the tree, "
        "list anomalies, export every format, score against the truth and write the report. "
        "Uses its own database under --out; never touches the network or your HF token.",
    )
    p.add_argument("--out", default="demo-out", metavar="DIR", help="(default: ./demo-out)")
    p.add_argument("--seed", type=int, default=0, help="zoo seed (default 0)")
    _device(p)
    p.set_defaults(func=cmd_demo, no_store=True)

    from lineage.cli.crawl import register

    register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from lineage.errors import user_errors

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "no_store", False):
            return int(args.func(args, None))
        with Store(args.db or default_db_path()) as store:
            return int(args.func(args, store))
    except user_errors() as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; work done so far is saved, re-run to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
