"""The offline demo end to end, on the session's tiny zoo: also the accuracy regression test.

The zoo is trained on this machine's CPU, and float rounding during training differs between
CPUs of the same kind: the same seed scored 51/52 parents (anomaly recall 0.94) here and 49/52
(0.942, recall 0.889) on another machine (issue 14). The floors sit below that measured spread, so
the test is green on any machine of this kind and still fails when recovery gets clearly worse;
docs/evaluation.md holds the exact figures, measured, not asserted.
"""

from __future__ import annotations

import json

import networkx as nx

from lineage.lab.demo import run_demo
from lineage.lab.zoo_plan import PLAN


def test_demo_recovers_the_zoo_and_writes_everything(tiny_zoo, tmp_path, monkeypatch):
    monkeypatch.setenv("LINEAGE_CACHE", str(tmp_path / "cache"))
    lines: list[str] = []
    d = run_demo(tmp_path / "out", zoo=tiny_zoo, device="cpu", say=lines.append)
    assert d.models == len(PLAN) and d.families == 5
    assert d.parent_accuracy >= 0.90  # measured 0.942-0.981 across machines
    assert d.family_ari >= 0.95
    assert d.pair_auc is not None and d.pair_auc >= 0.99
    assert d.bytes_fetched > 0
    out = tmp_path / "out"
    for name in (
        "tree.json",
        "tree.graphml",
        "tree.gexf",
        "tree_nodes.csv",
        "tree_edges.csv",
        "tree.dot",
        "anomalies.json",
    ):
        assert (out / "exports" / name).stat().st_size > 0, name
    assert nx.read_graphml(out / "exports" / "tree.graphml").number_of_edges() == d.edges
    anomalies = json.loads((out / "exports" / "anomalies.json").read_text())
    truth = json.loads((tiny_zoo / "truth.json").read_text())["anomalies"]
    found = {(a["model"], a["kind"]) for a in anomalies}
    planted = {(a["model"], a["kind"]) for a in truth}
    assert len(found & planted) / len(found) >= 0.85  # precision (measured 1.00 here)
    assert len(found & planted) / len(planted) >= 0.85  # recall (measured 0.889-0.94)
    assert "| tool |" in (out / "evaluation.md").read_text()
    assert (out / "report" / "report.md").is_file()
    assert any(p.suffix == ".png" for p in d.files)
    assert any("[6/6]" in line for line in lines)
