"""Every `lineage` subcommand as one row: the library function, its handler and its arguments.

Choices come from the modules that own them (devices: `fingerprint.device`, export formats:
`lineage.present.export`, figures: `lineage.present.figures`, listing sorts: `hub.client`,
anomaly kinds: `lineage.anomalies.RULES`) and are read only when their command is used.
"""

from __future__ import annotations

import argparse
import textwrap

from lineage.cli.spec import Choices, Command, arg

__all__ = ["COMMANDS", "anomalies_description"]

DEVICE = arg(
    "--device",
    choices=Choices("fingerprint.device:DEVICES"),
    default="auto",
    help="where to compute signatures: auto uses a GPU when torch sees one (default: auto)",
)
JSON = arg("--json", action="store_true", help="machine-readable output")
JSON_LINES = arg("--json", action="store_true", help="machine-readable output (JSON lines)")

_COST = (
    "What is read: the listing (one request per page of models); then, for each model that is "
    "new, changed or has no signature yet, one paths-info call, the first 64 KiB of each "
    "safetensors file (its header) and one HTTP range request per slot window: at most 64 "
    "windows of at most 2^18 elements, so under 32 MiB for a 16-bit model and under 64 MiB for "
    "F32, whatever its size. Pickle files (.bin, .pt) are never downloaded. Unchanged models "
    "with a signature cost nothing beyond the listing.",
    "Cache: windows and headers are kept on disk by content hash in $LINEAGE_CACHE/windows "
    "(default ~/.cache/model-lineage/windows), so fingerprinting again costs no weight bytes; "
    "snapshots already in the Hugging Face cache (HF_HOME) are read from disk.",
    "Token: HF_TOKEN (or a stored `hf auth login`) for gated and private models; it is never "
    "stored, logged or printed.",
)


def _paragraphs(*texts: str) -> str:
    # Paths like ~/.cache/model-lineage must not be split at their hyphens.
    return "\n\n".join(
        textwrap.fill(t, width=78, break_on_hyphens=False, break_long_words=False) for t in texts
    )


