"""Adapter-only repos linked to their declared base (`lineage.adapter_links`), with real
adapters trained by `lineage.lab.adapters` on a tiny Llama-style base: two siblings (same data,
other init and batch order), one on other data, one random; written as PEFT folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hub.local import open_local_model
from lineage.adapter_links import (
    SIBLING_LIFT,
    AdapterFinding,
    AdapterLink,
    adapter_links,
    check_adapter,
    declared_base,
    resolve_base,
)
from lineage.lab import adapters as lab
from lineage.lab.zoo_nets import Arch, deterministic, generator, init_params
from lineage.lab.zoo_train import TrainSettings

BASE = "zoo/base-0"
# short training: siblings still lift about 0.32 over the random baseline, other data 0.06
BASE_STEPS, ADAPTER_STEPS = 40, 100


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapters")
    settings = TrainSettings(steps=ADAPTER_STEPS, lr=3e-3)
    with deterministic():
        base = lab.train_base(lab.ARCH, 0, TrainSettings(steps=BASE_STEPS, lr=3e-3))
        made = {
            "sib1": lab.train_lora(lab.ARCH, base, settings, data_seed=20_000, init_seed=0),
            "sib2": lab.train_lora(lab.ARCH, base, settings, data_seed=20_000, init_seed=50),
            "other": lab.train_lora(lab.ARCH, base, settings, data_seed=30_000, init_seed=70),
        }
        wide = init_params(Arch("llama", 96, 2, 256, 192, 4), generator(5))
    out = {
        "base": lab.write_model(root / "base", base),
        "wide": lab.write_model(root / "wide", wide),
    }
    for name, factors in made.items():
        out[name] = lab.write_peft_adapter(root / name, factors, base_model=BASE)
    # the random adapter of the experiment: Gaussian factors, an update far larger than the weights
    out["random"] = lab.write_peft_adapter(
        root / "random", lab.random_lora(lab.ARCH, base, 90), base_model=BASE
    )
    out["wrong"] = lab.write_peft_adapter(root / "wrong", made["sib1"], base_model="zoo/wide")
    out["undeclared"] = lab.write_peft_adapter(root / "undeclared", made["sib1"], base_model="")
    out["elsewhere"] = lab.write_peft_adapter(
        root / "elsewhere", made["sib1"], base_model="org/absent"
    )
    return out


IDS = {"base": BASE, "wide": "zoo/wide"}


def _records(zoo: dict[str, Path], names) -> dict:
    recs = {}
    for name in names:
        mid = IDS.get(name, f"zoo/{name}")
        recs[mid] = open_local_model(zoo[name], model_id=mid).record
    return recs


def _open(rec):
    return open_local_model(rec.path, model_id=rec.id)


def test_declared_base_and_resolution(zoo):
    rec = open_local_model(zoo["sib1"], model_id="zoo/sib1").record
    assert rec.extra["adapter"] and declared_base(rec) == BASE
    assert declared_base(open_local_model(zoo["undeclared"], model_id="u").record) is None
    ids = {"meta-llama/Llama-2-7b-hf", "zoo/base-0"}
    assert resolve_base("zoo/base-0", ids) == "zoo/base-0"
    assert resolve_base("/home/me/hf/meta-llama/Llama-2-7b-hf", ids) == "meta-llama/Llama-2-7b-hf"
    assert resolve_base("./Llama-2-7b-hf", ids) is None  # the last component alone names nothing
    assert resolve_base("other/Llama-2-7b-hf", ids) is None


def test_adapters_link_to_their_declared_base_and_siblings_are_noted(zoo):
    recs = _records(zoo, ["base", "sib1", "sib2", "other", "random"])
    links = adapter_links(recs, _open)
    edges = {e.adapter: e for e in links.edges}
    assert set(edges) == {"zoo/sib1", "zoo/sib2", "zoo/other"}
    for e in edges.values():
        assert (e.base, e.relation, e.method) == (BASE, "adapter", "lora:r4")
        assert e.pair.verdict in ("derived", "identical") and e.pair.slots_compared == 4
        assert e.update_norm > 0
        assert e.evidence[0] == "declared base"
    # the random adapter's update swamps the base: not an update of it, no edge
    (finding,) = links.findings
    assert (finding.adapter, finding.kind) == ("zoo/random", "adapter_not_an_update")
    # siblings (same data) noted; the adapter on other data is not a sibling of either
    assert [(s.a, s.b) for s in links.siblings] == [("zoo/sib1", "zoo/sib2")]
    note = links.siblings[0]
    assert note.base == BASE and note.lift >= SIBLING_LIFT and note.similarity > note.baseline


def test_a_base_whose_shapes_do_not_fit_is_a_finding(zoo):
    recs = _records(zoo, ["base", "wide", "wrong"])
    links = adapter_links(recs, _open)
    assert links.edges == () and links.siblings == ()
    (f,) = links.findings
    assert (f.adapter, f.kind, f.declared) == ("zoo/wrong", "adapter_base_mismatch", "zoo/wide")
    assert "4 of 4 adapted modules do not fit" in f.evidence and "[64, 64]" in f.evidence


def test_no_edge_without_a_declared_base_in_the_store(zoo):
    """A base of the right shapes is in the store, but the adapter names none (or another):
    shapes alone, shared by every model of the architecture, never make an edge."""
    recs = _records(zoo, ["base", "undeclared", "elsewhere"])
    links = adapter_links(recs, _open)
    assert links.edges == ()
    kinds = {f.adapter: f.kind for f in links.findings}
    assert kinds == {"zoo/undeclared": "adapter_no_base", "zoo/elsewhere": "adapter_base_missing"}


def test_the_update_is_applied_to_the_signature_windows(zoo):
    """check_adapter applies (alpha / r) B @ A to the base's first rows: a rank-r change of
    them, so the patched windows differ from the base's by the adapter's update exactly."""
    adapter = open_local_model(zoo["sib1"], model_id="zoo/sib1")
    base = open_local_model(zoo["base"], model_id=BASE)
    link = check_adapter(adapter, base)
    assert isinstance(link, AdapterLink)
    cfg = json.loads((zoo["sib1"] / "adapter_config.json").read_text())
    scale = cfg["lora_alpha"] / cfg["r"]
    from safetensors.torch import load_file

    t = load_file(zoo["sib1"] / "adapter_model.safetensors")
    w = load_file(zoo["base"] / "model.safetensors")
    num = den = 0.0
    for name in sorted(w):
        key = f"base_model.model.{name.removesuffix('.weight')}"
        if key + ".lora_A.weight" in t:
            d = scale * (t[key + ".lora_B.weight"] @ t[key + ".lora_A.weight"])
            num += float((d.double() ** 2).sum())
            den += float((w[name].double() ** 2).sum())
    assert link.update_norm == pytest.approx(np.sqrt(num / den), rel=1e-4)


def test_a_finding_names_the_modules(zoo):
    adapter = open_local_model(zoo["wrong"], model_id="zoo/wrong")
    found = check_adapter(adapter, open_local_model(zoo["wide"], model_id="zoo/wide"))
    assert isinstance(found, AdapterFinding)
    assert "layers.0.self_attn.q_proj: update [64, 64], base [96, 96]" in found.evidence


def test_a_zero_update_still_links(zoo, tmp_path):
    """PEFT's init (B = 0) adds nothing: the windows equal the base's, still its adapter."""
    a = torch.zeros(4, 64)
    factors = {
        f"model.layers.{i}.self_attn.{m}.weight": (a + 0.1, torch.zeros(64, 4))
        for i in range(2)
        for m in ("q_proj", "v_proj")
    }
    folder = lab.write_peft_adapter(tmp_path / "init", factors, base_model=BASE)
    link = check_adapter(
        open_local_model(folder, model_id="zoo/init"), open_local_model(zoo["base"], model_id=BASE)
    )
    assert isinstance(link, AdapterLink) and link.update_norm == 0.0


def test_linked_adapters_sit_under_their_base_in_the_graph(zoo, tmp_path):
    """Carded adapters (base_model: the base, relation adapter) are roots in the graph the
    weights give, and not accused for it (their factors share no weight with any base);
    placed by `with_adapter_links` before the anomaly rules, they are the base's children with
    no anomaly, and the findings that accuse reach the rules."""
    import shutil

    from fingerprint.signature import compute_signature
    from lineage.adapter_graph import with_adapter_links
    from lineage.anomalies import find_anomalies
    from lineage.graph import GraphParams, build_graph
    from tests.hub_helpers import card

    folders = {"base": zoo["base"]}
    for name in ("sib1", "sib2", "random"):
        folders[name] = tmp_path / name
        shutil.copytree(zoo[name], folders[name])
        (folders[name] / "README.md").write_text(card([BASE], "adapter"))
    recs = _records(folders, folders)
    sigs = {m: compute_signature(_open(r), device="cpu") for m, r in recs.items()}
    params = GraphParams()
    before = build_graph(recs, sigs, params=params, device="cpu")
    roots = {n.id for n in before.nodes if n.parent is None}
    assert {"zoo/sib1", "zoo/sib2"} <= roots
    assert not {a.model for a in before.anomalies if a.kind == "declared_base_mismatch"} & {
        "zoo/sib1",
        "zoo/sib2",
    }
    links = adapter_links(recs, _open)
    graph = with_adapter_links(before, recs, links, params.confidence)
    nodes = {n.id: n for n in graph.nodes}
    for child in ("zoo/sib1", "zoo/sib2"):
        assert (nodes[child].parent, nodes[child].relation) == (BASE, "adapter")
        assert nodes[child].family == nodes[BASE].family
    (edge,) = [e for e in graph.edges if e.child == "zoo/sib1"]
    assert (edge.parent, edge.relation, edge.method, edge.direction) == (
        BASE,
        "adapter",
        "lora:r4",
        "evidence",
    )
    assert nodes["zoo/random"].parent is None  # not an update of the base: no edge
    assert graph.params["adapter_siblings"][0]["a"] == "zoo/sib1"
    found = find_anomalies(graph, recs, [], {}, links.findings)
    kinds = {(a.model, a.kind) for a in found}
    assert (
        not {("zoo/sib1", "declared_base_mismatch"), ("zoo/sib2", "declared_base_mismatch")} & kinds
    )
    assert ("zoo/random", "adapter_not_an_update") in kinds
    json = graph.to_json()
    assert any(e["relation"] == "adapter" and e["method"] == "lora:r4" for e in json["edges"])
