"""Every `lineage` subcommand as one row: the library function, its handler and its arguments.

Choices come from the modules that own them (devices: `fingerprint.device`, export formats:
`lineage.present.export`, figures: `lineage.present.figures`, listing sorts: `hub.client`,anomaly kinds: `lineage.anomalies.RULES`) and are read only when their command is used.
Shared arguments and argument types are in `lineage.cli.table_args`; the Hub commands (crawl,
scan, import-shards) in `lineage.cli.table_hub`; this table lists them all, in help order.
"""

from __future__ import annotations

from lineage.cli.spec import Choices, Command, arg
from lineage.cli.table_args import (
    DEVICE,
    JSON,
    anomalies_description,
    figures_description,
    model_id,
)
from lineage.cli.table_hub import HUB_COMMANDS

__all__ = ["COMMANDS", "anomalies_description"]

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
                type=model_id,
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
        description=figures_description,
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
    *HUB_COMMANDS,
)
