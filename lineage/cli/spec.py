"""The shape of a command-line table: commands, their arguments, and lazily read choices.

A `Command` names the library function it stands for (`library`, callable from Python), the
handler that calls it and prints (`run`), and its arguments. Handlers and choices are given as
"module:attribute" strings, a long help text may be a function, and all are read only when that
command is parsed or its help is shown, so `lineage --help` imports no heavy library.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any


def load(target: str) -> Any:
    """The object a "module:attribute" string names, importing the module now."""
    module, _, attr = target.partition(":")
    return getattr(import_module(module), attr)


@dataclass(frozen=True, slots=True)
class Choices:
    """The choices of a flag, read from the module that owns them ("module:attribute")."""

    target: str


@dataclass(frozen=True, slots=True)
class Arg:
    """One argument: its names and `add_argument` keywords (`choices` may be a `Choices`)."""

    names: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)


def arg(*names: str, **options: Any) -> Arg:
    """An `Arg`, written like `parser.add_argument`."""
    return Arg(names, options)


@dataclass(frozen=True, slots=True)
class Command:
    """One subcommand of `lineage`.

    Attributes:
        name: the subcommand.
        library: the library function it stands for ("module:function"), for Python callers.
        run: the handler ("module:function") taking (args, store) and returning the exit code.
        help: the one line in `lineage --help`.
        description: the paragraph of `lineage NAME --help`, or a function making it.
        args: its arguments, in order.
        store: False for commands that open no database (they get None).
        raw: keep the description's line breaks (it is already wrapped).
        reads: True for commands that only read the database: a missing one is an error (a
            mistyped --db must not become a new, empty database).
        db: False for commands that take no --db at all (demo writes its own).
        check: a function ("module:function") taking the parsed args and returning a usage
            problem (a message) or None; run before any database is opened, so a command
            line that cannot work exits 2 having touched nothing.
    """

    name: str
    library: str
    run: str
    help: str
    description: str | Callable[[], str]
    args: tuple[Arg, ...]
    store: bool = True
    raw: bool = False
    reads: bool = False
    db: bool = True
    check: str | None = None


DB_HELP = "SQLite database (default: $LINEAGE_DB or ./lineage.db); before or after COMMAND"


def _handler(target: str) -> Callable[[argparse.Namespace, Any], int]:
    def call(args: argparse.Namespace, store: Any) -> int:
        return int(load(target)(args, store))

    call.__name__ = target.rpartition(":")[2]
    return call


def _checker(
    target: str | None, parser: argparse.ArgumentParser
) -> Callable[[argparse.Namespace], None]:
    """`args.check(args)`: the command's usage check, a problem ending as `parser.error` (exit 2)."""

    def check(args: argparse.Namespace) -> None:
        problem = load(target)(args) if target else None
        if problem:
            parser.error(problem)

    return check


def _fill(parser: argparse.ArgumentParser, command: Command) -> None:
    """Give `parser` the command's description and arguments, reading lazy parts now."""
    if callable(command.description):
        parser.description = command.description()
    if command.db:
        # --db after the command as well as before it; SUPPRESS keeps the one given before
        parser.add_argument("--db", default=argparse.SUPPRESS, help=DB_HELP)
    for a in command.args:
        options = dict(a.options)
        if isinstance(options.get("choices"), Choices):
            options["choices"] = tuple(load(options["choices"].target))
        parser.add_argument(*a.names, **options)


class CommandParser(argparse.ArgumentParser):
    """A parser whose subcommands get their arguments only when one is parsed or shown.

    argparse reads an argument's choices as soon as it is added (to check the metavar), so
    adding every command's arguments up front would import what each command's choices come
    from; deferring them keeps `lineage --help` light.
    """

    _command: Command | None = None

    def defer(self, command: Command) -> None:
        """Add `command`'s arguments on first use instead of now."""
        self._command = command

    def _materialize(self) -> None:
        command, self._command = self._command, None
        if command is not None:
            _fill(self, command)

    def parse_known_args(self, args=None, namespace=None):
        self._materialize()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self._materialize()
        return super().format_usage()

    def format_help(self) -> str:
        self._materialize()
        return super().format_help()


def add_command(subparsers: argparse._SubParsersAction, command: Command) -> None:
    """Add one table row to `subparsers`; its handler is `args.func(args, store)`.

    Under a CommandParser the arguments wait until the command is used; under a plain
    ArgumentParser they are added at once.
    """
    description = None if callable(command.description) else command.description
    formatter = argparse.RawDescriptionHelpFormatter if command.raw else argparse.HelpFormatter
    p = subparsers.add_parser(
        command.name, help=command.help, description=description, formatter_class=formatter
    )
    p.set_defaults(
        func=_handler(command.run),
        no_store=not command.store,
        reads=command.reads,
        check=_checker(command.check, p),
    )
    if isinstance(p, CommandParser):
        p.defer(command)
    else:
        _fill(p, command)
