"""The rows of `lineage.cli.table` that talk to a Hub: crawl, scan (and --watch), and the
import of shards a Ray crawl wrote. Their shared arguments and the cost paragraphs are here.
"""

from __future__ import annotations

from lineage.cli.spec import Choices, Command, arg
from lineage.cli.table_args import DEVICE, JSON, JSON_LINES, paragraphs, positive, seconds, since

COST = (
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

HUB_ARGS = (
    arg(
        "--endpoint",
        metavar="URL",
        default=None,
        help="Hub URL (default: $HF_ENDPOINT, else https://huggingface.co)",
    ),
    arg(
        "--since",
        type=since,
        metavar="DATE",
        help="only models created on or after DATE (e.g. 2024-05-01)",
    ),
    arg("--limit", type=positive, metavar="N", help="at most N models"),
    JSON_LINES,
    DEVICE,
)

HUB_COMMANDS: tuple[Command, ...] = (
    Command(
        "crawl",
        library="lineage.crawler:crawl",
        run="lineage.cli.crawl:cmd_crawl",
        check="lineage.cli.crawl:check_crawl",
        help="list Hub models into the database and fingerprint the new or changed ones",
        description=paragraphs(
            "List models on the Hub (or a Hub-compatible --endpoint), store their metadata and "
            "declared bases, and fingerprint those that are new, changed or lack a signature. "
            "Models that cannot be read (gated, missing, pickle-only, malformed, network) are "
            "stored with the reason and the crawl goes on. Exit 0 once the listing is done, 1 "
            "when the listing itself fails or the endpoint stops answering. Interrupted or "
            "killed, it keeps what it stored: run it again to finish.",
            *COST,
        ),
        args=(
            *HUB_ARGS,
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
                type=since,
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
                type=positive,
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
        description=paragraphs(
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
            *COST,
        ),
        args=(
            *HUB_ARGS,
            arg(
                "--watch",
                action="store_true",
                help="keep polling for new uploads and print each as a JSON line",
            ),
            arg(
                "--interval",
                type=seconds,
                metavar="SECONDS",
                help="with --watch: seconds between polls (default: 60)",
            ),
            arg(
                "--max-polls",
                type=positive,
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
