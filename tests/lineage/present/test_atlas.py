"""The atlas page without a browser: self-contained, the data round-trips, hostile ids stay
inert, layouts are sound and fast, Hub links follow the endpoint and the store."""

from __future__ import annotations

import html
import json
import math
import random
import re
import time
from html.parser import HTMLParser

import pytest

from lineage.present.atlas import DATA_ELEMENT_ID, atlas_data, embed_json, render_atlas, write_atlas
from lineage.present.atlas_layout import global_layout, tree_layout
from lineage.present.export import FORMATS, export, render
from lineage.records import RELATIONS, Anomaly, Cousin, Edge, LineageGraph, Node

HOSTILE = (
    "evil/</script><script>alert(1)</script>",
    "quote/\"'`${x}",
    "uni/模型-ünï\u2028\u2029-🙂",
    "html/<!--&amp;-->",
)


def _edge(parent: str, child: str, relation: str, overlap: float) -> Edge:
    return Edge(
        parent=parent,
        child=child,
        overlap=overlap,
        identity=0.9 if relation == "copy" else 0.05,
        p_value=0.0 if overlap > 0.2 else 1e-9,
        log10_p=-300.0,
        confidence=0.9,
        score=-math.log(overlap),
        relation=relation,
        slots_compared=64,
        direction="evidence",
        direction_by=("created_at",),
    )


