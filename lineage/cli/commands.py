"""Handlers of the model commands (add, fingerprint, compare, tree, anomalies, audit).

Each calls its library function (named in `lineage.cli.table`) and prints the result; library
errors propagate to `lineage.cli.main`, which turns them into exit codes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lineage.store import Store

__all__ = [
    "check_add",
    "cmd_add",
    "cmd_anomalies",
    "cmd_audit",
    "cmd_compare",
    "cmd_fingerprint",
    "cmd_tree",
    "print_json",
    "report_failures",
]


def print_json(obj: object) -> None:
    """Write `obj` as indented JSON to stdout (non-JSON values as their str)."""
    json.dump(obj, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def report_failures(failures) -> None:
    """One `error: REASON` line on stderr per failed model."""
    for f in failures:
        print(f"error: {f.reason}", file=sys.stderr)


def check_add(args: argparse.Namespace) -> str | None:
    """The usage problem of an `add` command line, if any (see `lineage.cli.spec.Command`)."""
    if not args.paths and args.hf_cache is None:
        return "give model folders (PATH ...) or --hf-cache [REPO_ID ...]"
    if args.id is not None and args.hf_cache is not None:
        return "--id names one model folder; models from the HF cache keep their repo id"
    return None


def cmd_add(args: argparse.Namespace, store: Store) -> int:
    """`lineage add`: register local folders and/or HF cache snapshots, then fingerprint the
    new and changed ones."""
    from lineage import pipeline
    from lineage.progress import Progress

    summary = pipeline.AddSummary((), (), (), ())
    if args.paths:
        summary += pipeline.add_local(store, args.paths, model_id=args.id)
    if args.hf_cache is not None:
        summary += pipeline.add_hf_cache(store, args.hf_cache)
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
        print_json(
            {
                "new": list(summary.new),
                "changed": list(summary.changed),
                "unchanged": list(summary.unchanged),
                "failed": [_failure(f) for f in (*summary.failed, *(fp.failed if fp else ()))],
                "fingerprinted": list(fp.fingerprinted) if fp else [],
                "skipped": [_failure(f) for f in summary.skipped],
            }
        )
    else:
        print(
            f"added {len(summary.new)} new, {len(summary.changed)} changed, "
            f"{len(summary.unchanged)} unchanged, {len(summary.failed)} failed"
            + (f", {len(summary.skipped)} skipped" if summary.skipped else "")
            + (
                f"; fingerprinted {len(fp.fingerprinted)} ({fp.bytes_read / 1e6:.1f} MB read)"
                if fp
                else ""
            )
        )
        if summary.skipped:
            why = {"no_safetensors": "no weights", "other_revision": "another revision"}
            names = ", ".join(
                f"{f.model} ({why.get(f.status, f.status)})" for f in summary.skipped[:5]
            )
            more = f" and {len(summary.skipped) - 5} more" if len(summary.skipped) > 5 else ""
            print(f"skipped from the HF cache: {names}{more}")
    report_failures(summary.failed)
    if fp:
        report_failures(fp.failed)
    return 1 if summary.failed or (fp and fp.failed) else 0


def _failure(f) -> dict:
    return {"model": f.model, "status": f.status, "reason": f.reason}


def cmd_fingerprint(args: argparse.Namespace, store: Store) -> int:
    """`lineage fingerprint`: compute missing, stale or named signatures."""
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
        print_json(
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
    report_failures(summary.failed)
    return 1 if summary.failed else 0


def cmd_compare(args: argparse.Namespace, store: Store | None) -> int:
    """`lineage compare A B`: one pair, as a verdict with its numbers.

    The database (--db, $LINEAGE_DB, ./lineage.db) is opened only when it exists: ids are
    looked up there, and two folders are compared without creating one.
    """
    from lineage.store import default_db_path

    db = Path(args.db or default_db_path())  # the table row opens no store for compare
    if db.is_file():
        with Store(db) as opened:
            return _compare(args, opened)
    return _compare(args, None)


def _compare(args: argparse.Namespace, store: Store | None) -> int:
    from lineage import pipeline

    result = pipeline.compare_refs(store, args.a, args.b, device=args.device, alpha=args.alpha)
    low, high = result.interval()
    subspace = _adapter_subspace(args.a, args.b, store)
    if args.json:
        doc = {**result.to_dict(), "overlap_low": low, "overlap_high": high}
        if subspace is not None:
            doc["subspace"] = subspace.to_dict()
        print_json(doc)
        return 0
    p = f"{result.p_value:.3g}" if result.p_value > 0 else "< 1e-300"
    print(f"{result.a}  vs  {result.b}")
    print(f"  verdict   {result.verdict}")
    print(
        f"  overlap   {result.overlap:.4f} (median {result.overlap_median:.4f}, "
        f"min {result.overlap_min:.4f}, std {result.overlap_std:.4f})"
    )
    if low is not None:
        print(
            f"  interval  {low:.4f} .. {high:.4f}"
            "  (95% bootstrap over slots: how stable the overlap is)"
        )
    print(f"  identity  {result.identity:.4f}  (fraction of exactly equal weights)")
    print(f"  p-value   {p}  over {result.slots_compared} slots")
    if subspace is not None:
        print(
            f"  subspace  {subspace.similarity:.3f}  (left {subspace.left:.3f}, right "
            f"{subspace.right:.3f}; random pairs {subspace.baseline:.3f}) over "
            f"{subspace.modules_compared} modules"
        )
        print("            Grassmann similarity of the two updates: 1 = the same directions learnt")
        for why in subspace.skipped:
            print(f"  note: {why}")
    for w in result.warnings:
        print(f"  note: {w}")
    if args.per_slot:
        for s in result.per_slot:
            print(f"    {s.tensor:<50} overlap {s.overlap:.3f} identity {s.identity:.3f}")
    return 0


def _is_adapter(ref: str, store: Store | None) -> bool:
    """Whether a compare reference is a LoRA adapter, known without opening it: a stored
    model's record, or a folder holding adapter_model.safetensors."""
    record = store.get_model(ref) if store is not None else None
    if record is not None:
        return bool(record.extra.get("adapter"))
    return (Path(ref) / "adapter_model.safetensors").is_file()


