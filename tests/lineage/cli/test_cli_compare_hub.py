"""`compare org/a org/b`: Hub ids where paths go, read from the configured endpoint."""

from __future__ import annotations

import json

from lineage.cli.main import main
from tests.factory import noisy, write_model
from tests.hub_helpers import card, meta, small


def test_compare_takes_hub_ids_and_creates_no_database(hub_env, tmp_path, capsys, monkeypatch):
    root = tmp_path / "zoo"
    base = small(0)
    write_model(root / "repos" / "org" / "base", base, card=card())
    write_model(root / "repos" / "user" / "ft", noisy(base, 0.01, 1), card=card(["org/base"]))
    write_model(root / "repos" / "other" / "root", small(7), card=card())
    ids = ("org/base", "user/ft", "other/root")
    (root / "manifest.json").write_text(
        json.dumps({"models": [meta(m, i) for i, m in enumerate(ids)]})
    )
    hub_env.start(root, use=True)
    monkeypatch.chdir(tmp_path)

    assert main(["compare", "org/base", "user/ft", "--json", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "derived"
    assert main(["compare", "org/base", "other/root@main", "--json", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "unrelated"
    assert not (tmp_path / "lineage.db").exists()

    # --db after the command: a database that does not exist is not created by compare
    assert main(["compare", "org/base", "user/ft", "--db", str(tmp_path / "x.db")]) == 0
    assert not (tmp_path / "x.db").exists()
    capsys.readouterr()
    assert main(["compare", "org/base", "org/missing", "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "org/missing" in err