def synthetic_graph(n: int, seed: int = 0, families: int | None = None) -> LineageGraph:
    """A forest of `n` models shaped like the Hub: many small families and a few large ones,
    downloads heavy-tailed, a merge, anomalies and cousins; the last nodes carry hostile ids."""
    rng = random.Random(seed)
    families = families or max(1, n // 7)
    ids = [f"org{i % 97}/model-{i}" for i in range(n - len(HOSTILE))] + list(HOSTILE)[:n]
    nodes: list[Node] = []
    edges: list[Edge] = []
    members: dict[str, list[str]] = {}
    for k, mid in enumerate(ids):
        # the first `families` models are roots; the rest join a family with Zipf-like odds
        if k < families:
            fam, parent, rel = mid, None, None
        else:
            fam = ids[min(int(rng.paretovariate(0.7)) - 1, families - 1)]
            parent = rng.choice(members[fam])
            rel = rng.choice(RELATIONS[:-1])
        members.setdefault(fam, []).append(mid)
        parents: tuple[str, ...] = (parent,) if parent else ()
        if parent and k % 50 == 0 and len(members[fam]) > 3:
            rel = "merge"
            other = next(m for m in members[fam] if m not in (parent, mid))
            parents = (parent, other)
            edges.append(_edge(other, mid, rel, 0.4))
        if parent:
            edges.append(_edge(parent, mid, rel or "finetune", rng.uniform(0.05, 0.95)))
        nodes.append(
            Node(
                id=mid,
                family=fam,
                parent=parent,
                parents=parents,
                relation=rel,
                confidence=0.8,
                downloads=int(rng.paretovariate(0.6) * 3) - 3,
                created_at=f"2024-01-{1 + k % 28:02d}T00:00:00",
                declared_base=parents[:1],
                anomalies=("suspicious_copy",) if k % 13 == 5 else (),
            )
        )
    anomalies = tuple(
        Anomaly(
            model=node.id,
            kind="suspicious_copy",
            severity="high",
            score=0.99,
            evidence=f"{node.id} is byte-identical to </script> {node.parent or 'nothing'}",
        )
        for node in nodes
        if node.anomalies
    )
    roots = [x for x in ids[:families]]
    cousins = tuple(
        Cousin(a=min(a, b), b=max(a, b), overlap=0.3, p_value=1e-12, shared=("embed",))
        for a, b in zip(roots[0:20:2], roots[1:20:2], strict=False)
    )
    return LineageGraph(tuple(nodes), tuple(edges), anomalies, {"alpha": 1e-4}, cousins)


class _Scripts(HTMLParser):
    """The page's elements with src/href, and the text of each <script> by id."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: dict[str, str] = {}
        self._current: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.urls += [v or "" for k, v in attrs if k in ("src", "href")]
        if tag == "script":
            self._current = a.get("id") or f"anon{len(self.scripts)}"
            self.scripts[self._current] = ""

    def handle_endtag(self, tag):
        if tag == "script":
            self._current = None

    def handle_data(self, data):
        if self._current is not None:
            self.scripts[self._current] += data


def _parse(page: str) -> _Scripts:
    parser = _Scripts()
    parser.feed(page)
    return parser


@pytest.fixture(scope="module")
def graph() -> LineageGraph:
    return synthetic_graph(60, seed=1, families=6)


def test_the_page_is_self_contained(graph):
    page = render_atlas(graph, endpoint="https://huggingface.co")
    parsed = _parse(page)
    assert parsed.urls == []  # no src or href at all: scripts and style are inline
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "Content-Security-Policy" in page and "connect-src 'none'" in page
    # the libraries, the app and the data: one data element, three inline scripts
    assert [k for k in parsed.scripts if not k.startswith("anon")] == [DATA_ELEMENT_ID]
    assert len(parsed.scripts) == 4
    assert "sigma" in page.lower() and "graphology" in page.lower()


def test_the_data_round_trips(graph):
    page = render_atlas(graph, endpoint="https://hub.example/")
    data = json.loads(_parse(page).scripts[DATA_ELEMENT_ID])
    assert data == json.loads(json.dumps(atlas_data(graph, endpoint="https://hub.example")))
    assert data["graph"] == json.loads(json.dumps(graph.to_json()))
    assert data["endpoint"] == "https://hub.example"
    assert len(data["anomalies"]) == len(graph.anomalies) > 0
    assert len(data["graph"]["cousins"]) == len(graph.cousins) > 0
    n = len(graph.nodes)
    assert len(data["layout"]["tree"]) == len(data["layout"]["global"]) == len(data["links"]) == n


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_ids_stay_inside_the_data(graph, hostile):
    assert any(node.id == hostile for node in graph.nodes)
    page = render_atlas(graph, title=hostile)
    parsed = _parse(page)
    # the parser sees exactly the scripts we wrote: no id closed one or opened another
    assert len(parsed.scripts) == 4
    assert "alert(1)</script>" not in page and "<script>alert" not in page
    assert "\u2028" not in parsed.scripts[DATA_ELEMENT_ID]
    ids = [n["id"] for n in json.loads(parsed.scripts[DATA_ELEMENT_ID])["graph"]["nodes"]]
    assert hostile in ids
    assert f"<title>{html.escape(hostile)}</title>" in page  # the title is escaped too


def test_embedded_json_has_no_markup_characters():
    text = embed_json({"a": "</script><!-- & \u2028", "b": [1.5, None]})
    assert not re.search("[<>&\u2028\u2029]", text)
    assert json.loads(text) == {"a": "</script><!-- & \u2028", "b": [1.5, None]}


def test_non_finite_numbers_become_null():
    assert json.loads(embed_json({"x": float("inf"), "y": [float("nan")]})) == {
        "x": None,
        "y": [None],
    }


def test_links_follow_the_endpoint_and_the_hub_ids(graph, monkeypatch):
    ids = [n.id for n in graph.nodes]
    data = atlas_data(graph, endpoint="http://127.0.0.1:8765/", hub_ids={ids[0]})
    assert data["endpoint"] == "http://127.0.0.1:8765"
    assert data["links"] == [i == ids[0] for i in ids]
    # without the store's answer every Hub-shaped id links, and a non-http endpoint none
    assert atlas_data(graph, endpoint="https://huggingface.co")["links"][0] is True
    assert not any(atlas_data(graph, endpoint="javascript:alert(1)")["links"])
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "https://mirror.example")
    assert atlas_data(graph)["endpoint"] == "https://mirror.example"


def test_one_family_only(graph):
    family = graph.nodes[0].family
    data = atlas_data(graph, family, endpoint="https://huggingface.co")
    assert {n["family"] for n in data["graph"]["nodes"]} == {family}
    assert all(a["model"] in {n["id"] for n in data["graph"]["nodes"]} for a in data["anomalies"])


def test_tree_layout_puts_each_generation_below_its_parent(graph):
    doc = graph.to_json()
    pos = tree_layout(doc["nodes"])
    assert set(pos) == {n["id"] for n in doc["nodes"]}
    for n in doc["nodes"]:
        if n["parent"]:
            assert pos[n["id"]][1] < pos[n["parent"]][1]
    assert len(set(pos.values())) == len(pos)  # nobody on top of anybody


def test_global_layout_keeps_families_apart(graph):
    doc = graph.to_json()
    pos = global_layout(doc["nodes"])
    assert len(set(pos.values())) == len(pos)
    boxes: dict[str, list[float]] = {}
    for n in doc["nodes"]:
        x, y = pos[n["id"]]
        b = boxes.setdefault(n["family"], [x, y, x, y])
        boxes[n["family"]] = [min(b[0], x), min(b[1], y), max(b[2], x), max(b[3], y)]
    items = list(boxes.values())
    for i, a in enumerate(items):
        for b in items[i + 1 :]:
            overlap = a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
            assert not overlap


def test_layouts_of_ten_thousand_models_take_well_under_a_second_each():
    doc = synthetic_graph(10_000, seed=3).to_json()
    for layout in (tree_layout, global_layout):
        start = time.perf_counter()
        pos = layout(doc["nodes"])
        assert time.perf_counter() - start < 2.0  # about 0.1 s here; generous for busy CI
        assert len(pos) == 10_000


def test_a_long_chain_does_not_recurse():
    nodes = [
        {"id": f"m{i}", "family": "m0", "parent": f"m{i - 1}" if i else None} for i in range(5000)
    ]
    pos = tree_layout(nodes)
    assert pos["m4999"][1] < pos["m0"][1]


def test_html_is_an_export_format(graph, tmp_path):
    assert "html" in FORMATS
    text = render(graph, "html")
    assert text.startswith("<!doctype html>")
    [path] = export(graph, "html", tmp_path / "sub" / "atlas.html")
    assert path.read_text(encoding="utf-8") == text
    assert write_atlas(graph, tmp_path / "a.html").read_text(encoding="utf-8") == text
