"""The zoo is deterministic, and its truth.json is what the generator really did to the weights."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from lineage.lab import zoo_nets as zn
from lineage.lab import zoo_train as zt
from lineage.lab.zoo import generate_zoo
from lineage.lab.zoo_plan import FORMAT_KINDS, PLAN, seed_for
from lineage.lab.zoo_weights import FamilyJob, run_family

SPECS = {s.id: s for s in PLAN}


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _weights(zoo: Path, model_id: str) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for f in sorted((zoo / "repos" / model_id).glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def _truth(zoo: Path) -> dict:
    return json.loads((zoo / "truth.json").read_text())


def _of_kind(zoo: Path, kind: str) -> list[tuple[str, dict]]:
    found = [(m, t) for m, t in _truth(zoo)["models"].items() if t["kind"] == kind]
    assert found, f"the zoo has no {kind} model"
    return found


def _probe(arch: str) -> str:
    return (
        "model.layers.1.self_attn.q_proj.weight"
        if arch == "llama"
        else "transformer.h.1.attn.c_attn.weight"
    )


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return torch.corrcoef(torch.stack([a.float().flatten(), b.float().flatten()]))[0, 1].item()


# --- determinism --------------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files(tiny_zoo, tmp_path):
    again = generate_zoo(tmp_path / "again", size="tiny", seed=0)
    assert _hashes(again.path) == _hashes(tiny_zoo)


def test_bytes_do_not_depend_on_which_process_made_them(tiny_zoo, tmp_path):
    # The fixture generated families in worker interpreters; redo the smallest one in this
    # process (whose torch may run several threads) and compare its files.
    run_family(FamilyJob("lumen-nlp/lumen-gpt", "tiny", 0, str(tmp_path)))
    made = _hashes(tmp_path / "repos")
    assert len(made) == 8  # three models, weights and config each; an ONNX export and its config
    fixture = _hashes(tiny_zoo / "repos")
    assert all(fixture[name] == digest for name, digest in made.items())


def test_refuses_to_overwrite_a_folder_that_is_not_a_zoo(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        generate_zoo(tmp_path, size="tiny", seed=0)
    with pytest.raises(ValueError, match="unknown zoo size"):
        generate_zoo(tmp_path / "new", size="huge")


# --- layout and metadata ------------------------------------------------------------------------


def test_layout_follows_the_contract(tiny_zoo):
    manifest = json.loads((tiny_zoo / "manifest.json").read_text())
    truth = _truth(tiny_zoo)
    ids = [m["id"] for m in manifest["models"]]
    assert 40 <= len(ids) <= 70 and set(ids) == set(truth["models"])
    keys = {"id", "author", "downloads", "downloadsAllTime", "likes", "createdAt", "lastModified", "tags",
            "gated", "pipeline_tag", "library_name"}  # fmt: skip
    for meta in manifest["models"]:
        assert keys <= meta.keys()
        assert meta["createdAt"].endswith("Z") and meta["downloadsAllTime"] >= meta["downloads"]
        repo = tiny_zoo / "repos" / meta["id"]
        if SPECS[meta["id"]].kind in FORMAT_KINDS:  # a GGUF or ONNX upload: checked by its reader
            assert (
                any(repo.glob("*.gguf"))
                or any(repo.glob("*.onnx"))
                or (repo / "config.json").exists()
            )
            continue
        config = json.loads((repo / "config.json").read_text())
        assert config["architectures"] and config["torch_dtype"] and config["vocab_size"]
        index = repo / "model.safetensors.index.json"
        if index.exists():
            weight_map = json.loads(index.read_text())["weight_map"]
            assert set(weight_map) == set(_weights(tiny_zoo, meta["id"]))
            assert len(set(weight_map.values())) > 1
        else:
            assert (repo / "model.safetensors").exists()
    kinds = {t["kind"] for t in truth["models"].values()}
    assert kinds == {"root", "finetune", "chain", "lora", "partial", "cast", "quant_int8", "quant_4bit",
                     "merge", "reupload", "vocab_ext", "disguised", *FORMAT_KINDS}  # fmt: skip
    assert {t["arch"] for t in truth["models"].values()} == {"llama", "gpt2"}
    assert sum(t["kind"] == "root" and t["arch"] == "llama" for t in truth["models"].values()) >= 3


def test_tensor_names_are_hugging_face_names(tiny_zoo):
    llama = _weights(tiny_zoo, "aurora-labs/Aurora-Base")
    for name in ("model.embed_tokens.weight", "model.layers.3.self_attn.o_proj.weight",
                 "model.layers.0.mlp.gate_proj.weight", "model.layers.0.input_layernorm.weight",
                 "model.norm.weight", "lm_head.weight"):  # fmt: skip
        assert name in llama
    assert llama["model.layers.0.self_attn.q_proj.weight"].numel() >= 16384
    assert "lm_head.weight" not in _weights(tiny_zoo, "cobalt-ai/Cobalt-LM")  # tied head
    gpt2 = _weights(tiny_zoo, "opencraft/craft-gpt")
    assert {"transformer.wte.weight", "transformer.h.0.attn.c_attn.weight"} <= gpt2.keys()


def test_cards_and_tags_agree_with_the_truth(tiny_zoo):
    manifest = {m["id"]: m for m in json.loads((tiny_zoo / "manifest.json").read_text())["models"]}
    for mid, spec in SPECS.items():
        text = (tiny_zoo / "repos" / mid / "README.md").read_text()
        front = yaml.safe_load(text.split("---")[1])
        base = front.get("base_model") or []
        declared = [base] if isinstance(base, str) else base
        tag_bases = [t.split(":")[-1] for t in manifest[mid]["tags"] if t.startswith("base_model:")]
        assert set(declared) == set(tag_bases), mid
        relation = front.get("base_model_relation")
        if relation:
            assert all(f"base_model:{relation}:{d}" in manifest[mid]["tags"] for d in declared)
        if spec.declares is None:
            assert set(declared) == set(spec.parents)


def test_dates_follow_lineage_with_two_seeded_exceptions(tiny_zoo):
    created = {
        m["id"]: m["createdAt"]
        for m in json.loads((tiny_zoo / "manifest.json").read_text())["models"]
    }
    early = [
        mid
        for mid, t in _truth(tiny_zoo)["models"].items()
        if any(created[p] > created[mid] for p in t["parents"])
    ]
    assert sorted(early) == sorted(s.id for s in PLAN if s.before_parent)
    assert 1 <= len(early) <= 2


def test_downloads_are_heavy_tailed(tiny_zoo):
    manifest = json.loads((tiny_zoo / "manifest.json").read_text())["models"]
    roots = {m for m, t in _truth(tiny_zoo)["models"].items() if t["kind"] == "root"}
    base = sorted(m["downloads"] for m in manifest if m["id"] in roots)
    derived = sorted(m["downloads"] for m in manifest if m["id"] not in roots)
    assert base[0] > 1000
    assert derived[len(derived) // 2] < 10  # most derivatives are barely downloaded
    assert derived[-1] > 100


def test_truth_lists_the_injected_anomalies(tiny_zoo):
    anomalies = {(a["model"], a["kind"]) for a in _truth(tiny_zoo)["anomalies"]}
    kinds = {k for _, k in anomalies}
    assert kinds == {"declared_base_mismatch", "missing_base", "reupload", "suspicious_copy", "mislabeled",
                     "undeclared_merge"}  # fmt: skip
    assert ("ridge-ai/Cobalt-Math", "mislabeled") in anomalies  # foreign base, >100 downloads
    assert ("amber-ai/Meridian-Story", "declared_base_mismatch") in anomalies
    assert ("amber-ai/Meridian-Story", "mislabeled") not in anomalies  # only 20 downloads
    assert ("sable-ml/Cobalt-Blend", "undeclared_merge") in anomalies
    for mid, t in _truth(tiny_zoo)["models"].items():
        if t["kind"] == "reupload":
            assert (mid, "reupload") in anomalies
        if t["kind"] != "root" and SPECS[mid].declares == ():
            assert (mid, "missing_base") in anomalies


# --- the weights really come from the declared-in-truth parents -----------------------------------


def test_every_derivative_is_closest_to_its_true_parent(tiny_zoo):
    truth = _truth(tiny_zoo)["models"]
    cache: dict[str, dict[str, torch.Tensor]] = {}

    def w(mid):
        if mid not in cache:
            cache[mid] = _weights(tiny_zoo, mid)
        return cache[mid]

    for mid, t in truth.items():
        if t["kind"] == "root" or t["kind"] in FORMAT_KINDS:  # packed files: see the evaluation
            continue
        probe = _probe(t["arch"])
        for parent in t["parents"]:
            near = _corr(w(mid)[probe], w(parent)[probe])
            assert near > 0.5, (mid, parent, near)  # the aggressive fine-tune keeps ~0.8
            others = [
                r
                for r, o in truth.items()
                if o["kind"] == "root" and o["arch"] == t["arch"] and r != t["family"]
            ]
            assert all(abs(_corr(w(mid)[probe], w(r)[probe])) < near - 0.4 for r in others), mid


def test_bases_were_really_trained(tiny_zoo):
    # A trained base predicts its own training process far better than chance (ln 1024 = 6.9).
    import torch.nn.functional as F

    arch = zn.Arch("llama", 128, 4, 1024, 512, 4)
    base = _weights(tiny_zoo, "aurora-labs/Aurora-Base")
    source = zt.markov_source(arch.vocab, seed_for(0, "aurora-labs/Aurora-Base", "data"))
    tokens = zt.sample_tokens(source, 16, 32, zn.generator(12345))
    with torch.no_grad():
        logits = zn.forward(arch, base, tokens[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, arch.vocab), tokens[:, 1:].reshape(-1)).item()
    assert loss < 4.0  # about 2.8 after the 60 steps; chance is 6.9


def test_reuploads_are_byte_identical_files(tiny_zoo):
    for mid, t in _of_kind(tiny_zoo, "reupload"):
        mine = {p.name: p.read_bytes() for p in (tiny_zoo / "repos" / mid).glob("*.safetensors")}
        theirs = {
            p.name: p.read_bytes()
            for p in (tiny_zoo / "repos" / t["parents"][0]).glob("*.safetensors")
        }
        assert mine == theirs and mine


def test_partial_finetunes_keep_frozen_layers_byte_identical(tiny_zoo):
    for mid, t in _of_kind(tiny_zoo, "partial"):
        child, parent = _weights(tiny_zoo, mid), _weights(tiny_zoo, t["parents"][0])
        trained = set(SPECS[mid].train_layers)
        for name, tensor in child.items():
            same = torch.equal(tensor, parent[name])
            if zt.layer_index(name) in trained and tensor.ndim == 2:
                assert not same, name
            elif zt.layer_index(name) not in trained:
                assert same, name


def test_casts_equal_the_parent_to_dtype_precision(tiny_zoo):
    for mid, t in _of_kind(tiny_zoo, "cast"):
        child, parent = _weights(tiny_zoo, mid), _weights(tiny_zoo, t["parents"][0])
        want = getattr(torch, SPECS[mid].dtype)
        for name, tensor in child.items():
            assert tensor.dtype == want
            assert torch.equal(tensor, parent[name].to(want))


def test_quantization_round_trips_stay_within_half_a_step(tiny_zoo):
    for kind, group, levels in (("quant_int8", None, 127.0), ("quant_4bit", 64, 7.0)):
        for mid, t in _of_kind(tiny_zoo, kind):
            child, parent = _weights(tiny_zoo, mid), _weights(tiny_zoo, t["parents"][0])
            name = _probe(t["arch"]).replace("q_proj", "k_proj")
            p, c = parent[name].float(), child[name].float()
            blocks = p.reshape(p.shape[0], -1, group or p.shape[1])
            step = blocks.abs().amax(dim=2, keepdim=True) / levels
            err = (c.reshape(blocks.shape) - blocks).abs()
            assert (err <= step / 2 + 1e-3 * blocks.abs() + 1e-7).all(), mid
            assert not torch.equal(c, p)  # it really was rounded
            distinct_per_row = torch.tensor([len(torch.unique(r)) for r in c])
            assert distinct_per_row.max() <= (255 if group is None else 16 * p.shape[1] // group)


def test_merges_are_the_weighted_average_of_their_parents(tiny_zoo):
    for mid, t in _of_kind(tiny_zoo, "merge"):
        child = _weights(tiny_zoo, mid)
        a, b = (_weights(tiny_zoo, p) for p in t["parents"])
        w = SPECS[mid].merge_weight
        for name, tensor in child.items():
            torch.testing.assert_close(tensor, w * a[name] + (1 - w) * b[name], rtol=0, atol=1e-6)


def test_lora_merges_a_low_rank_update_into_its_targets_only(tiny_zoo):
    for mid, t in _of_kind(tiny_zoo, "lora"):
        child, parent = _weights(tiny_zoo, mid), _weights(tiny_zoo, t["parents"][0])
        spec = SPECS[mid]
        targets = set(
            zt.lora_targets(
                zn.Arch(t["arch"], 1, 4 if t["arch"] == "llama" else 3, 1, 1, 1), spec.lora
            )
        )
        assert targets <= child.keys()
        for name in sorted(targets)[:3]:  # the rank check is an SVD: a few targets are enough
            delta = (child[name] - parent[name]).double()
            assert 0 < torch.linalg.matrix_rank(delta, rtol=1e-4) <= spec.rank, name
        for name in child.keys() - targets:
            assert torch.equal(child[name], parent[name]), name


def test_vocab_extensions_grow_embedding_and_head(tiny_zoo):
    for mid, t in _of_kind(tiny_zoo, "vocab_ext"):
        child, parent = _weights(tiny_zoo, mid), _weights(tiny_zoo, t["parents"][0])
        config = json.loads((tiny_zoo / "repos" / mid / "config.json").read_text())
        for name in ("model.embed_tokens.weight", "lm_head.weight"):
            assert child[name].shape[0] == parent[name].shape[0] + 8 == config["vocab_size"]
            assert _corr(child[name][:-8], parent[name]) > 0.9


def test_disguised_copies_are_noisy_or_pruned_copies(tiny_zoo):
    for mid, t in _of_kind(tiny_zoo, "disguised"):
        child, parent = _weights(tiny_zoo, mid), _weights(tiny_zoo, t["parents"][0])
        matrix = child[_probe(t["arch"])]
        original = parent[_probe(t["arch"])]
        if SPECS[mid].method == "prune":
            zeros = (matrix == 0).float().mean().item()
            assert 0.09 < zeros < 0.12
            kept = matrix != 0
            assert torch.equal(matrix[kept], original[kept])
        else:
            rel = ((matrix - original).norm() / original.norm()).item()
            assert 0.001 < rel < 0.05


def test_a_model_added_to_the_plan_leaves_the_others_metadata_alone():
    from lineage.lab.zoo_meta import metadata

    # a leaf early in the plan (nothing derives from it): the plan without it, and with it
    leaf = next(s for s in PLAN[3:] if not any(s.id in t.parents for t in PLAN))
    smaller = tuple(s for s in PLAN if s is not leaf)
    before, after = metadata(smaller, 0), metadata(PLAN, 0)
    assert set(after) == set(before) | {leaf.id}
    assert all(after[m] == before[m] for m in before)