def _adapter_subspace(a: str, b: str, store: Store | None) -> Any:
    """The Grassmann similarity of two adapters' updates (`lineage.adapters`), or None when
    either is not an adapter or its factors cannot be read (the verdict stands alone then)."""
    if not (_is_adapter(a, store) and _is_adapter(b, store)):
        return None
    from hub.errors import HubError
    from lineage.adapters import compare_adapters
    from lineage.errors import LineageError

    try:
        return compare_adapters(a, b, store=store)
    except (LineageError, HubError, OSError):
        return None


def cmd_tree(args: argparse.Namespace, store: Store) -> int:
    """`lineage tree`: the recovered trees as JSON on stdout, or exported with --out."""
    from lineage.build import build_lineage
    from lineage.cli.view import family_of
    from lineage.present.export import export, render

    graph = build_lineage(store, device=args.device)
    family = family_of(graph, args.family)
    if args.format == "html":  # the atlas, as `lineage view` writes it
        from lineage.cli.view import hub_ids
        from lineage.present.atlas import render_atlas, write_atlas

        ids = hub_ids(store)
        if args.out is None:
            sys.stdout.write(render_atlas(graph, family, hub_ids=ids))
        else:
            print(f"wrote {write_atlas(graph, args.out, family, hub_ids=ids)}")
        return 0
    if args.out is None:
        sys.stdout.write(render(graph, args.format, family))
        return 0
    for path in export(graph, args.format, args.out, family):
        print(f"wrote {path}")
    return 0


# `anomalies --fail-on LEVEL` found one: not 1 (an error) nor 2 (usage), so CI can tell them
FAIL_ON_EXIT = 3


def cmd_anomalies(args: argparse.Namespace, store: Store) -> int:
    """`lineage anomalies`: the anomalies of the recovered graph, most severe first, optionally
    of some kinds; with --fail-on LEVEL the exit code is 3 when one of that severity or worse
    is found (for CI)."""
    from lineage.anomalies import at_least, by_severity
    from lineage.build import build_lineage

    graph = build_lineage(store, device=args.device)
    found = by_severity([a for a in graph.anomalies if args.kind is None or a.kind in args.kind])
    failing = bool(args.fail_on and at_least(found, args.fail_on))
    if args.json:
        print_json([a.to_dict() for a in found])
    else:
        if not found:
            print("no anomalies found")
        for a in found:
            print(f"{a.severity:<6} {a.kind:<24} {a.model}\n       {a.evidence}")
    return FAIL_ON_EXIT if failing else 0


def cmd_audit(args: argparse.Namespace, store: Store) -> int:
    """`lineage audit ID`: declared vs recovered lineage of one model."""
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
        print_json(doc)
        return 0
    print(args.id)
    print(f"  declared base   {', '.join(doc['declared_base']) or '(none)'}")
    print(
        f"  recovered       {', '.join(doc['recovered_parents']) or '(root: no parent found)'}"
        + (f"  [{doc['relation']}]" if doc["relation"] else "")
    )
    print(f"  family          {doc['family']}")
    if doc["format"]:
        print(f"  read from       {doc['format']}")
    if doc["variants"]:
        print(f"  variants        {', '.join(doc['variants'])} (not read)")
    if doc["children"]:
        print(f"  children        {', '.join(doc['children'])}")
    print("  closest models")
    for c in doc["closest"]:
        p = f"{c['p_value']:.2g}" if c["p_value"] > 0 else "<1e-300"
        print(
            f"    {c['model']:<44} {c['verdict']:<9} overlap {c['overlap']:.3f} "
            f"identity {c['identity']:.2f} p {p}"
        )
        if c["layer_map"]:
            pairs = ", ".join(f"{i}->{j}" for i, j in sorted(c["layer_map"]))
            print(f"      layer map (this -> other): {pairs}")
        if c["shared_layers"]:
            print(f"      identical layers: {len(c['shared_layers'])} of {len(c['per_slot'])}")
    for e in doc["parent_edges"]:
        for note in e["notes"]:
            print(f"  from {e['parent']}: {note}")
    for a in doc["anomalies"]:
        print(f"  anomaly [{a['severity']}] {a['kind']}: {a['evidence']}")
    if "plot" in doc:
        print(f"  layer profile   {', '.join(doc['plot'])}")
    return 0
