"""Sibling adapters (`params["adapter_siblings"]`: two adapters of one base that learnt the same
thing, a note, never an edge) in the DOT export and the atlas: drawn as an undirected dashed
note with a legend where there are some, and a graph without them rendered exactly as before.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from lineage.present.atlas import DATA_ELEMENT_ID, atlas_data, render_atlas, write_atlas
from lineage.present.export import SIBLING_COLOR, render, sibling_notes, to_dot
from lineage.records import Edge, LineageGraph, Node
from tests.lineage.present.test_atlas import _parse
from tests.lineage.present.test_atlas_browser import (  # noqa: F401 (the fixture)
    ENDPOINT,
    Opened,
    _pixels,
    browser,
)

BASE, A, B, C, OTHER = "org/base", "org/adapter-a", "org/adapter-b", "org/adapter-c", "x/other"
NOTE = {
    "a": A,
    "b": B,
    "base": BASE,
    "similarity": 0.512,
    "baseline": 0.125,
    "lift": 0.442,
    "modules": 4,
}


def _edge(child: str) -> Edge:
    return Edge(
        parent=BASE,
        child=child,
        overlap=0.8,
        identity=0.0,
        p_value=1e-30,
        log10_p=-30.0,
        confidence=0.9,
        score=0.72,
        relation="adapter",
        slots_compared=8,
        direction="evidence",
        direction_by=("adapter_config",),
        method="lora:r8",
    )


def _node(mid: str, family: str, parent: str | None = None) -> Node:
    return Node(
        id=mid,
        family=family,
        parent=parent,
        parents=(parent,) if parent else (),
        relation="adapter" if parent else None,
        confidence=0.9 if parent else 0.0,
        downloads=10,
        created_at=None,
        declared_base=(parent,) if parent else (),
    )


def _graph(siblings: list[dict] | None) -> LineageGraph:
    """A base with three adapters (A and B siblings when `siblings` says so) and one other
    family; `siblings=None` leaves the key out, as `adapter_graph` does for a store without."""
    nodes = (
        _node(BASE, BASE),
        _node(A, BASE, BASE),
        _node(B, BASE, BASE),
        _node(C, BASE, BASE),
        _node(OTHER, OTHER),
    )
    params: dict = {"alpha": 1e-4}
    if siblings is not None:
        params["adapter_siblings"] = siblings
    return LineageGraph(
        nodes=nodes, edges=tuple(_edge(c) for c in (A, B, C)), anomalies=(), params=params
    )


def _sibling_lines(dot: str) -> list[str]:
    return [line for line in dot.splitlines() if "siblings, lift" in line]


# ---- DOT -------------------------------------------------------------------------------------


def test_dot_draws_a_sibling_note_as_an_undirected_dashed_link_with_a_legend():
    dot = to_dot(_graph([NOTE]))
    (line,) = _sibling_lines(dot)
    assert line.startswith(f'  "{A}" -> "{B}" ')
    for attribute in ("style=dashed", "dir=none", "constraint=false", f'color="{SIBLING_COLOR}"'):
        assert attribute in line
    assert '"siblings, lift 0.44"' in line
    # a lineage edge never looks like it: edges are black, solid or (guessed) dashed in black
    edges = [x for x in dot.splitlines() if " -> " in x and x not in _sibling_lines(dot)]
    assert len(edges) == 3 and not any(SIBLING_COLOR in x for x in edges)
    assert re.search(
        r'^  label="dashed gold lines[^"]*sibling adapters[^"]*"; labelloc=b;', dot, re.M
    )


def test_dot_without_sibling_notes_is_what_it_was():
    with_notes = to_dot(_graph([NOTE])).splitlines()
    for without in (_graph(None), _graph([])):
        plain = to_dot(without).splitlines()
        assert not _sibling_lines("\n".join(plain))
        assert not any(x.startswith("  label=") for x in plain)  # no legend
        # the notes add exactly their line and the legend, before the closing brace
        added = [x for x in with_notes if x not in plain]
        assert len(added) == 2 and [x for x in with_notes if x in plain] == plain
    assert render(_graph(None), "dot") == to_dot(_graph(None))


def test_one_family_keeps_only_its_own_notes():
    graph = _graph([NOTE, {**NOTE, "a": A, "b": OTHER}])  # a note reaching out of the family
    assert sibling_notes(graph.to_json(BASE)) == [NOTE]
    assert sibling_notes(graph.to_json(OTHER)) == []
    assert len(_sibling_lines(to_dot(graph, BASE))) == 1
    assert _sibling_lines(to_dot(graph, OTHER)) == []


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
def test_graphviz_reads_the_dot_with_notes():
    out = subprocess.run(
        ["dot", "-Tsvg"], input=to_dot(_graph([NOTE])), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "siblings, lift 0.44" in out.stdout and SIBLING_COLOR in out.stdout


# ---- the atlas's data ------------------------------------------------------------------------


def test_atlas_data_carries_the_notes_of_the_models_shown():
    graph = _graph([NOTE])
    data = json.loads(_parse(render_atlas(graph, endpoint=ENDPOINT)).scripts[DATA_ELEMENT_ID])
    assert data["siblings"] == [NOTE]
    assert data == json.loads(json.dumps(atlas_data(graph, endpoint=ENDPOINT)))
    assert atlas_data(graph, OTHER, endpoint=ENDPOINT)["siblings"] == []
    # never an edge: the graph's edges are the three adapter edges from the base
    assert {(e["parent"], e["child"]) for e in data["graph"]["edges"]} == {
        (BASE, A),
        (BASE, B),
        (BASE, C),
    }


def test_atlas_data_without_notes_is_what_it_was():
    for graph in (_graph(None), _graph([])):
        data = atlas_data(graph, endpoint=ENDPOINT)
        assert data.pop("siblings") == []
        assert data["graph"] == json.loads(json.dumps(graph.to_json()))
    before = atlas_data(_graph(None), endpoint=ENDPOINT)
    after = atlas_data(_graph([NOTE]), endpoint=ENDPOINT)
    assert before["layout"] == after["layout"] and before["links"] == after["links"]


# ---- the atlas in a browser ------------------------------------------------------------------


def _gold(pixels: np.ndarray) -> int:
    """Pixels within a few levels of the sibling colour (the dashes, anti-aliased at the ends)."""
    rgb = np.array([int(SIBLING_COLOR[i : i + 2], 16) for i in (1, 3, 5)])
    return int(np.all(np.abs(pixels.astype(int) - rgb) <= 6, axis=2).sum())


def test_the_atlas_draws_lists_and_explains_sibling_notes(browser, tmp_path):  # noqa: F811
    path = write_atlas(_graph([NOTE]), tmp_path / "siblings.html", endpoint=ENDPOINT)
    view = Opened(browser, path)
    page = view.page
    assert page.is_visible("#legend-siblings")
    assert "sibling adapters" in page.inner_text("#legend-siblings")
    page.mouse.move(5, 5)
    page.wait_for_timeout(300)
    assert _gold(_pixels(page.locator("#graph").screenshot())) > 20  # the dashes are drawn
    page.screenshot(path=str(tmp_path / "siblings.png"))

    # the side panel of A names B as its sibling; the name selects B, whose panel names A
    assert view.js(f"window.atlas.select({A!r}, {{move: false}})")
    panel = page.inner_text("#panel")
    assert "sibling adapter" in panel and B in panel and "0.44" in panel and BASE in panel
    page.locator("#panel .sibling button", has_text=B).click()
    assert view.js("window.atlas.state.selected") == B
    assert A in page.inner_text("#panel .sibling")
    # C has no sibling: no such block
    view.js(f"window.atlas.select({C!r}, {{move: false}})")
    assert page.locator("#panel .sibling").count() == 0
    assert view.errors == []
    page.close()


def test_the_atlas_without_notes_shows_no_sibling_mark(browser, tmp_path):  # noqa: F811
    path = write_atlas(_graph(None), tmp_path / "plain.html", endpoint=ENDPOINT)
    view = Opened(browser, path)
    page = view.page
    assert page.locator("#legend-siblings").count() == 0
    page.mouse.move(5, 5)
    page.wait_for_timeout(300)
    assert _gold(_pixels(page.locator("#graph").screenshot())) == 0
    assert view.js(f"window.atlas.select({A!r}, {{move: false}})")
    assert page.locator("#panel .sibling").count() == 0
    assert view.errors == []
    page.close()
