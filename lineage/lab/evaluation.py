"""Scores a recovered model tree against the zoo's truth.json.

Inputs are the files of docs/contracts.md and DESIGN.md: truth.json, the `tree --format json`
object (nodes with `parent`, optionally `parents` for merges, `family`, `relation`; edges), an
anomalies list (`model`, `kind`, ...) and a pairs file (`a`, `b`, `overlap`). Every metric is a pure
function returning a frozen record; `evaluate` bundles them and `markdown_report` renders a table.
Definitions are in docs/evaluation.md.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from lineage.anomalies import ANOMALY_KINDS
from lineage.records import RELATIONS

# ---------------------------------------------------------------------------------------------
# Records and loaders


@dataclass(frozen=True, slots=True)
class TruthModel:
    """One model as the zoo generator made it."""

    id: str
    family: str
    parents: tuple[str, ...]
    kind: str
    relation: str | None
    arch: str


@dataclass(frozen=True, slots=True)
class Truth:
    """truth.json: every model and every injected anomaly (model, kind)."""

    models: Mapping[str, TruthModel]
    anomalies: frozenset[tuple[str, str]]
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class Prediction:
    """A recovered tree, reduced to what is scored. Models absent from the tree are absent here."""

    parents: Mapping[str, tuple[str, ...]]
    family: Mapping[str, str | None]
    relation: Mapping[str, str | None]


@dataclass(frozen=True, slots=True)
class Pair:
    """A similarity score for two models (higher = more alike)."""

    a: str
    b: str
    score: float


def load_truth(path: str | Path) -> Truth:
    """Read truth.json (or the truth.json of a zoo folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / "truth.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    models = {
        mid: TruthModel(
            mid, m["family"], tuple(m["parents"]), m["kind"], m.get("relation"), m["arch"]
        )
        for mid, m in raw["models"].items()
    }
    anomalies = frozenset((a["model"], a["kind"]) for a in raw.get("anomalies", []))
    return Truth(models, anomalies, raw.get("seed"))


def parse_tree(tree: Mapping) -> Prediction:
    """Reduce a `tree --format json` object to parents, families and relations per node.

    A node's parents are its `parents` list when it has a non-empty one (merges), else its
    `parent`, else none (a root). A node without `relation` takes the one of its incoming edge.
    """
    edge_relation = {
        (e.get("parent"), e.get("child")): e.get("relation") for e in tree.get("edges", [])
    }
    parents, family, relation = {}, {}, {}
    for node in tree.get("nodes", []):
        nid = node["id"]
        ps = tuple(node.get("parents") or ([node["parent"]] if node.get("parent") else []))
        parents[nid] = ps
        family[nid] = node.get("family")
        rel = node.get("relation")
        if rel is None and ps:
            rel = edge_relation.get((ps[0], nid))
        relation[nid] = rel
    return Prediction(parents, family, relation)


def load_tree(path: str | Path) -> Prediction:
    """Read a `tree --format json` file."""
    return parse_tree(json.loads(Path(path).read_text(encoding="utf-8")))


def parse_anomalies(items: Iterable[Mapping]) -> frozenset[tuple[str, str]]:
    """(model, kind) pairs from an `anomalies --json` list."""
    return frozenset((a["model"], a["kind"]) for a in items)


def load_anomalies(path: str | Path) -> frozenset[tuple[str, str]]:
    """Read an `anomalies --json` file."""
    return parse_anomalies(json.loads(Path(path).read_text(encoding="utf-8")))


