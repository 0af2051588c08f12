// The lineage atlas app: reads the JSON data element, draws it with sigma.js (WebGL) and adds
// search, family focus, two layouts, tooltips, anomaly rings, dotted cousin links and dashed
// sibling-adapter notes (never edges: drawn on the overlay, listed in the side panel).
// Text from the data is only ever put into the page as text (textContent), never as HTML.
(function () {
  "use strict";
  const started = performance.now();
  const DATA = JSON.parse(document.getElementById("atlas-data").textContent);
  const G = DATA.graph;
  const COLORS = {
    root: "#1f2937",
    finetune: "#2563eb",
    adapter: "#16a34a",
    partial: "#ea8c00",
    copy: "#db2777",
    quantized: "#0891b2",
    merge: "#7c3aed",
  };
  const ANOMALY = "#dc2626";
  const SIBLING = "#a16207"; // a colour no relation has: a note, not a lineage edge
  const DIM = "#d8dbe2";
  const $ = (id) => document.getElementById(id);

  // ---- index ---------------------------------------------------------------------------------
  const nodes = new Map(); // id -> {n, i, link, anomalies}
  G.nodes.forEach((n, i) => nodes.set(n.id, { n: n, i: i, link: DATA.links[i], anomalies: [] }));
  for (const a of DATA.anomalies) if (nodes.has(a.model)) nodes.get(a.model).anomalies.push(a);
  const SIBLINGS = DATA.siblings || [];
  const siblingsOf = new Map(); // id -> [{other, note}]
  for (const s of SIBLINGS) {
    for (const [me, other] of [[s.a, s.b], [s.b, s.a]]) {
      if (!siblingsOf.has(me)) siblingsOf.set(me, []);
      siblingsOf.get(me).push({ other: other, note: s });
    }
  }
  const families = new Map(); // family -> [ids]
  for (const n of G.nodes) {
    if (!families.has(n.family)) families.set(n.family, []);
    families.get(n.family).push(n.id);
  }
  const familyOrder = [...families.keys()].sort(
    (a, b) => families.get(b).length - families.get(a).length || (a < b ? -1 : 1)
  );
  const ids = G.nodes.map((n) => n.id);
  const lowerIds = ids.map((s) => s.toLowerCase());
  const big = G.nodes.length > 3000;

  const state = { layout: "tree", family: null, selected: null, hoverNode: null, hoverEdge: null };

  function relationOf(n) {
    return n.relation && COLORS[n.relation] ? n.relation : "root";
  }
  // sizes are in screen pixels at the overview: shrink them as the map fills up
  const sizeScale = Math.max(0.4, Math.min(1, 1.6 - 0.3 * Math.log10(Math.max(1, G.nodes.length))));
  function sizeOf(n) {
    // log scale: 1 download and 10 million stay within a readable range of radii
    return sizeScale * (3.5 + 1.8 * Math.log10(1 + Math.max(0, n.downloads || 0)));
  }
  function fmtP(p) {
    if (p === null || p === undefined) return "n/a";
    return p > 0 ? p.toExponential(2) : "< 1e-300";
  }
  function fmtNum(x, digits) {
    return typeof x === "number" ? x.toFixed(digits) : "n/a";
  }
  function hubUrl(id) {
    const e = nodes.get(id);
    if (!e || !e.link || !DATA.endpoint) return null;
    return DATA.endpoint + "/" + id.split("/").map(encodeURIComponent).join("/");
  }

  // ---- DOM helpers (text only) -----------------------------------------------------------------
  function el(tag, props, children) {
    const node = document.createElement(tag);
    if (props) for (const k of Object.keys(props)) node[k] = props[k];
    for (const c of children || []) node.append(c);
    return node;
  }
  function fields(rows) {
    const dl = el("dl");
    for (const [k, v] of rows) {
      if (v === null || v === undefined || v === "") continue;
      dl.append(el("dt", { textContent: k }), el("dd", { textContent: String(v) }));
    }
    return dl;
  }
  function anomalyBlocks(list) {
    return list.map((a) =>
      el("div", { className: "anomaly" }, [
        el("b", { textContent: a.severity + " · " + a.kind }),
        el("div", { textContent: a.evidence }),
      ])
    );
  }
  function nodeRows(n) {
    return [
      ["family", n.family],
      ["relation", n.relation || "root"],
      ["parents", (n.parents || []).join(", ") || "none recovered"],
      ["declared", (n.declared_base || []).join(", ") || "none"],
      ["downloads", (n.downloads || 0).toLocaleString("en-US")],
      ["created", n.created_at ? String(n.created_at).slice(0, 10) : null],
      ["confidence", n.parent ? fmtNum(n.confidence, 2) : null],
    ];
  }
  function edgeRows(e) {
    return [
      ["relation", e.relation],
      ["method", e.method || null],
      ["overlap", fmtNum(e.overlap, 3)],
      ["identity", fmtNum(e.identity, 3)],
      ["p-value", fmtP(e.p_value)],
      ["confidence", fmtNum(e.confidence, 2)],
      ["direction", e.direction + ((e.direction_by || []).length ? " (" + e.direction_by.join(", ") + ")" : "")],
      ["slots", e.slots_compared],
      ["notes", (e.notes || []).join("; ")],
    ];
  }

  // ---- graph + renderer ------------------------------------------------------------------------
  const Graph = graphology.Graph || graphology;
  const graph = new Graph({ type: "directed", multi: false, allowSelfLoops: false });
  const edgeData = new Map(); // edge key -> edge record
  let renderer;
  try {
    renderer = new Sigma(graph, $("graph"), {
      enableEdgeEvents: true,
      defaultEdgeType: "arrow",
      renderEdgeLabels: false,
      zIndex: true,
      labelFont: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif",
      labelSize: 12,
      labelWeight: "500",
      labelColor: { color: "#111827" },
      labelRenderedSizeThreshold: big ? 9 : 5,
      labelDensity: 1,
      labelGridCellSize: 200,
      minCameraRatio: 0.01,
      maxCameraRatio: 5,
      hideEdgesOnMove: big,
      hideLabelsOnMove: big,
      stagePadding: 40,
      nodeReducer: reduceNode,
      edgeReducer: reduceEdge,
    });
  } catch (err) {
    $("error").hidden = false;
    $("error").textContent = "This browser could not start WebGL, which the atlas needs: " + err;
    window.atlas = { ready: false, error: String(err) };
    return;
  }

  function neighbours(id) {
    const set = new Set([id]);
    if (graph.hasNode(id)) graph.forEachNeighbor(id, (m) => set.add(m));
    for (const s of siblingsOf.get(id) || []) if (graph.hasNode(s.other)) set.add(s.other);
    return set;
  }
  let focusSet = null; // the selected node and its neighbours: the rest is dimmed
  function reduceNode(id, data) {
    const res = Object.assign({}, data);
    if (focusSet && !focusSet.has(id)) {
      res.color = DIM;
      res.label = "";
      res.zIndex = 0;
    }
    if (id === state.selected || id === state.hoverNode) {
      res.highlighted = true;
      res.zIndex = 3;
    }
    return res;
  }
  function reduceEdge(key, data) {
    const res = Object.assign({}, data);
    const [s, t] = graph.extremities(key);
    if (focusSet && !(focusSet.has(s) && focusSet.has(t))) res.color = "#eceef2";
    if (key === state.hoverEdge || (state.hoverNode && (s === state.hoverNode || t === state.hoverNode))) {
      res.color = "#111827";
      res.size = data.size + 1.5;
      res.zIndex = 2;
    }
    return res;
  }

  function show() {
    const members = state.family ? new Set(families.get(state.family)) : null;
    const layout = DATA.layout[state.layout];
    graph.clear();
    edgeData.clear();
    G.nodes.forEach((n, i) => {
      if (members && !members.has(n.id)) return;
      const rel = relationOf(n);
      graph.addNode(n.id, {
        x: layout[i][0],
        y: layout[i][1],
        size: sizeOf(n),
        color: COLORS[rel],
        label: n.id,
        forceLabel: !big && rel === "root",
        zIndex: 1,
      });
    });
    G.edges.forEach((e, i) => {
      if (!graph.hasNode(e.parent) || !graph.hasNode(e.child) || e.parent === e.child) return;
      if (graph.hasEdge(e.parent, e.child)) return;
      const key = "e" + i;
      const color = (COLORS[e.relation] || "#6b7280") + "b3";
      graph.addDirectedEdgeWithKey(key, e.parent, e.child, {
        size: 0.6 + 2.4 * Math.max(0, Math.min(1, e.overlap || 0)),
        color: color,
        type: e.direction === "unknown" ? "line" : "arrow",
        zIndex: 1,
      });
      edgeData.set(key, e);
    });
    focusSet = state.selected && graph.hasNode(state.selected) ? neighbours(state.selected) : null;
    renderer.getCamera().setState({ x: 0.5, y: 0.5, ratio: 1, angle: 0 });
    renderer.refresh();
    $("back").hidden = !state.family;
    $("family").value = state.family || "";
    $("layout-tree").classList.toggle("on", state.layout === "tree");
    $("layout-global").classList.toggle("on", state.layout === "global");
    updateStats();
  }

  // ---- overlay: anomaly rings, dotted cousin links, dashed sibling notes ----------------------
  const overlay = $("overlay");
  // under sigma's label and hover layers, so a hovered label box covers the rings around it
  const labelLayer = renderer.getCanvases().labels;
  if (labelLayer && labelLayer.parentNode) labelLayer.parentNode.insertBefore(overlay, labelLayer);
  const ctx = overlay.getContext("2d");
  const anomalous = ids.filter((id) => nodes.get(id).anomalies.length > 0);
  function drawOverlay() {
    const ratio = window.devicePixelRatio || 1;
    const w = overlay.clientWidth, h = overlay.clientHeight;
    if (overlay.width !== Math.round(w * ratio) || overlay.height !== Math.round(h * ratio)) {
      overlay.width = Math.round(w * ratio);
      overlay.height = Math.round(h * ratio);
    }
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.save();
    ctx.setLineDash([2, 4]);
    ctx.lineWidth = 1.6;
    ctx.strokeStyle = "rgba(75, 85, 99, 0.85)";
    ctx.beginPath();
    for (const c of G.cousins) {
      if (!graph.hasNode(c.a) || !graph.hasNode(c.b)) continue;
      const p = renderer.graphToViewport(graph.getNodeAttributes(c.a));
      const q = renderer.graphToViewport(graph.getNodeAttributes(c.b));
      ctx.moveTo(p.x, p.y);
      ctx.lineTo(q.x, q.y);
    }
    ctx.stroke();
    ctx.restore();
    // sibling adapters: long dashes in their own colour, no arrowhead, bowed below the two
    // nodes (siblings share a row in the trees, and labels sit right of their nodes); faint
    // outside the focus
    for (const s of SIBLINGS) {
      if (!graph.hasNode(s.a) || !graph.hasNode(s.b)) continue;
      const p = renderer.graphToViewport(graph.getNodeAttributes(s.a));
      const q = renderer.graphToViewport(graph.getNodeAttributes(s.b));
      const dx = q.x - p.x, dy = q.y - p.y, len = Math.hypot(dx, dy) || 1;
      const bow = Math.min(60, 10 + 0.2 * len);
      let nx = -dy / len, ny = dx / len;
      if (ny < 0 || (ny === 0 && nx < 0)) { nx = -nx; ny = -ny; }
      ctx.save();
      ctx.setLineDash([7, 5]);
      ctx.lineWidth = 2;
      ctx.strokeStyle = SIBLING;
      if (focusSet && !(focusSet.has(s.a) && focusSet.has(s.b))) ctx.globalAlpha = 0.25;
      ctx.beginPath();
      ctx.moveTo(p.x, p.y);
      ctx.quadraticCurveTo((p.x + q.x) / 2 + 2 * bow * nx, (p.y + q.y) / 2 + 2 * bow * ny, q.x, q.y);
      ctx.stroke();
      ctx.restore();
    }
    ctx.lineWidth = big ? 1.5 : 2.5;
    ctx.strokeStyle = ANOMALY;
    for (const id of anomalous) {
      if (!graph.hasNode(id)) continue;
      const d = renderer.getNodeDisplayData(id);
      if (!d || d.hidden) continue;
      const p = renderer.graphToViewport(graph.getNodeAttributes(id));
      if (p.x < -20 || p.y < -20 || p.x > w + 20 || p.y > h + 20) continue;
      const r = renderer.scaleSize(d.size) + 3;
      ctx.beginPath();
      ctx.arc(p.x, p.y, r, 0, 2 * Math.PI);
      ctx.stroke();
    }
  }
  renderer.on("afterRender", drawOverlay);

  // ---- tooltip ---------------------------------------------------------------------------------
  const tooltip = $("tooltip");
  function placeTooltip(x, y) {
    const main = tooltip.parentElement.getBoundingClientRect();
    const left = Math.min(x + 14, main.width - tooltip.offsetWidth - 6);
    const top = y + 14 + tooltip.offsetHeight > main.height ? y - tooltip.offsetHeight - 10 : y + 14;
    tooltip.style.left = Math.max(4, left) + "px";
    tooltip.style.top = Math.max(4, top) + "px";
  }
  function showTooltip(children, event) {
    tooltip.replaceChildren(...children);
    tooltip.hidden = false;
    placeTooltip(event.x, event.y);
  }
  function nodeTooltip(id) {
    const e = nodes.get(id);
    return [el("strong", { textContent: id }), fields(nodeRows(e.n)), ...anomalyBlocks(e.anomalies)];
  }
  renderer.on("enterNode", ({ node, event }) => {
    state.hoverNode = node;
    showTooltip(nodeTooltip(node), event);
    renderer.refresh({ skipIndexation: true });
  });
  renderer.on("leaveNode", () => {
    state.hoverNode = null;
    tooltip.hidden = true;
    renderer.refresh({ skipIndexation: true });
  });
  renderer.on("enterEdge", ({ edge, event }) => {
    const e = edgeData.get(edge);
    if (!e) return;
    state.hoverEdge = edge;
    showTooltip([el("strong", { textContent: e.parent + " → " + e.child }), fields(edgeRows(e))], event);
    renderer.refresh({ skipIndexation: true });
  });
  renderer.on("leaveEdge", () => {
    state.hoverEdge = null;
    tooltip.hidden = true;
    renderer.refresh({ skipIndexation: true });
  });
  renderer.getMouseCaptor().on("mousemovebody", (event) => {
    if (!tooltip.hidden) placeTooltip(event.x, event.y);
  });

  // ---- selection, details panel, Hub links ----------------------------------------------------
  const panel = $("panel");
  function select(id, opts) {
    if (!nodes.has(id)) return false;
    if (state.family && nodes.get(id).n.family !== state.family) {
      state.family = null;
      state.selected = id;
      show();
    }
    state.selected = id;
    focusSet = neighbours(id);
    renderPanel(id);
    renderer.refresh({ skipIndexation: true });
    if (!opts || opts.move !== false) {
      const d = renderer.getNodeDisplayData(id);
      if (d) renderer.getCamera().animate({ x: d.x, y: d.y, ratio: Math.min(renderer.getCamera().ratio, 0.35) }, { duration: 300 });
    }
    return true;
  }
  function clearSelection() {
    state.selected = null;
    focusSet = null;
    panel.hidden = true;
    renderer.refresh({ skipIndexation: true });
  }
  function renderPanel(id) {
    const e = nodes.get(id);
    const n = e.n;
    const url = hubUrl(id);
    const parents = G.edges.filter((x) => x.child === id);
    const children = [el("h2", { textContent: id }), fields(nodeRows(n))];
    for (const p of parents) {
      children.push(el("div", { className: "muted", textContent: "from " + p.parent }), fields(edgeRows(p)));
    }
    children.push(...siblingBlocks(id));
    children.push(...anomalyBlocks(e.anomalies));
    const actions = el("div", { className: "actions" });
    const focus = el("button", { id: "focus", type: "button", textContent: "Focus family" });
    focus.addEventListener("click", () => focusFamily(n.family));
    actions.append(focus);
    if (url) {
      actions.append(el("a", { id: "hub-link", href: url, target: "_blank", rel: "noopener noreferrer", textContent: "Open on the Hub" }));
    } else {
      actions.append(el("span", { className: "muted", textContent: "no Hub page (local model)" }));
    }
    const close = el("button", { type: "button", textContent: "Close" });
    close.addEventListener("click", clearSelection);
    actions.append(close);
    children.push(actions);
    panel.replaceChildren(...children);
    panel.hidden = false;
  }
  function siblingBlocks(id) {
    // a note beside the two adapters' edges from their base: what they learnt is the same
    return (siblingsOf.get(id) || []).map(({ other, note }) => {
      const go = el("button", { type: "button", className: "link", textContent: other });
      go.addEventListener("click", () => select(other));
      return el("div", { className: "sibling" }, [
        el("b", { textContent: "sibling adapter (a note, not an edge)" }),
        el("div", {}, [go]),
        fields([
          ["base", note.base],
          ["lift", fmtNum(note.lift, 2)],
          ["similarity", fmtNum(note.similarity, 3) + " (random " + fmtNum(note.baseline, 3) + ")"],
          ["modules", note.modules],
        ]),
      ]);
    });
  }
  renderer.on("clickNode", ({ node }) => {
    select(node, { move: false });
    const url = hubUrl(node);
    if (url) window.open(url, "_blank", "noopener");
  });
  renderer.on("clickStage", clearSelection);

  function focusFamily(family) {
    state.family = family && families.has(family) ? family : null;
    show();
    if (state.selected && graph.hasNode(state.selected)) renderPanel(state.selected);
  }

  // ---- controls --------------------------------------------------------------------------------
  const familySelect = $("family");
  familySelect.append(el("option", { value: "", textContent: "All families (" + families.size + ")" }));
  for (const f of familyOrder) {
    familySelect.append(el("option", { value: f, textContent: f + " (" + families.get(f).length + ")" }));
  }
  familySelect.addEventListener("change", () => focusFamily(familySelect.value || null));
  $("back").addEventListener("click", () => focusFamily(null));
  $("layout-tree").addEventListener("click", () => { state.layout = "tree"; show(); });
  $("layout-global").addEventListener("click", () => { state.layout = "global"; show(); });

  const search = $("search");
  const suggest = $("suggest");
  let matches = [];
  let active = 0;
  function findIds(q) {
    q = q.trim().toLowerCase();
    if (!q) return [];
    const exact = [], prefix = [], inner = [];
    for (let i = 0; i < lowerIds.length && exact.length + prefix.length < 12; i++) {
      const s = lowerIds[i];
      if (s === q) exact.push(ids[i]);
      else if (s.startsWith(q) || s.includes("/" + q)) prefix.push(ids[i]);
      else if (inner.length < 12 && s.includes(q)) inner.push(ids[i]);
    }
    return exact.concat(prefix, inner).slice(0, 12);
  }
  function renderSuggest() {
    suggest.replaceChildren(
      ...matches.map((id, k) => {
        const li = el("li", { textContent: id, title: id });
        if (k === active) li.className = "active";
        li.addEventListener("mousedown", (ev) => { ev.preventDefault(); pick(id); });
        return li;
      })
    );
    suggest.hidden = matches.length === 0;
  }
  function pick(id) {
    search.value = id;
    matches = [];
    renderSuggest();
    select(id);
  }
  search.addEventListener("input", () => { matches = findIds(search.value); active = 0; renderSuggest(); });
  search.addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowDown") { active = Math.min(active + 1, matches.length - 1); renderSuggest(); ev.preventDefault(); }
    else if (ev.key === "ArrowUp") { active = Math.max(active - 1, 0); renderSuggest(); ev.preventDefault(); }
    else if (ev.key === "Enter") {
      const m = matches.length ? matches[active] : findIds(search.value)[0];
      if (m) pick(m);
    } else if (ev.key === "Escape") { matches = []; renderSuggest(); }
  });
  search.addEventListener("blur", () => { suggest.hidden = true; });

  function updateStats() {
    const shown = graph.order;
    const total = G.nodes.length;
    $("stats").textContent =
      (shown === total ? total.toLocaleString("en-US") + " models" : shown + " of " + total.toLocaleString("en-US") + " models") +
      " · " + families.size.toLocaleString("en-US") + " families · " + G.edges.length.toLocaleString("en-US") + " edges · " +
      DATA.anomalies.length + " anomalies";
  }

  function legend() {
    const counts = {};
    for (const n of G.nodes) counts[relationOf(n)] = (counts[relationOf(n)] || 0) + 1;
    const rows = Object.keys(COLORS).map((rel) =>
      el("div", {}, [
        el("span", { className: "dot", style: "background:" + COLORS[rel] }),
        el("span", { textContent: rel === "root" ? "root" : rel }),
        el("span", { className: "muted", textContent: String(counts[rel] || 0) }),
      ])
    );
    rows.push(
      el("div", {}, [el("span", { className: "ring" }), el("span", { textContent: "anomaly (hover for evidence)" })]),
      el("div", {}, [el("span", { className: "dotted" }), el("span", { textContent: "cousins (shared embeddings)" })]),
    );
    if (SIBLINGS.length) {
      rows.push(
        el("div", { id: "legend-siblings" }, [
          el("span", { className: "dashed" }),
          el("span", { textContent: "sibling adapters (one base, same learnt directions; a note, not an edge)" }),
        ])
      );
    }
    rows.push(
      el("div", { className: "muted note", textContent: "colour: relation to parent · size: downloads (log) · edge width: overlap · click: Hub page" })
    );
    $("legend").replaceChildren(...rows);
  }

  // for tests and for the console: the pieces, and where a node is on screen
  window.atlas = {
    ready: false,
    graph: graph,
    renderer: renderer,
    data: DATA,
    firstRenderMs: null,
    select: select,
    focusFamily: focusFamily,
    setLayout: (name) => { state.layout = name; show(); },
    state: state,
    screenPosition: (id) => {
      if (!graph.hasNode(id)) return null;
      return renderer.graphToViewport(graph.getNodeAttributes(id));
    },
  };
  renderer.once("afterRender", () => {
    window.atlas.firstRenderMs = performance.now() - started;
    window.atlas.ready = true;
  });
  legend();
  show();
})();