def _since(value: str) -> str:
    from hub.listing import parse_since

    try:
        parse_since(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return value


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return n


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {value!r}")
    return seconds


def _model_id(value: str) -> str:
    from hub.folders import is_model_id

    if not is_model_id(value):
        raise argparse.ArgumentTypeError(f"expected an id like ORG/NAME, got {value!r}")
    return value


def anomalies_description() -> str:
    """The help of `lineage anomalies`: every kind with its one-line help, from the rules table."""
    from lineage.anomalies import RULES

    kinds = "; ".join(f"{rule.kind} ({rule.help})" for rule in RULES)
    return f"Kinds: {kinds}. Each has a severity, a score and its evidence."


def _figures_description() -> str:
    from lineage.present.figures import FIGURES

    listed = "; ".join(f"{f.name}: {f.help}" for f in FIGURES.values() if f.name != "all")
    return (
        f"{listed}. PNG and SVG. The per-layer profile of one pair is "
        "`lineage audit ID --plot PATH`."
    )


_HUB = (
    arg(
        "--endpoint",
        metavar="URL",
        default=None,
        help="Hub URL (default: $HF_ENDPOINT, else https://huggingface.co)",
    ),
    arg(
        "--since",
        type=_since,
        metavar="DATE",
        help="only models created on or after DATE (e.g. 2024-05-01)",
    ),
    arg("--limit", type=_positive, metavar="N", help="at most N models"),
    JSON_LINES,
    DEVICE,
)

COMMANDS: tuple[Command, ...] = (
    Command(
        "add",
        library="lineage.pipeline:add_local",
        run="lineage.cli.commands:cmd_add",
        check="lineage.cli.commands:check_add",
        help="register local model folders (or the HF cache) and fingerprint them",
        description="Register local HF-style model folders: safetensors (single or sharded), "
        "config.json and README front matter. Only headers and small windows are read. "
        "A folder of folders is searched. A model's id is the last two parts of its folder's "
        "path (models/org/name is org/name) unless its card says `model_id: org/name` with "
        "the same name; a folder already stored keeps its id. A folder whose id is taken by "
        "another folder or a Hub model is refused, not stored over it: name it with --id. "
        "--hf-cache registers models of the Hugging Face cache under their repo ids and "
        "commits; so does a PATH that is (or holds) a cache snapshot folder "
        "(models--ORG--NAME/snapshots/COMMIT), one revision per repo.",
        args=(
            arg("paths", nargs="*", metavar="PATH", help="model folders, or folders of them"),
            arg(
                "--hf-cache",
                nargs="*",
                metavar="REPO_ID",
                help="models in the Hugging Face cache ($HF_HUB_CACHE, else $HF_HOME/hub, else "
                "~/.cache/huggingface/hub), stored as REPO_ID at the commit of one snapshot each: "
                "the one refs/main points at, else the newest; with REPO_IDs, only those "
                "(default: every cached model with weights)",
            ),
            arg(
                "--id",
                type=_model_id,
                metavar="ORG/NAME",
                help="the id of the one model folder given (default: from its path)",
            ),
            arg("--no-fingerprint", action="store_true", help="only read metadata"),
            JSON,
            DEVICE,
        ),
    ),
    Command(
        "fingerprint",
        library="lineage.pipeline:fingerprint_models",
        run="lineage.cli.commands:cmd_fingerprint",
        help="compute signatures for models in the database",
        description="Compute signatures. Without IDs: every model whose signature is missing "
        "or stale. With IDs: those, recomputed. --all: recompute everything.",
        args=(
            arg("ids", nargs="*", metavar="ID"),
            arg("--all", action="store_true", help="recompute every model's signature"),
            JSON,
            DEVICE,
        ),
    ),
    Command(
        "compare",
        library="lineage.pipeline:compare_refs",
        run="lineage.cli.commands:cmd_compare",
        help="does B derive from A? overlap, identity, p-value, verdict",
        description="Compare two models given as ids in the database or local model folders. "
        "overlap: mean fraction of shared bottom-k positions (1 = same extremes, about k/window "
        "for unrelated models); identity: fraction of exactly equal weights; p-value: chance "
        "of this much overlap between unrelated models. Verdict: identical, derived, "
        "unrelated or incomparable (no tensors in common). The database is only read when "
        "it exists; comparing two folders creates none.",
        args=(
            arg("a", metavar="A"),
            arg("b", metavar="B"),
            JSON,
            arg("--per-slot", action="store_true", help="list every compared tensor"),
            arg(
                "--alpha",
                type=float,
                default=1e-4,
                help="significance level for 'derived' (default 1e-4)",
            ),
            DEVICE,
        ),
        store=False,  # the handler opens the database only when it exists
    ),
    Command(
        "tree",
        library="lineage.build:build_lineage",
        run="lineage.cli.commands:cmd_tree",
        help="the recovered family trees (json, graphml, gexf, csv, dot, html: the atlas)",
        description="Recover families and parent -> child edges from every fingerprinted model "
        "and print them as JSON (nodes: id, family, parent, parents, relation, confidence, "
        "downloads, created_at, declared_base, anomalies; edges: parent, child, overlap, "
        "identity, p_value, confidence, relation) or export them with --out.",
        args=(
            arg("--family", metavar="ID", help="only the family of this model"),
            arg(
                "--format",
                choices=Choices("lineage.present.export:FORMATS"),
                default="json",
            ),
            arg(
                "--out",
                metavar="PATH",
                help="write here (csv writes PATH_nodes.csv and PATH_edges.csv); default: "
                "stdout (for csv, the edges table)",
            ),
            DEVICE,
        ),
        reads=True,
    ),
    Command(
        "view",
        library="lineage.present.atlas:write_atlas",
        run="lineage.cli.view:cmd_view",
        help="the interactive atlas: one HTML page to search, focus and click through",
        description="Write the recovered trees as one self-contained HTML page that opens from "
        "disk with nothing fetched: search a model id, focus its family, switch between "
        "layered trees and a global map; colour is the relation to the parent, size the "
        "downloads (log), red rings mark anomalies (hover for their evidence), dotted links "
        "join cousins; hover an edge for overlap, identity, p-value and relation; click a node "
        "for its Hub page (--endpoint, else $HF_ENDPOINT, else https://huggingface.co; local "
        "models get no link). Smooth at 10,000 models (WebGL). The same page: `lineage tree "
        "--format html`.",
        args=(
            arg(
                "--out",
                default="lineage-atlas.html",
                metavar="FILE",
                help="(default: ./lineage-atlas.html)",
            ),
            arg("--family", metavar="ID", help="only the family of this model"),
            arg(
                "--endpoint",
                metavar="URL",
                default=None,
                help="Hub URL for the links (default: $HF_ENDPOINT, else https://huggingface.co)",
            ),
            arg("--open", action="store_true", help="open it in the default browser"),
            DEVICE,
        ),
        reads=True,
    ),
    Command(
        "audit",
        library="lineage.build:audit",
        run="lineage.cli.commands:cmd_audit",
        help="declared vs recovered lineage of one model, closest relatives, anomalies",
        description="Audit one model: its declared base against the parent recovered from the "
        "weights, its closest models with overlap / identity / p-value, which layers are "
        "byte-identical, and any anomalies.",
        args=(
            arg("id", metavar="ID"),
            JSON,
            arg(
                "--plot",
                metavar="PATH",
                help="also draw the per-layer overlap profile (PNG+SVG)",
            ),
            DEVICE,
        ),
        reads=True,
    ),
    Command(
        "anomalies",
        library="lineage.build:build_lineage",
        run="lineage.cli.commands:cmd_anomalies",
        help="models whose declared lineage does not match their weights",
        description=anomalies_description,
        args=(
            arg(
                "--kind",
                action="append",
                choices=Choices("lineage.anomalies:ANOMALY_KINDS"),
                help="only this kind (repeatable)",
            ),
            arg(
                "--fail-on",
                choices=Choices("lineage.anomalies:SEVERITIES"),
                help="exit 3 when an anomaly of this severity or worse is found (for CI)",
            ),
            JSON,
            DEVICE,
        ),
        reads=True,
    ),
    Command(
        "report",
        library="lineage.present.report:build_report",
        run="lineage.cli.reports:cmd_report",
        help="the seed study on the database: overlap by download bucket, t-tests, figures",
        description="Write report.md, CSVs and figures: same- vs different-family overlap by "
        "download bucket (0-10, 10-100, 100-1k, >1k: n, mean, median, std, min, max), Welch "
        "t-tests, the two suspicious patterns, the filter strategies, and every figure.",
        args=(
            arg(
                "--out",
                default="lineage-report",
                metavar="DIR",
                help="(default: ./lineage-report)",
            ),
            arg("--no-figures", action="store_true", help="tables only"),
            DEVICE,
        ),
        reads=True,
    ),
    Command(
        "plot",
        library="lineage.present.figures:draw_figure",
        run="lineage.cli.reports:cmd_plot",
        help="draw one figure (tree, heatmap, downloads, map) or all of them",
        description=_figures_description,
        args=(
            arg("figure", choices=Choices("lineage.present.figures:FIGURES")),
            arg("--family", metavar="ID", help="tree: only the family of this model"),
            arg(
                "--out",
                default="lineage-figures",
                metavar="DIR",
                help="(default: ./lineage-figures)",
            ),
            DEVICE,
        ),
        reads=True,
    ),
    Command(
        "demo",
        library="lineage.lab.demo:run_demo",
        run="lineage.cli.reports:cmd_demo",
        help="offline end-to-end demo on a generated model zoo (a few minutes)",
        description="Generate a small zoo of models with known lineage, serve it as a local "
        "Hub on 127.0.0.1, crawl it through huggingface_hub, fingerprint, recover the tree, "
        "list anomalies, export every format, score against the truth and write the report. "
        "Uses its own database under --out; never touches the network or your HF token.",
        args=(
            arg("--out", default="demo-out", metavar="DIR", help="(default: ./demo-out)"),
            arg("--seed", type=int, default=0, help="zoo seed (default 0)"),
            DEVICE,
        ),
        store=False,
        db=False,
    ),
    Command(
        "crawl",
        library="lineage.crawler:crawl",
        run="lineage.cli.crawl:cmd_crawl",
        check="lineage.cli.crawl:check_crawl",
        help="list Hub models into the database and fingerprint the new or changed ones",
        description=_paragraphs(
            "List models on the Hub (or a Hub-compatible --endpoint), store their metadata and "
            "declared bases, and fingerprint those that are new, changed or lack a signature. "
            "Models that cannot be read (gated, missing, pickle-only, malformed, network) are "
            "stored with the reason and the crawl goes on. Exit 0 once the listing is done, 1 "
            "when the listing itself fails or the endpoint stops answering. Interrupted or "
            "killed, it keeps what it stored: run it again to finish.",
            *_COST,
        ),
        args=(
            *_HUB,
            arg(
                "--author",
                action="append",
                metavar="A",
                help="only this author's models (repeatable)",
            ),
            arg("--search", metavar="S", help="only ids containing S"),
            arg(
                "--filter",
                action="append",
                metavar="TAG",
                help="only models with this tag (repeatable, all must match); "
                "base_model:finetune:ORG/NAME walks the children of a base",
            ),
            arg(
                "--sort",
                choices=Choices("hub.client:SORTS"),
                default="downloads",
                help="listing order, descending (default: downloads); with --since, 'created' "
                "stops paging at the first older model, with --modified-since, 'modified'",
            ),
            arg(
                "--modified-since",
                type=_since,
                metavar="DATE",
                help="only models whose last commit (lastModified) is on or after DATE: the "
                "daily refresh (with --sort modified, paging stops at the first older model)",
            ),
            arg(
                "--no-fingerprint",
                action="store_true",
                help="store metadata only; read no weight bytes",
            ),
            arg(
                "--workers",
                type=_positive,
                default=4,
                metavar="N",
                help="models read at the same time (default: 4); with --engine ray, threads "
                "inside each batch of models",
            ),
            arg(
                "--engine",
                choices=Choices("lineage.engines:ENGINES"),
                default="threads",
                help="where weights are read and fingerprinted: threads (default, this "
                "process) or ray (Ray Data batches on a local Ray or --address; needs "
                "pip install 'model-lineage[ray]'; docs/engine.md)",
            ),
            arg(
                "--address",
                metavar="ADDR",
                help="with --engine ray: the Ray cluster to run on (ray.init address, e.g. "
                "auto or ray://HOST:10001); default: start a local Ray on this machine's CPUs",
            ),
        ),
        raw=True,
    ),
    Command(
        "scan",
        library="lineage.scanner:scan",
        run="lineage.cli.crawl:cmd_scan",
        help="fingerprint the newest uploads and match each against the database",
        description=_paragraphs(
            "List the newest uploads (by creation date, newest first), fingerprint and store "
            "them, and match each against every signature in the database through a sketch "
            "index kept next to the database (DB.sketch/: sampled positions, brought up to date "
            "when a scan starts; candidates are checked exactly and compared, never one "
            "comparison per stored model). "
            "Prints each significant match (overlap, identity, p-value, verdict: significance "
            "is corrected for the number of stored models) and whether the declared base "
            "agrees with the weights; --json prints one JSON object per model.",
            "--watch keeps going: every --interval seconds it lists the uploads created since "
            "the last poll, scans each one not reported yet (oldest first) and prints it as one "
            "JSON line with the time it was matched (seen_at). Where it got to (the watermark) "
            "is kept in the database, so the next --watch on the same endpoint resumes there; "
            "--since starts elsewhere, and a first watch starts from the newest upload. Ctrl-C "
            "or SIGTERM stops it cleanly; a failing listing is a warning on stderr and is "
            "tried again at the next poll.",
            *_COST,
        ),
        args=(
            *_HUB,
            arg(
                "--watch",
                action="store_true",
                help="keep polling for new uploads and print each as a JSON line",
            ),
            arg(
                "--interval",
                type=_seconds,
                metavar="SECONDS",
                help="with --watch: seconds between polls (default: 60)",
            ),
            arg(
                "--max-polls",
                type=_positive,
                metavar="N",
                help="with --watch: stop after N polls (default: until stopped)",
            ),
        ),
        raw=True,
        check="lineage.cli.crawl:check_scan",
    ),
    Command(
        "import-shards",
        library="lineage.engines.shards:import_shards",
        run="lineage.cli.crawl:cmd_import_shards",
        help="store the Parquet shards a Ray crawl wrote (moved between machines)",
        description="Store every model of the Parquet shards under DIR (written by `crawl "
        "--engine ray`, schema in docs/engine.md): signatures and failures alike, one "
        "transaction per model. Models whose signature is already stored at the same revision "
        "are skipped, so importing twice changes nothing. Needs pyarrow (pip install "
        "'model-lineage[ray]'); Ray itself is not needed.",
        args=(
            arg("folder", metavar="DIR", help="folder holding the shards (searched below)"),
            JSON,
        ),
    ),
)
