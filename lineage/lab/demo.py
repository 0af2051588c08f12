"""`lineage demo`: the whole pipeline offline, on a generated zoo served as a local Hub.

zoo -> local Hub-compatible server on 127.0.0.1 -> crawl through huggingface_hub ->
fingerprints -> tree -> anomalies -> exports in every format -> evaluation against the zoo's
truth -> report and figures. Everything lands under one folder.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class DemoSummary:
    out: Path
    models: int
    families: int
    edges: int
    anomalies: int
    parent_accuracy: float
    family_ari: float
    pair_auc: float | None
    bytes_fetched: int
    seconds: float
    files: tuple[Path, ...]
    zoo: Path | None = None  # the zoo that was served (default: `out / "zoo"`)

    def next_steps(self) -> str:
        """Where everything is and how to look at it, or serve the zoo, again (the demo's
        closing lines)."""
        out, zoo = self.out, self.zoo or self.out / "zoo"
        return "\n".join(
            (
                f"everything is under {out}/:",
                f"  the atlas     {out}/exports/tree.html (open it in a browser)",
                f"  the report    {out}/report/report.md, with its figures",
                f"  the scores    {out}/evaluation.md, against the zoo's truth",
                f"  the graph     {out}/exports/ (json, graphml, gexf, csv, dot; pairs, anomalies)",
                f"  the database  {out}/lineage.db",
                f"look again: lineage --db {out}/lineage.db view --open  (or tree, audit ID, "
                "anomalies, plot)",
                f"serve the zoo as a Hub again: python scripts/serve_hub.py --root {zoo} "
                "--port 8765",
                "  and crawl it: lineage --db mine.db crawl --endpoint http://127.0.0.1:8765",
            )
        )


def _offline_hub_env(home: Path) -> None:
    # the demo never talks to the real Hub and never reads the user's token or cache
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["HF_HUB_DISABLE_XET"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["HF_HOME"] = str(home)
    os.environ.pop("HF_TOKEN", None)
    os.environ["HF_HUB_DISABLE_IMPLICIT_TOKEN"] = "1"


def run_demo(
    out: str | os.PathLike[str] = "demo-out",
    *,
    seed: int = 0,
    device: str = "auto",
    zoo: str | os.PathLike[str] | None = None,
    say: Callable[[str], None] = print,
) -> DemoSummary:
    """Run the offline end-to-end demo into `out` and return what it measured.

    Args:
        out: folder for everything the demo writes.
        seed: zoo seed.
        device: for fingerprints and all-pairs.
        zoo: an existing zoo folder to serve instead of generating one (read only).
        say: where progress lines go.
    """
    started = time.monotonic()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _offline_hub_env(out / "hf-home")

    from hub.emulator.server import serve
    from lineage.build import build_lineage
    from lineage.crawler import crawl
    from lineage.lab import evaluation
    from lineage.lab.zoo import generate_zoo
    from lineage.present.export import FORMATS, export
    from lineage.present.report import build_report
    from lineage.present.report_frame import pairs_frame
    from lineage.progress import Progress
    from lineage.store import Store

    if zoo is not None:
        zoo = Path(zoo)
        say(f"[1/6] using the model zoo in {zoo}")
    else:
        zoo = out / "zoo"
        truth_file = zoo / "truth.json"
        if truth_file.is_file() and json.loads(truth_file.read_text()).get("seed") == seed:
            say(f"[1/6] reusing the model zoo in {zoo}")
        else:
            say(f"[1/6] generating the tiny model zoo (seed {seed}) in {zoo} ...")
            generate_zoo(zoo, size="tiny", seed=seed)
    db_path = out / "lineage.db"
    for stale in out.glob("lineage.db*"):
        stale.unlink()
    with Store(db_path) as store:
        with serve(zoo, prehash=True) as server:
            say(f"[2/6] serving it as a Hub at {server.url}; crawling through huggingface_hub ...")
            summary = crawl(
                store,
                endpoint=server.url,
                device=device,
                workers=2,
                progress=Progress("crawl"),
                cache_dir=out / "window-cache",
                hf_cache=False,
            )
        say(
            f"      {summary.seen} models listed, {summary.fingerprinted} fingerprinted, "
            f"{summary.bytes_fetched / 1e6:.1f} MB fetched"
        )
        say("[3/6] recovering families, parents, relations and anomalies ...")
        graph = build_lineage(store, device=device)
        files: list[Path] = []
        exports = out / "exports"
        for fmt in FORMATS:
            files += export(graph, fmt, exports / f"tree.{fmt}")
        pairs_path = exports / "pairs.json"
        pairs_path.write_text(
            json.dumps(
                [
                    {
                        "a": p.a,
                        "b": p.b,
                        "overlap": p.overlap,
                        "identity": p.identity,
                        "p_value": p.p_value,
                        "verdict": p.verdict,
                    }
                    for p in store.pairs()
                ],
                indent=1,
            )
            + "\n"
        )
        files.append(pairs_path)
        anomalies_path = exports / "anomalies.json"
        anomalies_path.write_text(
            json.dumps([a.to_dict() for a in graph.anomalies], indent=2) + "\n"
        )
        files.append(anomalies_path)
        say(f"[4/6] exported the graph as {', '.join(FORMATS)} into {exports}")

        say("[5/6] scoring against the zoo's ground truth ...")
        truth = evaluation.load_truth(zoo / "truth.json")
        tree = graph.to_json()
        pairs = [
            evaluation.Pair(p.a, p.b, p.overlap) for p in store.pairs() if p.overlap is not None
        ]
        result = evaluation.evaluate(
            truth, tree, anomalies=[a.to_dict() for a in graph.anomalies], pairs=pairs
        )
        eval_path = out / "evaluation.md"
        eval_path.write_text(evaluation.markdown_report(truth, [result]))
        files.append(eval_path)

        say("[6/6] writing the report and figures ...")
        report = build_report(
            pairs_frame(store.pairs(), store.models(), tree), tree, out / "report"
        )
        files += [report.report, *report.figures]

    return DemoSummary(
        out=out,
        models=len(graph.nodes),
        families=len(graph.families()),
        edges=len(graph.edges),
        anomalies=len(graph.anomalies),
        parent_accuracy=result.parents.overall.value or 0.0,
        family_ari=result.ari,
        pair_auc=result.pairs.auc if result.pairs else None,
        bytes_fetched=summary.bytes_fetched,
        seconds=time.monotonic() - started,
        files=tuple(files),
        zoo=zoo,
    )
