"""Layers matched by content: pruned and up-scaled depth meet their source layer by layer,
unrelated models keep the match by number."""

import numpy as np

from fingerprint.alignment import match_slots, split_key
from fingerprint.comparison import compare
from fingerprint.signature import Signature, SignatureParams, SlotSignature

N, K = 65536, 512
ROLES = ("attn.q", "attn.k", "mlp.up", "mlp.down")


def _slot(name: str, positions: np.ndarray) -> SlotSignature:
    return SlotSignature(
        key=f"{name}|{N}",
        tensor=name,
        dtype="F32",
        shape=(N // 256, 256),
        n=N,
        positions=np.sort(positions).astype(np.uint32),
        identity=np.zeros(0, dtype=np.uint64),
        mean=0.0,
        std=0.02,
        kurtosis=3.0,
        absmax=0.1,
        distinct=0.99,
        digest=name.encode()[:16].ljust(16, b"\0"),
    )


def _layers(rng: np.random.Generator, depth: int) -> list[dict[str, np.ndarray]]:
    return [{r: rng.choice(N, K, replace=False) for r in ROLES} for _ in range(depth)]


def _nudge(pos: np.ndarray, rng: np.random.Generator, keep: int = 400) -> np.ndarray:
    """A fine-tuned copy's bottom-k: `keep` positions kept, the rest new."""
    fresh = np.setdiff1d(rng.choice(N, 4 * K, replace=False), pos)[: K - keep]
    return np.concatenate([rng.permutation(pos)[:keep], fresh])


def _sig(mid: str, layers: list[dict[str, np.ndarray]], embed: np.ndarray) -> Signature:
    slots = [_slot("embed_tokens.weight", embed)]
    slots += [_slot(f"layers.{i}.{r}.weight", p[r]) for i, p in enumerate(layers) for r in ROLES]
    return Signature(SignatureParams(), tuple(slots), model_id=mid)


def test_split_key_finds_the_first_numbered_block():
    assert split_key("layers.3.mlp.experts.7.w1|256|65536") == (
        "layers.*.mlp.experts.7.w1|256|65536",
        3,
    )
    assert split_key("encoder.layer.10.attention.self.query.weight|384|98304") == (
        "encoder.layer.*.attention.self.query.weight|384|98304",
        10,
    )
    assert split_key("embed_tokens.weight|256|65536") is None


def test_a_pruned_model_meets_its_parent_layer_by_layer():
    rng = np.random.default_rng(0)
    parent_layers, embed = _layers(rng, 6), rng.choice(N, K, replace=False)
    kept = (0, 2, 3, 5)
    child_layers = [{r: _nudge(parent_layers[i][r], rng) for r in ROLES} for i in kept]
    parent = _sig("parent", parent_layers, embed)
    child = _sig("child", child_layers, _nudge(embed, rng))
    r = compare(parent, child)
    assert r.layer_map == tuple((i, j) for j, i in enumerate(kept))
    assert r.verdict == "derived"
    assert r.overlap_min > 0.6 and r.slots_compared == 1 + len(kept) * len(ROLES)
    assert compare(child, parent).layer_map == tuple(enumerate(kept))


def test_an_upscaled_model_maps_each_source_layer_to_a_copy():
    rng = np.random.default_rng(1)
    src, embed = _layers(rng, 4), rng.choice(N, K, replace=False)
    deep = [src[i] for i in (0, 1, 2, 1, 2, 3)]  # SOLAR-style: the middle layers repeated
    r = compare(_sig("src", src, embed), _sig("deep", deep, embed))
    assert r.layer_map == ((0, 0), (1, 1), (2, 2), (3, 5))
    assert r.overlap_min == 1.0


def test_unrelated_models_of_other_depths_keep_the_match_by_number():
    rng = np.random.default_rng(2)
    a = _sig("a", _layers(rng, 6), rng.choice(N, K, replace=False))
    b = _sig("b", _layers(rng, 3), rng.choice(N, K, replace=False))
    m = match_slots(a, b)
    assert m.layer_map == ()
    assert [sa.key for sa, _ in m.pairs] == [sa.key for sa, sb in m.pairs if sa.key == sb.key]
    assert compare(a, b).verdict == "unrelated"


def test_same_layer_numbers_are_matched_by_number_without_searching():
    rng = np.random.default_rng(3)
    layers = _layers(rng, 3)
    swapped = [layers[1], layers[0], layers[2]]  # same numbers, content moved: not searched
    embed = rng.choice(N, K, replace=False)
    m = match_slots(_sig("a", layers, embed), _sig("b", swapped, embed))
    assert m.layer_map == ()
    assert all(sa.key == sb.key for sa, sb in m.pairs)
