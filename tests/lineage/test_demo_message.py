"""The demo's closing lines: where everything is, and how to open or serve it again."""

from __future__ import annotations

from pathlib import Path

from lineage.lab.demo import DemoSummary


def _summary(out: Path, zoo: Path | None = None) -> DemoSummary:
    return DemoSummary(out, 52, 5, 47, 18, 0.98, 1.0, 1.0, 10_000_000, 80.0, (), zoo=zoo)


def test_the_closing_lines_name_every_output_and_how_to_look_again():
    text = _summary(Path("demo-out")).next_steps()
    for where in (
        "demo-out/exports/tree.html",
        "demo-out/report/report.md",
        "demo-out/evaluation.md",
        "demo-out/exports/",
        "demo-out/lineage.db",
    ):
        assert where in text
    assert "lineage --db demo-out/lineage.db view --open" in text
    assert "scripts/serve_hub.py --root demo-out/zoo --port 8765" in text
    assert "crawl --endpoint http://127.0.0.1:8765" in text
    assert all(len(line) <= 110 for line in text.splitlines())


def test_a_given_zoo_is_the_one_to_serve_again(tmp_path):
    text = _summary(tmp_path / "out", zoo=tmp_path / "myzoo").next_steps()
    assert f"--root {tmp_path / 'myzoo'} " in text
