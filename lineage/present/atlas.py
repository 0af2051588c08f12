"""The atlas: one self-contained HTML page to explore a LineageGraph in the browser.

`render_atlas` returns the page as text, `write_atlas` writes it (`lineage view`, and
`lineage tree --format html` through `lineage.present.export`). The page inlines everything it
needs: the graph renderer (sigma.js 3 on WebGL, with graphology; minified files vendored in
`lineage/present/atlas/`, MIT, versions in its README.md), the app's own script and style, and
the data as JSON. Nothing is fetched when it is opened (a Content-Security-Policy forbids it);
only a click on a node leaves the page, for the model's Hub page.

The data is `{"graph": LineageGraph.to_json(family), "anomalies": [...], "layout": {"tree":
[[x, y], ...], "global": [...]}, "links": [bool, ...], "endpoint": URL, "siblings": [...]}`,
positions and links aligned with `graph.nodes`; `siblings` are the sibling-adapter notes whose
two adapters are shown (`lineage.present.export.sibling_notes`), drawn as dashed gold links and
listed in a model's side panel, never as edges. It sits in a `<script type="application/json">` with `<`, `>`, `&`
and the two JavaScript line separators escaped, so no model id can close the element.
Positions come from `lineage.present.atlas_layout` (computed here, not in the browser).
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Collection
from importlib import resources
from pathlib import Path

from lineage.present.atlas_layout import as_columns, global_layout, tree_layout
from lineage.present.export import sibling_notes
from lineage.records import LineageGraph

__all__ = [
    "DATA_ELEMENT_ID",
    "atlas_data",
    "default_endpoint",
    "embed_json",
    "render_atlas",
    "write_atlas",
]

DATA_ELEMENT_ID = "atlas-data"
# vendored libraries first (the app uses their globals `graphology` and `Sigma`), then the app
SCRIPTS = ("graphology.umd.min.js", "sigma.min.js", "atlas.js")
_MARKER = re.compile(r"@@(TITLE|STYLE|SCRIPTS|DATA)@@")
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028"}
_JSON_ESCAPES["\u2029"] = "\\u2029"


def default_endpoint() -> str:
    """The Hub URL the CLI uses: `$HF_ENDPOINT` as huggingface_hub reads it, else the Hub."""
    from huggingface_hub import constants

    return str(constants.ENDPOINT).rstrip("/")


def _asset(name: str) -> str:
    return (resources.files("lineage.present") / "atlas" / name).read_text(encoding="utf-8")


def _linkable(model_id: str) -> bool:
    from hub.folders import is_model_id

    return is_model_id(model_id)


def atlas_data(
    graph: LineageGraph,
    family: str | None = None,
    *,
    endpoint: str | None = None,
    hub_ids: Collection[str] | None = None,
) -> dict:
    """What the page shows, as JSON-ready data (the contract in the module docstring).

    Args:
        graph: the recovered lineage.
        family: only this family (a family id, as in `Node.family`); None for all.
        endpoint: Hub URL for the links; default `default_endpoint()`. Only http(s) URLs
            make links.
        hub_ids: the models that have a Hub page (crawled or from the HF cache); None: every
            node whose id is shaped like a Hub id (a local folder's `org/name` is too, so the
            CLI passes the store's answer).
    """
    doc = graph.to_json(family)
    ids = [n["id"] for n in doc["nodes"]]
    keep = set(ids)
    endpoint = (endpoint or default_endpoint()).rstrip("/")
    if not re.match(r"https?://", endpoint):
        endpoint = ""
    links = [
        bool(endpoint) and (i in hub_ids if hub_ids is not None else _linkable(i)) for i in ids
    ]
    return {
        "graph": doc,
        "anomalies": [a.to_dict() for a in graph.anomalies if a.model in keep],
        "layout": {
            "tree": as_columns(ids, tree_layout(doc["nodes"])),
            "global": as_columns(ids, global_layout(doc["nodes"])),
        },
        "links": links,
        "endpoint": endpoint,
        "siblings": sibling_notes(doc),
    }


def embed_json(data: object) -> str:
    """`data` as JSON that is inert inside a `<script>` element, whatever its strings hold."""
    try:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:  # an infinite or NaN number: JSON.parse would refuse the whole page
        text = json.dumps(_finite(data), ensure_ascii=False, separators=(",", ":"))
    return re.sub("[<>&\u2028\u2029]", lambda m: _JSON_ESCAPES[m.group()], text)


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _script(source: str, name: str) -> str:
    # `</script` (any case) would end the element early; the vendored files are checked once
    # here rather than trusted, so a library upgrade that adds one fails loudly
    if re.search(r"</script|<!--", source, re.IGNORECASE):
        raise ValueError(f"{name} holds '</script' or '<!--' and cannot be inlined as is")
    return f"<script>/* {name} */\n{source}\n</script>"


def render_atlas(
    graph: LineageGraph,
    family: str | None = None,
    *,
    endpoint: str | None = None,
    hub_ids: Collection[str] | None = None,
    title: str | None = None,
) -> str:
    """The atlas page as HTML text (arguments as in `atlas_data`; `title` for the tab)."""
    data = atlas_data(graph, family, endpoint=endpoint, hub_ids=hub_ids)
    count = len(data["graph"]["nodes"])
    title = title or (
        f"Lineage atlas: family {family}" if family else f"Lineage atlas: {count} models"
    )
    parts = {
        "TITLE": html.escape(title),
        "STYLE": _asset("atlas.css"),
        "SCRIPTS": "\n".join(_script(_asset(name), name) for name in SCRIPTS),
        "DATA": embed_json(data),
    }
    # one pass: text put in (a model id holding "@@DATA@@") is never scanned again
    return _MARKER.sub(lambda m: parts[m.group(1)], _asset("atlas.html"))


def write_atlas(
    graph: LineageGraph,
    out: str | Path,
    family: str | None = None,
    *,
    endpoint: str | None = None,
    hub_ids: Collection[str] | None = None,
) -> Path:
    """Write the atlas page to `out` (UTF-8) and return its path.

    Args:
        graph: the recovered lineage.
        out: the HTML file to write; missing folders are created.
        family: only this family (a family id); None for all.
        endpoint: Hub URL for the links (default `$HF_ENDPOINT`, else https://huggingface.co).
        hub_ids: the models that have a Hub page; None: every Hub-shaped id.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        render_atlas(graph, family, endpoint=endpoint, hub_ids=hub_ids), encoding="utf-8"
    )
    return out
