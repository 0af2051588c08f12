"""`lineage`: a thin shell over the library. Each subcommand is one row of `lineage.cli.table`.

Parse, call the row's handler, print; errors become exit codes only here: 0 success, 1 a
user-facing error (one line saying what to do), 2 usage errors, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lineage.cli.spec import CommandParser, add_command
from lineage.cli.table import COMMANDS

__all__ = ["build_parser", "main"]

EPILOG = "Database: --db PATH, else $LINEAGE_DB, else ./lineage.db. Every command has --help."


def build_parser() -> argparse.ArgumentParser:
    """The `lineage` parser: one subcommand per row of COMMANDS, in table order."""
    parser = CommandParser(
        prog="lineage",
        description="Recover the family trees of machine-learning models from their weights.",
        epilog=EPILOG,
    )
    parser.add_argument(
        "--db", default=None, help="SQLite database (default: $LINEAGE_DB or ./lineage.db)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        add_command(sub, command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `lineage` with `argv` (default: sys.argv[1:]) and return the exit code."""
    args = build_parser().parse_args(argv)
    # imported after parsing: --help and usage errors need neither
    from lineage.errors import user_errors
    from lineage.store import Store, default_db_path

    try:
        if args.no_store:
            return args.func(args, None)
        with Store(args.db or default_db_path()) as store:
            return args.func(args, store)
    except user_errors() as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; work done so far is saved, re-run to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
