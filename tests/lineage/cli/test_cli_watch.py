"""`lineage scan --watch` through the real entry point, against the local Hub server: JSON lines
on stdout, usage errors, and a clean stop on SIGTERM and Ctrl-C (a real process, real signals)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lineage.cli.main import main
from lineage.store import Store
from tests.factory import noisy, write_model
from tests.hub_helpers import BASE, card, meta, small

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def zoo(tmp_path):
    """A base created in January 2024 and a fine-tune of it uploaded in June."""
    root = tmp_path / "zoo"
    write_model(root / "repos" / BASE, small(0), card=card())
    write_model(root / "repos/new/ft", noisy(small(0), 0.01, 1), card=card([BASE], "finetune"))
    models = [meta(BASE, 0), {**meta("new/ft", 1), "createdAt": "2024-06-01T00:00:00.000Z"}]
    (root / "manifest.json").write_text(json.dumps({"models": models}))
    return root


def test_watch_prints_one_json_line_per_new_upload(hub_env, zoo, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LINEAGE_CACHE", str(tmp_path / "lc"))
    server = hub_env.start(zoo)
    db = str(tmp_path / "db.sqlite")
    assert main(["--db", db, "crawl", "--endpoint", server.url, "--limit", "1"]) == 0
    capsys.readouterr()
    argv = ["--db", db, "scan", "--watch", "--endpoint", server.url, "--since", "2024-05-01"]
    assert main([*argv, "--interval", "0.1", "--max-polls", "2", "--device", "cpu"]) == 0
    out = capsys.readouterr()
    (line,) = out.out.splitlines()
    row = json.loads(line)
    assert row["model"] == "new/ft" and row["status"] == "ok" and row["seen_at"]
    assert row["declared_agrees"] is True
    assert [m["model"] for m in row["matches"]] == [BASE]
    assert row["matches"][0]["verdict"] == "derived"
    assert out.err.strip().splitlines() == [
        "watch done: 1 new uploads reported; the next `lineage scan --watch` resumes where this "
        "one stopped"
    ]
    # resumed: the same upload is not reported again
    assert main(["--db", db, "scan", "--watch", "--endpoint", server.url, "--max-polls", "1"]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["scan", "--interval", "5"], "--interval needs --watch"),
        (["scan", "--max-polls", "2"], "--max-polls needs --watch"),
        (
            ["scan", "--interval", "5", "--max-polls", "2"],
            "--interval and --max-polls need --watch",
        ),
        (["scan", "--watch", "--limit", "3"], "--limit does not apply to --watch"),
        (["scan", "--watch", "--interval", "0"], "expected a number of seconds > 0"),
        (["scan", "--watch", "--interval", "soon"], "expected a number of seconds > 0"),
        (["scan", "--watch", "--max-polls", "0"], "expected a positive integer"),
    ],
)
def test_watch_usage_errors_exit_2_touching_nothing(argv, message, tmp_path, capsys):
    db = tmp_path / "db.sqlite"
    with pytest.raises(SystemExit) as info:
        main(["--db", str(db), *argv])
    assert info.value.code == 2
    assert message in capsys.readouterr().err
    assert not db.exists()


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(
    ("sig", "how"), [(signal.SIGTERM, "stopped (SIGTERM)"), (signal.SIGINT, "interrupted")]
)
def test_watch_stops_cleanly_on_a_signal(hub_env, zoo, tmp_path, sig, how):
    server = hub_env.start(zoo)
    db = tmp_path / "db.sqlite"
    # faulthandler: a process that does not stop is asked (SIGABRT) where each thread is
    env = {
        **os.environ,
        "LINEAGE_CACHE": str(tmp_path / "lc"),
        "PYTHONPATH": str(ROOT),
        "PYTHONFAULTHANDLER": "1",
    }
    argv = ["--db", str(db), "scan", "--watch", "--endpoint", server.url, "--since", "2024-05-01"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "lineage", *argv, "--interval", "0.2", "--device", "cpu"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
        # a runner started in the background of a shell without job control ignores SIGINT,
        # and Python keeps an ignored SIGINT ignored: give the child the default back
        preexec_fn=_default_sigint,
    )
    try:
        first = proc.stdout.readline() if proc.stdout else ""
        assert json.loads(first)["model"] == "new/ft"
        time.sleep(0.5)  # a few empty polls
        assert proc.poll() is None, "the watch ended by itself"
        proc.send_signal(sig)
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
            _, err = proc.communicate(timeout=30)
            pytest.fail(f"the watch did not stop within 60 s of the signal; stderr:\n{err[-6000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert "Traceback" not in err and out == ""
    assert err.strip().splitlines()[-1].startswith(f"watch {how}: 1 new uploads reported")
    with Store(db) as store:
        rows = [r for r in store.runs() if r.kind == "watch"]
    assert rows[-1].status == "stopped" and rows[-1].summary["watermark"]["ids"] == ["new/ft"]
