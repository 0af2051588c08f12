"""The pieces the rows of `lineage.cli.table` share: common arguments, argument types that
refuse bad input with one line, and help texts read from the modules that own them (only when
their command is used).
"""

from __future__ import annotations

import argparse
import textwrap

from lineage.cli.spec import Choices, arg

DEVICE = arg(
    "--device",
    choices=Choices("fingerprint.device:DEVICES"),
    default="auto",
    help="where to compute signatures: auto uses a GPU when torch sees one (default: auto)",
)
JSON = arg("--json", action="store_true", help="machine-readable output")
JSON_LINES = arg("--json", action="store_true", help="machine-readable output (JSON lines)")


def paragraphs(*texts: str) -> str:
    # Paths like ~/.cache/model-lineage must not be split at their hyphens.
    return "\n\n".join(
        textwrap.fill(t, width=78, break_on_hyphens=False, break_long_words=False) for t in texts
    )


def since(value: str) -> str:
    """A `--since` date as `hub.listing.parse_since` reads it, refused with its message."""
    from hub.listing import parse_since

    try:
        parse_since(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return value


def positive(value: str) -> int:
    """An integer >= 1 (`--limit`, `--workers`, `--max-polls`)."""
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return n


def seconds(value: str) -> float:
    """A finite number of seconds > 0 (`--interval`)."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {value!r}")
    return seconds


def model_id(value: str) -> str:
    """An id like ORG/NAME (`add --id`)."""
    from hub.folders import is_model_id

    if not is_model_id(value):
        raise argparse.ArgumentTypeError(f"expected an id like ORG/NAME, got {value!r}")
    return value


def anomalies_description() -> str:
    """The help of `lineage anomalies`: every kind with its one-line help, from the rules table."""
    from lineage.anomalies import RULES

    kinds = "; ".join(f"{rule.kind} ({rule.help})" for rule in RULES)
    return f"Kinds: {kinds}. Each has a severity, a score and its evidence."


def figures_description() -> str:
    """The help of `lineage plot`: every figure with its help, from `FIGURES`."""
    from lineage.present.figures import FIGURES

    listed = "; ".join(f"{f.name}: {f.help}" for f in FIGURES.values() if f.name != "all")
    return (
        f"{listed}. PNG and SVG. The per-layer profile of one pair is "
        "`lineage audit ID --plot PATH`."
    )