def load_pairs(path: str | Path) -> list[Pair]:
    """Read pairs from CSV (header a,b,overlap) or JSON (a list, or {"pairs": [...]})."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        rows: Iterable[Mapping] = csv.DictReader(text.splitlines())
    else:
        data = json.loads(text)
        rows = data["pairs"] if isinstance(data, Mapping) else data
    return [Pair(r["a"], r["b"], float(r["overlap"])) for r in rows]


# ---------------------------------------------------------------------------------------------
# Metrics


@dataclass(frozen=True, slots=True)
class Rate:
    """`correct` out of `total`; `value` is None when there is nothing to count."""

    correct: int
    total: int

    @property
    def value(self) -> float | None:
        return self.correct / self.total if self.total else None


@dataclass(frozen=True, slots=True)
class ParentAccuracy:
    """Parent-edge accuracy over all zoo models, by generator kind, and lenient for merges."""

    overall: Rate
    by_kind: Mapping[str, Rate]
    merge_any_parent: Rate


def _placed_right(t: TruthModel, pred: Prediction) -> bool:
    if t.id not in pred.parents:
        return False  # a model the tool lost is a wrong answer, not an abstention
    got = pred.parents[t.id]
    if t.kind == "merge":
        return set(got) == set(t.parents)
    return got == t.parents  # () for roots; a single parent otherwise


def parent_accuracy(truth: Truth, pred: Prediction) -> ParentAccuracy:
    """Fraction of models whose predicted parent(s) are exactly the true ones (see module doc)."""
    hits: dict[str, list[int]] = {}
    any_hit = [0, 0]
    for t in truth.models.values():
        ok = _placed_right(t, pred)
        hits.setdefault(t.kind, [0, 0])
        hits[t.kind][0] += ok
        hits[t.kind][1] += 1
        if t.kind == "merge":
            any_hit[0] += bool(set(pred.parents.get(t.id, ())) & set(t.parents))
            any_hit[1] += 1
    overall = Rate(sum(c for c, _ in hits.values()), sum(n for _, n in hits.values()))
    return ParentAccuracy(overall, {k: Rate(*v) for k, v in sorted(hits.items())}, Rate(*any_hit))


def adjusted_rand_index(labels_a: Sequence, labels_b: Sequence) -> float:
    """Hubert-Arabie adjusted Rand index of two labelings of the same items.

    ARI = (index - expected) / (max - expected), from the contingency table n_ij:
    index = sum C(n_ij, 2), expected = sum C(a_i, 2) * sum C(b_j, 2) / C(n, 2),
    max = (sum C(a_i, 2) + sum C(b_j, 2)) / 2. When max == expected (both labelings all singletons
    or both one cluster) the two labelings are identical and the score is 1.
    """
    if len(labels_a) != len(labels_b):
        raise ValueError("adjusted_rand_index: labelings of different lengths")
    n = len(labels_a)
    if n < 2:
        return 1.0
    pairs = Counter(zip(labels_a, labels_b, strict=True))
    index = sum(math.comb(c, 2) for c in pairs.values())
    sum_a = sum(math.comb(c, 2) for c in Counter(labels_a).values())
    sum_b = sum(math.comb(c, 2) for c in Counter(labels_b).values())
    expected = sum_a * sum_b / math.comb(n, 2)
    maximum = (sum_a + sum_b) / 2
    if maximum == expected:
        return 1.0
    return (index - expected) / (maximum - expected)


def family_ari(truth: Truth, pred: Prediction) -> float:
    """ARI of predicted vs true families over all zoo models; a missing model is its own family."""
    ids = sorted(truth.models)
    true_labels = [truth.models[i].family for i in ids]
    # Tuples cannot collide with a predicted family name, so lost models stay singletons.
    got = [pred.family.get(i) or ("<missing>", i) for i in ids]
    return adjusted_rand_index(true_labels, got)


def mann_whitney_auc(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """P(score of a positive > score of a negative), ties counting 1/2; None if a side is empty."""
    if not len(positives) or not len(negatives):
        return None
    ranks = rankdata(np.concatenate([np.asarray(positives, float), np.asarray(negatives, float)]))
    n_pos, n_neg = len(positives), len(negatives)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclass(frozen=True, slots=True)
class PairAuc:
    """AUC of pair scores, same family (related) vs different family (unrelated), same arch."""

    auc: float | None
    n_related: int
    n_unrelated: int


def pair_auc(truth: Truth, pairs: Iterable[Pair]) -> PairAuc:
    """Pairs across architectures, with unknown models, or repeated (either order) are skipped."""
    seen: set[frozenset[str]] = set()
    related: list[float] = []
    unrelated: list[float] = []
    for p in pairs:
        key = frozenset((p.a, p.b))
        ta, tb = truth.models.get(p.a), truth.models.get(p.b)
        if key in seen or len(key) < 2 or ta is None or tb is None or ta.arch != tb.arch:
            continue
        seen.add(key)
        (related if ta.family == tb.family else unrelated).append(p.score)
    return PairAuc(mann_whitney_auc(related, unrelated), len(related), len(unrelated))


def detection_by_relation(truth: Truth, pred: Prediction) -> dict[str, Rate]:
    """Per tool relation: true derived models with the right parent(s) AND the right relation."""
    counts: dict[str, list[int]] = {r: [0, 0] for r in RELATIONS}
    for t in truth.models.values():
        if t.relation is None:
            continue
        ok = _placed_right(t, pred) and pred.relation.get(t.id) == t.relation
        counts.setdefault(t.relation, [0, 0])
        counts[t.relation][0] += ok
        counts[t.relation][1] += 1
    return {r: Rate(*c) for r, c in counts.items() if c[1]}


@dataclass(frozen=True, slots=True)
class PrecisionRecall:
    """Counts for one anomaly kind; precision is None without predictions, recall without truth."""

    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None


def anomaly_scores(
    truth: Truth, predicted: Iterable[tuple[str, str]]
) -> dict[str, PrecisionRecall]:
    """Per anomaly kind, plus "all" (micro-averaged). Predictions about non-zoo models are ignored."""
    got = {(m, k) for m, k in predicted if m in truth.models}
    kinds = sorted({k for _, k in truth.anomalies} | {k for _, k in got}, key=_kind_order)
    out = {}
    for kind in [*kinds, "all"]:
        t = {a for a in truth.anomalies if kind in ("all", a[1])}
        p = {a for a in got if kind in ("all", a[1])}
        out[kind] = PrecisionRecall(len(t & p), len(p - t), len(t - p))
    return out


def _kind_order(kind: str) -> tuple[int, str]:
    return (ANOMALY_KINDS.index(kind) if kind in ANOMALY_KINDS else len(ANOMALY_KINDS), kind)


@dataclass(frozen=True, slots=True)
class Report:
    """All metrics for one method on one zoo. `pairs`/`anomalies` are None when not provided."""

    name: str
    parents: ParentAccuracy
    ari: float
    detection: Mapping[str, Rate]
    pairs: PairAuc | None = None
    anomalies: Mapping[str, PrecisionRecall] | None = None


def evaluate(
    truth: Truth,
    tree: Prediction | Mapping,
    *,
    anomalies: Iterable[Mapping] | frozenset[tuple[str, str]] | None = None,
    pairs: Iterable[Pair] | None = None,
    name: str = "tool",
) -> Report:
    """Every metric for one prediction."""
    pred = tree if isinstance(tree, Prediction) else parse_tree(tree)
    if anomalies is not None and not isinstance(anomalies, frozenset):
        anomalies = parse_anomalies(anomalies)
    return Report(
        name=name,
        parents=parent_accuracy(truth, pred),
        ari=family_ari(truth, pred),
        detection=detection_by_relation(truth, pred),
        pairs=pair_auc(truth, pairs) if pairs is not None else None,
        anomalies=anomaly_scores(truth, anomalies) if anomalies is not None else None,
    )


# ---------------------------------------------------------------------------------------------
# Rendering


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _rate(r: Rate | None) -> str:
    return "n/a" if r is None or not r.total else f"{r.value:.2f} ({r.correct}/{r.total})"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def markdown_report(truth: Truth, reports: Sequence[Report]) -> str:
    """The evaluation tables (summary, by generator kind, by relation, anomalies) as Markdown."""
    names = [r.name for r in reports]
    lines = ["### Summary", ""]
    rows = []
    for r in reports:
        allp = r.anomalies.get("all") if r.anomalies else None
        rows.append([
            r.name, _rate(r.parents.overall), _rate(r.parents.merge_any_parent), f"{r.ari:.3f}",
            _pct(r.pairs.auc) if r.pairs else "n/a",
            f"{_pct(allp.precision)} / {_pct(allp.recall)}" if allp else "n/a",
        ])  # fmt: skip
    lines += _table(["method", "parent accuracy", "merge: >=1 parent", "family ARI", "pair AUC",
                     "anomalies P / R"], rows)  # fmt: skip
    kinds = sorted({t.kind for t in truth.models.values()})
    counts = Counter(t.kind for t in truth.models.values())
    lines += ["", "### Parent accuracy by generator kind", ""]
    rows = [[k, str(counts[k]), *(_rate(r.parents.by_kind.get(k)) for r in reports)] for k in kinds]
    lines += _table(["kind", "n", *names], rows)
    rels = [rel for rel in RELATIONS if any(t.relation == rel for t in truth.models.values())]
    lines += ["", "### Detection rate by relation (right parent and right relation)", ""]
    rows = [[rel, *(_rate(r.detection.get(rel)) for r in reports)] for rel in rels]
    lines += _table(["relation", *names], rows)
    scored = [(r.name, r.anomalies) for r in reports if r.anomalies is not None]
    if scored:
        kinds = sorted({k for _, a in scored for k in a if k != "all"}, key=_kind_order)
        truth_counts = Counter(k for _, k in truth.anomalies)
        lines += ["", "### Anomalies: precision / recall by kind", ""]
        rows = [
            [k, str(truth_counts[k]),
             *(f"{_pct(a[k].precision)} / {_pct(a[k].recall)}" if k in a else "n/a" for _, a in scored)]
            for k in kinds
        ]  # fmt: skip
        lines += _table(["kind", "n", *(name for name, _ in scored)], rows)
    aucs = [(r.name, r.pairs) for r in reports if r.pairs is not None]
    if aucs:
        counts_text = "; ".join(
            f"{name}: {p.n_related} related, {p.n_unrelated} unrelated" for name, p in aucs
        )
        lines += ["", f"Pair AUC counts same-architecture pairs only ({counts_text})."]
    return "\n".join(lines) + "\n"
