"""The per-role null check: unrelated pairs by family and architecture, and figures that move
when a role is structured."""

import numpy as np

from fingerprint.signature import Signature, SignatureParams, SlotSignature
from lineage.lab.null_check import check, slot_role, table, unrelated_pairs, verdict_table

N, K = 24576, 512
NAMES = ("transformer.wpe.weight",) + tuple(f"transformer.h.{i}.mlp.c_fc.weight" for i in range(8))


def _sig(mid: str, rng: np.random.Generator, wpe: np.ndarray | None = None) -> Signature:
    slots = []
    for name in NAMES:
        pos = wpe if (wpe is not None and "wpe" in name) else rng.choice(N, K, replace=False)
        slots.append(
            SlotSignature(
                key=f"{name}|{N}", tensor=name, dtype="F32", shape=(32, 768), n=N,
                positions=np.sort(pos).astype(np.uint32), identity=np.zeros(0, np.uint64),
                mean=0.0, std=0.02, kurtosis=3.0, absmax=0.1, distinct=0.99,
                digest=mid.encode().ljust(16, b"\0")[:16],
            )
        )  # fmt: skip
    return Signature(SignatureParams(), tuple(slots), model_id=mid)


def test_unrelated_pairs_are_other_families_of_one_architecture():
    families = {"a/1": "a", "a/2": "a", "b/1": "b", "c/1": "c"}
    arch = {"a/1": "gpt2", "a/2": "gpt2", "b/1": "gpt2", "c/1": "llama"}
    assert unrelated_pairs(families, arch) == [("a/1", "b/1"), ("a/2", "b/1")]


def test_roles_split_position_embeddings_from_token_embeddings():
    assert slot_role("transformer.wpe.weight") == "position embedding"
    assert slot_role("bert.embeddings.position_embeddings.weight") == "position embedding"
    assert slot_role("model.embed_tokens.weight") == "token embedding"
    assert slot_role("model.layers.0.mlp.up_proj.weight") == "mlp"


def test_a_structured_role_stands_out_and_an_exchangeable_one_does_not():
    rng = np.random.default_rng(0)
    # every model puts half its position-embedding extremes in the same places
    common = rng.choice(N, K // 2, replace=False)

    def wpe():
        rest = np.setdiff1d(rng.choice(N, 2 * K, replace=False), common)[: K - K // 2]
        return np.concatenate([common, rest])

    sigs = {f"f{i}/m": _sig(f"f{i}/m", rng, wpe()) for i in range(6)}
    pairs = unrelated_pairs({m: m[:2] for m in sigs}, dict.fromkeys(sigs, "gpt2"))
    nc = check(sigs, pairs)
    roles = {r.role: r for r in nc.roles}
    assert nc.pairs == 15
    assert roles["position embedding"].ratio > 10
    assert 0.8 < roles["mlp"].ratio < 1.2
    assert roles["position embedding"].tails[1][0] == 15  # every pair's wpe tail is tiny
    # one structured slot makes neither "derived" nor "cousin" (position tables are alike)
    assert nc.verdicts == {"unrelated": 15}
    assert any("position embedding" in line for line in table([("s", nc)]))
    assert verdict_table([("s", nc)])[-1].startswith("| s | 15 | 0 | 0 |")
