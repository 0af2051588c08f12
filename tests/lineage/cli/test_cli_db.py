"""The database option as users type it: after the command too, never created by a reader,
and the version."""

from __future__ import annotations

import pytest

from lineage.cli.main import main
from lineage.store import Store
from tests.factory import llama_tensors, write_model


def test_version_names_the_package(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("lineage ")


def test_db_after_the_command_is_the_same_as_before(tmp_path, capsys):
    folder = write_model(tmp_path / "org" / "m", llama_tensors(0, layers=1, inter=64, vocab=64))
    db = tmp_path / "after.db"
    other = tmp_path / "before.db"
    assert main(["--db", str(other), "add", str(folder), "--no-fingerprint", "--db", str(db)]) == 0
    with Store(db) as s:  # the one after the command wins
        assert [m.id for m in s.models()] == ["org/m"]
    assert not other.exists()
    capsys.readouterr()
    # a reader finds it after the command too (and says what it lacks, not that it is missing)
    assert main(["anomalies", "--db", str(db)]) == 1
    assert "no fingerprinted models" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["tree", "audit org/m", "anomalies", "report", "plot tree"])
def test_a_reader_refuses_a_missing_database_and_creates_nothing(tmp_path, capsys, command):
    db = tmp_path / "typo" / "lineage.db"
    assert main(["--db", str(db), *command.split()]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"no database at {db}" in err
    assert not (tmp_path / "typo").exists()


def test_an_unknown_anomaly_kind_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["anomalies", "--kind", "nonsense"])
    assert exit_.value.code == 2
    assert "invalid choice: 'nonsense'" in capsys.readouterr().err
