"""What used to end in a traceback ends in one line and a documented exit code."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from lineage.cli.main import main
from tests.factory import llama_tensors, noisy, write_model


@pytest.fixture
def db(tmp_path):
    base = llama_tensors(0, layers=2, inter=64, vocab=64)
    write_model(tmp_path / "m" / "org" / "base", base)
    write_model(tmp_path / "m" / "org" / "ft", noisy(base, 0.01, 1))
    path = str(tmp_path / "l.db")
    assert main(["--db", path, "add", str(tmp_path / "m")]) == 0
    return path


def test_plot_of_an_unknown_family_is_one_line(db, tmp_path, capsys):
    capsys.readouterr()
    code = main(["--db", db, "plot", "tree", "--family", "nope", "--out", str(tmp_path / "f")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "'nope' is not a family" in err


class _ClosedPipe(io.StringIO):
    def write(self, s: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_reader_that_goes_away_ends_quietly_with_141(db, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert main(["--db", db, "tree"]) == 141
    assert capsys.readouterr().err == ""


def test_a_real_pipe_closed_early_prints_no_traceback(db):
    # `lineage tree --format graphml | head -c 1`: the reader leaves after one byte
    proc = subprocess.Popen(
        [sys.executable, "-m", "lineage", "--db", db, "tree", "--format", "graphml"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(1)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Traceback" not in err


def test_anomalies_fail_on_a_severity_for_ci(db, capsys):
    # org/ft is derived from org/base and declares nothing: missing_base and, with no
    # downloads and a near copy, suspicious_copy, both medium
    capsys.readouterr()
    assert main(["--db", db, "anomalies", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert [(a["kind"], a["severity"]) for a in found] == [
        ("missing_base", "medium"),
        ("suspicious_copy", "medium"),
    ]
    # the evidence as fields: the comparison with each related model
    (rel,) = found[0]["relatives"]
    assert rel["model"] == "org/base" and rel["verdict"] == "derived" and rel["overlap"] > 0.5
    assert main(["--db", db, "anomalies", "--fail-on", "high"]) == 0
    assert main(["--db", db, "anomalies", "--fail-on", "medium"]) == 3
    assert main(["--db", db, "anomalies", "--fail-on", "low", "--kind", "reupload"]) == 0
