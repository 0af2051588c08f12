"""Records of the recovered lineage: nodes, edges, anomalies, and the graph that holds them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # reading a stored graph must not import pandas: the frames import it lazily
    import pandas as pd

RELATIONS = ("finetune", "adapter", "partial", "copy", "quantized", "merge")
# how an edge's direction was decided: by evidence other than a tie-breaker, or a guess
DIRECTIONS = ("evidence", "unknown")


@dataclass(frozen=True, slots=True)
class Edge:
    """A recovered parent -> child link with its evidence.

    `direction` says whether evidence put the parent first ("evidence", the rows named in
    `direction_by`) or nothing did and the direction was a guess ("unknown", the default: an
    edge built without that knowledge claims none).
    """

    parent: str
    child: str
    overlap: float
    identity: float
    p_value: float
    log10_p: float
    confidence: float
    score: float
    relation: str
    slots_compared: int
    identical_slots: int = 0
    direction: str = "unknown"
    direction_by: tuple[str, ...] = ()
    # what differs in structure between the two (the pair's `changes`): "vocabulary extended",
    # layers dropped or matched by content
    notes: tuple[str, ...] = ()
    # the child's file format or quantization as read (`gguf:Q4_K_M`, `gptq:4bit-g128`,
    # `onnx:fp32`); "" for safetensors floats
    method: str = ""


@dataclass(frozen=True, slots=True)
class Cousin:
    """Two models that share tensors outside their blocks (embeddings, head) and nothing
    inside them: related through a common source the store may not hold, neither derived from
    the other. An undirected link; `a` < `b`.
    """

    a: str
    b: str
    overlap: float
    p_value: float
    shared: tuple[str, ...]

    def to_dict(self) -> dict:
        return asdict(self) | {"shared": list(self.shared)}


@dataclass(frozen=True, slots=True)
class Node:
    """One model in the recovered forest. `parent` is the main parent (None for a root);
    `parents` lists both for a merge."""

    id: str
    family: str
    parent: str | None
    parents: tuple[str, ...]
    relation: str | None
    confidence: float
    downloads: int
    created_at: str | None
    declared_base: tuple[str, ...]
    anomalies: tuple[str, ...] = ()
    status: str = "ok"


@dataclass(frozen=True, slots=True)
class Relative:
    """The evidence an anomaly rests on, as fields: its model against one related model."""

    model: str
    verdict: str
    overlap: float
    identity: float
    p_value: float


@dataclass(frozen=True, slots=True)
class Anomaly:
    """Something that does not add up, with how sure we are and why.

    `evidence` says it in words; `relatives` gives the numbers it rests on (the comparison of
    the model with each related model that was compared), for programs.
    """

    model: str
    kind: str
    severity: str
    score: float
    evidence: str
    related: tuple[str, ...] = ()
    relatives: tuple[Relative, ...] = ()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["related"] = list(self.related)
        d["relatives"] = [asdict(r) for r in self.relatives]
        return d

    @staticmethod
    def from_dict(d: dict) -> Anomaly:
        """Inverse of `to_dict`."""
        return Anomaly(
            **{
                **d,
                "related": tuple(d.get("related", ())),
                "relatives": tuple(Relative(**r) for r in d.get("relatives", ())),
            }
        )


@dataclass(frozen=True, slots=True)
class LineageGraph:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    anomalies: tuple[Anomaly, ...]
    params: dict = field(default_factory=dict, hash=False)
    cousins: tuple[Cousin, ...] = ()

    def to_json(self, family: str | None = None) -> dict:
        """The `tree --format json` contract (DESIGN.md), optionally one family only."""
        nodes = [n for n in self.nodes if family is None or n.family == family]
        keep = {n.id for n in nodes}
        out_nodes = []
        for n in nodes:
            d = asdict(n)
            d["parents"] = list(n.parents)
            d["declared_base"] = list(n.declared_base)
            d["anomalies"] = list(n.anomalies)
            out_nodes.append(d)
        edges = [
            asdict(e) | {"direction_by": list(e.direction_by), "notes": list(e.notes)}
            for e in self.edges
            if e.child in keep
        ]
        cousins = [c.to_dict() for c in self.cousins if c.a in keep or c.b in keep]
        return {
            "nodes": out_nodes,
            "edges": edges,
            "cousins": cousins,
            "params": dict(self.params),
        }

    def to_dict(self) -> dict:
        """Everything the graph holds, as JSON-ready data (`from_dict` reads it back)."""
        return {
            "nodes": [asdict(n) for n in self.nodes],
            "edges": [asdict(e) for e in self.edges],
            "anomalies": [a.to_dict() for a in self.anomalies],
            "params": dict(self.params),
            "cousins": [c.to_dict() for c in self.cousins],
        }

    @staticmethod
    def from_dict(d: dict) -> LineageGraph:
        """Inverse of `to_dict` (lists become the records' tuples again)."""

        def tuples(record: dict, *names: str) -> dict:
            return {**record, **{n: tuple(record[n]) for n in names if n in record}}

        return LineageGraph(
            nodes=tuple(
                Node(**tuples(n, "parents", "declared_base", "anomalies")) for n in d["nodes"]
            ),
            edges=tuple(Edge(**tuples(e, "direction_by", "notes")) for e in d["edges"]),
            anomalies=tuple(Anomaly.from_dict(a) for a in d["anomalies"]),
            params=dict(d.get("params", {})),
            cousins=tuple(Cousin(**tuples(c, "shared")) for c in d.get("cousins", ())),
        )

    def nodes_frame(self) -> pd.DataFrame:
        """One row per model of the forest (pandas, imported here only).

        Returns:
            The `Node` fields as columns (id, family, parent, parents, relation, confidence,
            downloads, created_at, declared_base, anomalies, status); parents, declared_base and
            anomalies stay lists. created_at is the stored ISO string (`pd.to_datetime` parses it).
        """
        import pandas as pd

        columns = [f.name for f in fields(Node)]
        rows = [_listed(asdict(n)) for n in self.nodes]
        return pd.DataFrame(rows, columns=columns)

    def edges_frame(self) -> pd.DataFrame:
        """One row per recovered parent -> child edge (pandas, imported here only).

        A merge has one row per parent. Returns the `Edge` fields as columns (parent, child,
        overlap, identity, p_value, log10_p, confidence, score, relation, slots_compared,
        identical_slots, direction, direction_by, notes, method); direction_by and notes stay
        lists.
        """
        import pandas as pd

        columns = [f.name for f in fields(Edge)]
        return pd.DataFrame([_listed(asdict(e)) for e in self.edges], columns=columns)

    def anomalies_frame(self) -> pd.DataFrame:
        """One row per anomaly, most severe first as stored (pandas, imported here only).

        Returns:
            Columns model, kind, severity, score, evidence, related (a list), relatives (a list
            of dicts: model, verdict, overlap, identity, p_value), n_relatives, and the first
            relative flattened: relative_model, relative_verdict, relative_overlap,
            relative_identity, relative_p_value (None / NaN without one). The first relative is
            the one the rule names first: for most rules the only one.
        """
        import pandas as pd

        flat = [f"relative_{f.name}" for f in fields(Relative)]
        columns = [f.name for f in fields(Anomaly)] + ["n_relatives", *flat]
        rows = []
        for a in self.anomalies:
            d = a.to_dict()
            first = d["relatives"][0] if d["relatives"] else {}
            d["n_relatives"] = len(d["relatives"])
            d.update({f"relative_{k}": first.get(k) for k in (f.name for f in fields(Relative))})
            rows.append(d)
        df = pd.DataFrame(rows, columns=columns)
        for col in ("relative_overlap", "relative_identity", "relative_p_value"):
            df[col] = df[col].astype(float)
        return df.astype({"n_relatives": "int64"})

    def families(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for n in self.nodes:
            out.setdefault(n.family, []).append(n.id)
        return out


def _listed(record: dict[str, Any]) -> dict[str, Any]:
    """A record's dict with its tuples as lists (what a DataFrame cell of a list field holds)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in record.items()}
