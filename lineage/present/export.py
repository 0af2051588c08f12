"""Exports of a LineageGraph: node-link JSON, GraphML, GEXF, CSV, DOT and the HTML atlas.

GraphML and GEXF carry only scalar attributes, so lists become comma-separated text and None
becomes an empty string; `to_networkx` keeps the real values. GEXF names the node attribute
`parents` `parent_ids` (GEXF reserves `parents` for its hierarchy), adds `label` and a `start`
date for Gephi's timeline. `render` gives any format as text (stdout). Every format carries each edge's
`direction` ("evidence" or "unknown") and `direction_by`; DOT draws an unknown direction dashed
and without an arrowhead. Cousins (models sharing only tensors outside their blocks) are in the
JSON tree (`"cousins"`) and drawn by DOT as grey dotted lines without arrows; the parent-edge
formats (GraphML, GEXF, CSV) hold parent edges only. Sibling adapters (two adapters of one base
that learnt the same thing, `params["adapter_siblings"]`: a note, never an edge) are drawn by
DOT as dashed dark-gold lines without arrows, labelled "siblings" with their lift, and named in
the graph's label (the legend); `sibling_notes` gives those whose two adapters are shown.
`html` is the interactive atlas
(`lineage.present.atlas`), one self-contained page; here every Hub-shaped id gets a Hub link
(`lineage view` knows which models are local and passes that).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from lineage.records import LineageGraph

if TYPE_CHECKING:  # networkx loads when a graph is built: `tree --help` reads FORMATS only
    import networkx as nx
    import pandas as pd

FORMATS = ("json", "graphml", "gexf", "csv", "dot", "html")
# extra DOT edge attributes by direction: a guessed direction is drawn without an arrowhead
_DOT_DIRECTION = {"evidence": "", "unknown": ", style=dashed, dir=none"}
# a sibling note: dashed, no arrow, in a colour no edge has, never pulling the layout
SIBLING_COLOR = "#a16207"
_DOT_SIBLING = (
    f'style=dashed, dir=none, color="{SIBLING_COLOR}", fontcolor="{SIBLING_COLOR}", '
    "penwidth=1.5, constraint=false"
)
_DOT_SIBLING_LEGEND = (
    "dashed gold lines without arrows: sibling adapters (one base, the same learnt directions); "
    "a note, not a lineage edge"
)


def to_networkx(graph: LineageGraph, family: str | None = None) -> nx.DiGraph:
    """A DiGraph with every node (models) and edge (parent -> child) attribute of the contract."""
    import networkx as nx

    doc = graph.to_json(family)
    g = nx.DiGraph()
    for n in doc["nodes"]:
        g.add_node(n["id"], **{k: v for k, v in n.items() if k != "id"})
    for e in doc["edges"]:
        g.add_edge(
            e["parent"], e["child"], **{k: v for k, v in e.items() if k not in ("parent", "child")}
        )
    return g


def _flat(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return value


def _flat_graph(g: nx.DiGraph, gexf: bool = False) -> nx.DiGraph:
    """Scalar attributes only; for GEXF also a `label`, `parents` renamed and a `start` date.

    GEXF reserves `parents` for its node hierarchy (networkx wrote one `<parent>` per character
    of the joined string, and Gephi built a bogus hierarchy): the node attribute is
    `parent_ids` there. `start` (the upload date) gives Gephi its timeline.
    """
    import networkx as nx

    flat = nx.DiGraph()
    for n, attrs in g.nodes(data=True):
        node = {k: _flat(v) for k, v in attrs.items()}
        if gexf:
            node["parent_ids"] = node.pop("parents", "")
            node["label"] = n
            if attrs.get("created_at"):
                node["start"] = str(attrs["created_at"])[:10]  # YYYY-MM-DD: a GEXF date
        flat.add_node(n, **node)
    for u, v, attrs in g.edges(data=True):
        flat.add_edge(u, v, **{k: _flat(x) for k, x in attrs.items()})
    return flat


def _dot_id(s: str) -> str:
    """A DOT double-quoted string: backslashes and quotes escaped, a newline as DOT's line break
    (`\\n` inside the quotes, written once)."""
    escaped = s.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n") + '"'


def sibling_notes(doc: dict) -> list[dict]:
    """The sibling-adapter notes of a tree JSON (`params.adapter_siblings`, written by
    `lineage.adapter_graph`) whose two adapters are both among its nodes (one family shown
    keeps the notes inside it)."""
    shown = {n["id"] for n in doc["nodes"]}
    notes = doc.get("params", {}).get("adapter_siblings") or []
    return [s for s in notes if s.get("a") in shown and s.get("b") in shown]


def to_dot(graph: LineageGraph, family: str | None = None) -> str:
    """The graph as Graphviz DOT text: boxes for models, parent -> child edges, cousins and
    sibling adapters as undirected notes (see the module docstring)."""
    doc = graph.to_json(family)
    lines = ["digraph lineage {", "  rankdir=TB;", '  node [shape=box, fontname="Helvetica"];']
    for n in doc["nodes"]:
        color = "red" if n["anomalies"] else "black"
        label = f"{n['id']}\n{n['relation'] or 'root'} | {n['downloads']} dl"
        lines.append(f"  {_dot_id(n['id'])} [label={_dot_id(label)}, color={color}];")
    for e in doc["edges"]:
        # a quantized or exported child names its method: "quantized gguf:Q4_K_M 0.95"
        method = f" {e['method']}" if e.get("method") else ""
        label = f"{e['relation']}{method} {e['overlap']:.2f}"
        extra = _DOT_DIRECTION.get(e["direction"], "")
        lines.append(
            f"  {_dot_id(e['parent'])} -> {_dot_id(e['child'])} [label={_dot_id(label)}{extra}];"
        )
    for c in doc["cousins"]:
        label = _dot_id(f"cousin {c['overlap']:.2f}")
        lines.append(
            f"  {_dot_id(c['a'])} -> {_dot_id(c['b'])} [label={label}, style=dotted, dir=none, "
            "color=gray, constraint=false];"
        )
    siblings = sibling_notes(doc)
    for sib in siblings:
        label = _dot_id(f"siblings, lift {sib['lift']:.2f}")
        lines.append(
            f"  {_dot_id(sib['a'])} -> {_dot_id(sib['b'])} [label={label}, {_DOT_SIBLING}];"
        )
    if siblings:  # the legend: only where the mark is drawn, so other graphs stay as they were
        lines.append(f"  label={_dot_id(_DOT_SIBLING_LEGEND)}; labelloc=b; fontsize=10;")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(graph: LineageGraph, fmt: str, family: str | None = None) -> str:
    """The graph in `fmt` as text (what `tree --format FMT` prints without --out).

    `csv` as text is the edges table (the lineage itself); `export` writes nodes and edges.
    """
    import io

    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "json":
        return json.dumps(graph.to_json(family), indent=2) + "\n"
    if fmt == "dot":
        return to_dot(graph, family)
    if fmt == "html":
        from lineage.present.atlas import render_atlas

        return render_atlas(graph, family)
    if fmt == "csv":
        return _table(graph.to_json(family)["edges"]).to_csv(index=False)
    import networkx as nx

    buf = io.BytesIO()
    g = _flat_graph(to_networkx(graph, family), gexf=fmt == "gexf")
    (nx.write_graphml if fmt == "graphml" else nx.write_gexf)(g, buf)
    return buf.getvalue().decode("utf-8")


def _table(rows: list[dict]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame([{k: _flat(v) for k, v in r.items()} for r in rows])


def export(graph: LineageGraph, fmt: str, out: str | Path, family: str | None = None) -> list[Path]:
    """Write the graph in `fmt` to `out` and return the files written.

    `csv` writes two files next to each other: `<out stem>_nodes.csv` and `<out stem>_edges.csv`.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        doc = graph.to_json(family)
        stem = out.with_suffix("")
        nodes, edges = Path(f"{stem}_nodes.csv"), Path(f"{stem}_edges.csv")
        _table(doc["nodes"]).to_csv(nodes, index=False)
        _table(doc["edges"]).to_csv(edges, index=False)
        return [nodes, edges]
    if fmt == "html":
        from lineage.present.atlas import write_atlas

        return [write_atlas(graph, out, family)]
    out.write_text(render(graph, fmt, family))
    return [out]
