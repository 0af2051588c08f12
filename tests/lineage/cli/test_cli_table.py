"""The CLI as a table: each row names a real library function and handler, the parser follows the
table, and flag choices come from the modules that own them."""

from __future__ import annotations

import pytest

from lineage.cli.main import build_parser
from lineage.cli.spec import load
from lineage.cli.table import COMMANDS, anomalies_description


def _subparser(name: str):
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices[name]
    sub.format_usage()  # a command's arguments are added on first use
    return sub


def _choices(command: str, dest: str) -> tuple:
    action = next(a for a in _subparser(command)._actions if a.dest == dest)
    return tuple(action.choices)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_each_row_names_a_library_function_and_a_handler(command):
    assert callable(load(command.library)), command.library
    assert callable(load(command.run)), command.run


def test_the_parser_offers_the_table_in_order():
    choices = build_parser()._subparsers._group_actions[0].choices
    assert list(choices) == [c.name for c in COMMANDS]


def test_choices_come_from_their_owners():
    from fingerprint.device import DEVICES
    from hub.client import SORTS
    from lineage.present.export import FORMATS
    from lineage.present.figures import FIGURES

    assert _choices("tree", "format") == tuple(FORMATS)
    assert _choices("plot", "figure") == tuple(FIGURES)
    assert _choices("crawl", "sort") == tuple(SORTS)
    for command in COMMANDS:
        if command.name == "import-shards":
            continue  # stores what another machine computed: no device to choose
        assert _choices(command.name, "device") == tuple(DEVICES), command.name


def test_a_choice_outside_the_owner_list_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["plot", "pie"])
    assert exit_.value.code == 2
    assert "invalid choice: 'pie'" in capsys.readouterr().err


def test_anomalies_help_lists_every_kind():
    from lineage.anomalies import ANOMALY_KINDS

    text = anomalies_description()
    assert all(kind in text for kind in ANOMALY_KINDS)
    assert "missing_base" in _subparser("anomalies").format_help()
