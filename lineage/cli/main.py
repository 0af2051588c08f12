"""`lineage`: a thin shell over the library. Each subcommand is one row of `lineage.cli.table`.

Parse, call the row's handler, print; errors become exit codes only here: 0 success, 1 a
user-facing error (one line saying what to do), 2 usage errors, 3 `anomalies --fail-on` found
one, 130 interrupted, 141 the reader of stdout went away (`lineage scan --json | head`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from lineage.cli.spec import DB_HELP, CommandParser, add_command
from lineage.cli.table import COMMANDS

__all__ = ["build_parser", "main"]

EPILOG = (
    "Database: --db PATH (before or after COMMAND), else $LINEAGE_DB, else ./lineage.db. "
    "Commands that only read it open it read-only and refuse a missing one. Every command "
    "has --help."
)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"lineage {version('model-lineage')}"
    except PackageNotFoundError:  # a checkout run without installing
        return "lineage (not installed)"


class _Version(argparse.Action):
    """`--version`, looked up only when asked: reading the package metadata costs tens of
    milliseconds, which every other command would pay at parser build time."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(
            option_strings,
            dest=argparse.SUPPRESS,
            default=argparse.SUPPRESS,
            nargs=0,
            help="show program's version number and exit",
        )

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        print(_version())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The `lineage` parser: one subcommand per row of COMMANDS, in table order."""
    parser = CommandParser(
        prog="lineage",
        description="Recover the family trees of machine-learning models from their weights.",
        epilog=EPILOG,
    )
    parser.add_argument("--db", default=None, help=DB_HELP)
    parser.add_argument("--version", action=_Version)
    parser.add_argument(
        "--threads",
        type=_positive,
        default=None,
        metavar="N",
        help="torch threads per fingerprint worker where torch runs the kernels (a GPU; "
        "default: $LINEAGE_THREADS or 1); on the CPU the kernels are numpy on one thread",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        add_command(sub, command)
    return parser


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush finds no broken pipe."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file behind stdout (a test's)
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run `lineage` with `argv` (default: sys.argv[1:]) and return the exit code."""
    args = build_parser().parse_args(argv)
    args.check(args)  # usage problems argparse cannot see: exit 2 before anything is opened
    if args.threads is not None:
        from fingerprint.device import set_threads

        set_threads(args.threads)
    # imported after parsing: --help and usage errors need neither
    from lineage.errors import user_errors
    from lineage.store import Store, default_db_path

    try:
        if args.no_store:
            return args.func(args, None)
        path = args.db or default_db_path()
        if args.reads and not Path(path).is_file():
            print(
                f"error: no database at {path}: check --db (or $LINEAGE_DB), or create it with "
                "`lineage add` or `lineage crawl`",
                file=sys.stderr,
            )
            return 1
        # readers open the file read-only: they never migrate or change a user's database
        with Store(path, read_only=args.reads) as store:
            return args.func(args, store)
    except user_errors() as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; work done so far is saved, re-run to continue", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _silence_stdout()  # the reader went away (`| head`): nothing more to say, to anyone
        return 141


if __name__ == "__main__":
    sys.exit(main())
