"""HF_HUB_OFFLINE=1: crawl and scan say in one line that the Hub is not reached."""

from __future__ import annotations

import pytest

from lineage.cli.main import main


@pytest.mark.parametrize("command", ["crawl", "scan"])
def test_offline_mode_is_one_line_not_a_traceback(tmp_path, capsys, monkeypatch, command):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    code = main(["--db", str(tmp_path / "l.db"), command, "--endpoint", "http://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "HF_HUB_OFFLINE is set" in err
