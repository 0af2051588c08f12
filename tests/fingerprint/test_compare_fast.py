"""The vectorized comparison is the slot-by-slot one, to the bit: every count, population,
identity, p-value, verdict and warning, on many random pairs of slots and of models (related,
unrelated, structured rows, ragged and odd windows). Every test runs twice: the layouts' counts
made by numpy, and by the compiled loop (`fingerprint.compare_jit`, skipped without numba)."""

import dataclasses

import numpy as np
import pytest

from fingerprint import slot_layouts
from fingerprint.alignment import match_slots
from fingerprint.comparison import (
    PairResult,
    compare,
    identity_jaccard,
    identity_jaccards,
)
from fingerprint.signature import Signature, SignatureParams, SlotSignature
from fingerprint.slot_counts import slot_counts
from fingerprint.structure import shared_and_population
from lineage.lab.synthetic import synthetic_signatures
from tests.fingerprint.compare_reference import reference_compare


@pytest.fixture(autouse=True)
def _both_paths(counting):
    """Every test here on both counting paths (`counting`, tests/fingerprint/conftest.py)."""
    return counting


def _slot(
    positions: np.ndarray,
    rows: int,
    cols: int,
    *,
    n: int | None = None,
    identity: np.ndarray | None = None,
    key: str = "w|0|0",
    digest: bytes = bytes(16),
) -> SlotSignature:
    return SlotSignature(
        key=key, tensor=key.split("|")[0], dtype="F32", shape=(rows, cols),
        n=rows * cols if n is None else n, positions=np.asarray(positions).astype(np.uint32),
        identity=np.zeros(0, np.uint64) if identity is None else identity, mean=0.0, std=0.02,
        kurtosis=3.0, absmax=0.1, distinct=0.99, digest=digest,
    )  # fmt: skip


# (rows, cols) of the windows drawn: square, wide, one row, one column, odd, two columns
GRIDS = ((256, 256), (64, 1024), (1, 4096), (4096, 1), (3, 7), (512, 2))


def _positions(rng: np.random.Generator, rows: int, cols: int, k: int) -> np.ndarray:
    """k distinct sorted positions: anywhere, or mostly in a few hot rows (a structured
    tensor whose large-scale rows hold its extremes in every model)."""
    n = rows * cols
    if rng.random() < 0.5:
        hot = rng.choice(rows, max(1, rows // 16), replace=False)
        cells = (hot[:, None] * cols + np.arange(cols)).ravel()
        inside = rng.choice(cells, min(k, cells.size), replace=False)
        rest = rng.choice(n, k, replace=False)
        return np.unique(np.concatenate([inside, rest]))[:k] if inside.size < k else inside
    return rng.choice(n, k, replace=False)


def _slot_pairs(
    rng: np.random.Generator, same_k: bool
) -> list[tuple[SlotSignature, SlotSignature]]:
    """A pair of models' matched slots: B keeps a random share of A's positions."""
    pairs = []
    k_all = int(rng.integers(1, 200))
    for _ in range(int(rng.integers(1, 12))):
        rows, cols = GRIDS[rng.integers(len(GRIDS))]
        n = rows * cols
        k = min(k_all if same_k else int(rng.integers(0, 300)), n - 1)
        pa = np.sort(_positions(rng, rows, cols, k))
        kept = pa[rng.random(pa.size) < rng.random()]
        pool = np.arange(n) if n < 4 * k + 64 else rng.integers(0, n, 4 * k + 64)
        fresh = rng.permutation(np.setdiff1d(pool, kept))[: k - kept.size]
        pb = np.sort(np.concatenate([kept, fresh]))
        odd = rng.random()
        if odd < 0.08:  # windows of different sizes: no pattern to read
            pairs.append((_slot(pa, rows, cols), _slot(pb, rows, cols, n=n + 3)))
        elif odd < 0.16:  # a window that is not whole rows
            pairs.append((_slot(pa, rows, cols, n=n + 5), _slot(pb, rows, cols, n=n + 5)))
        else:
            pairs.append((_slot(pa, rows, cols), _slot(pb, rows, cols)))
    return pairs


@pytest.mark.parametrize("same_k", [True, False])
def test_slot_counts_are_the_slot_by_slot_counts(same_k):
    rng = np.random.default_rng(11 if same_k else 12)
    patterned = laid_out = 0
    for _ in range(150):
        pairs = _slot_pairs(rng, same_k)
        expected = [shared_and_population(sa, sb) for sa, sb in pairs]
        shared, population = slot_counts(pairs)
        assert shared == [e[0] for e in expected]
        assert population == [e[1] for e in expected]
        # as two signatures' slots, index by index: each side's layout from the cache
        layouts = (tuple(p[0] for p in pairs), tuple(p[1] for p in pairs))
        assert slot_counts(pairs, layouts=layouts) == (shared, population)
        assert slot_counts(pairs, layouts=layouts) == (shared, population)  # cached
        assert slot_counts(pairs, layouts=layouts[::-1]) == (shared, population)  # not these
        laid_out += all(slot_layouts._prepared(side) is not None for side in layouts)
        patterned += sum(p < sa.n for p, (sa, _) in zip(population, pairs, strict=True))
    assert patterned > 10  # the row pattern's population was tested, not only n
    assert laid_out > 10 or not same_k  # and the cached layouts' path


def test_slot_counts_fall_back_where_they_cannot_vectorize():
    rng = np.random.default_rng(13)
    n = 1 << 18  # two columns: n / 2 rows a slot, more classes than counted densely
    narrow = [(_slot(np.sort(rng.choice(n, 64, replace=False)), n // 2, 2),) * 2 for _ in range(17)]
    unsorted = [(_slot(rng.choice(4096, 50, replace=False), 64, 64),) * 2]
    repeated = [(_slot(np.repeat(np.arange(25), 2), 64, 64), _slot(np.arange(50), 64, 64))]
    for pairs in (narrow, unsorted, repeated, []):
        expected = [shared_and_population(sa, sb) for sa, sb in pairs]
        assert slot_counts(pairs) == ([e[0] for e in expected], [e[1] for e in expected])


def test_identity_jaccards_are_the_plain_estimates():
    rng = np.random.default_rng(14)
    for _ in range(200):
        pairs = []
        for _ in range(int(rng.integers(1, 8))):
            pool = rng.choice(1 << 40, 600, replace=False).astype(np.uint64)
            size = 256 if rng.random() < 0.7 else int(rng.integers(1, 300))
            x = np.sort(rng.choice(pool, size, replace=False))
            y = np.sort(
                rng.choice(pool, 256 if size == 256 else int(rng.integers(0, 300)), replace=False)
            )
            pairs.append((_slot([1], 64, 64, identity=x), _slot([1], 64, 64, identity=y)))
        k = int(rng.choice([1, 100, 256, 400]))
        expected = [identity_jaccard(sa.identity, sb.identity, k) for sa, sb in pairs]
        assert identity_jaccards(tuple(pairs), k) == expected


def _pruned(sig: Signature, keep: int) -> Signature:
    """Every `keep`-th layer of a synthetic signature, renumbered (depth pruning)."""
    slots = [
        dataclasses.replace(s, key=s.key.replace(f"layers.{i * keep}.", f"layers.{i}."))
        for i, s in enumerate(sig.slots[::keep])
    ]
    return Signature(sig.params, tuple(slots), model_id=sig.model_id + "-pruned")


def test_compare_is_the_slot_by_slot_comparison_on_synthetic_models():
    params = SignatureParams(k=64, window=1 << 14)
    sigs, _ = synthetic_signatures(40, 3, params=params, slots=12, seed=5)
    ids = sorted(sigs)
    verdicts = set()
    for i in range(0, 40, 5):
        for j in range(i + 1, 40, 6):
            a, b = sigs[ids[i]], sigs[ids[j]]
            for x, y in ((a, b), (a, _pruned(b, 2))):
                got = compare(x, y)
                assert got == reference_compare(x, y)
                verdicts.add(got.verdict)
    assert {"identical", "unrelated"} <= verdicts  # synthetic windows share digests


def test_compare_is_the_slot_by_slot_comparison_on_structured_models():
    rng = np.random.default_rng(15)
    names = [f"layers.{i}.self_attn.{m}_proj.weight" for i in range(6) for m in "qk"]
    names += ["embed_tokens.weight", "lm_head.weight"]

    def model(base: dict[str, np.ndarray] | None, keep: float) -> dict[str, np.ndarray]:
        out = {}
        for name in names:
            fresh = (
                _positions(rng, 256, 256, 512)
                if name.startswith("layers")
                else rng.choice(1 << 16, 512, replace=False)
            )
            if base is not None:
                kept = base[name][rng.random(512) < keep]
                fresh = np.concatenate([kept, np.setdiff1d(fresh, kept)])[:512]
            out[name] = np.sort(np.unique(fresh))
        return out

    def signature(pos: dict[str, np.ndarray], mid: str) -> Signature:
        ident = {
            n: np.sort(rng.choice(1 << 30, 256, replace=False)).astype(np.uint64) for n in names
        }
        return Signature(
            SignatureParams(),
            tuple(
                _slot(
                    pos[n], 256, 256, key=f"{n}|256|65536", identity=ident[n], digest=mid.encode()
                )
                for n in names
            ),
            model_id=mid,
        )

    root = model(None, 0.0)
    verdicts = set()
    for keep in (0.0, 0.01, 0.05, 0.3, 0.9):
        child = model(root, keep)
        a, b = signature(root, "a"), signature(child, "b")
        got = compare(a, b)
        assert got == reference_compare(a, b)
        verdicts.add(got.verdict)
    assert {"derived", "unrelated"} <= verdicts


def test_to_dict_is_what_asdict_gave():
    sigs, _ = synthetic_signatures(4, 1, params=SignatureParams(k=32, window=4096), slots=5)
    ids = sorted(sigs)
    p = compare(sigs[ids[0]], sigs[ids[1]])
    expected = dataclasses.asdict(p)
    expected["per_slot"] = [dataclasses.asdict(s) for s in p.per_slot]
    expected["warnings"] = list(p.warnings)
    expected["layer_map"] = [list(m) for m in p.layer_map]
    got = p.to_dict()
    assert got == expected and list(got) == list(expected)
    assert PairResult.from_dict(got) == p


def test_slots_of_one_layout_match_as_keys_in_any_order_do():
    rng = np.random.default_rng(16)
    names = [f"model.layers.{i}.mlp.{m}.weight" for i in range(4) for m in ("up", "down")]
    names += ["model.embed_tokens.weight", "lm_head.weight"]

    def signature(mid: str, full: set[str]) -> Signature:
        # a slot whose window is no larger than its positions is not eligible
        slots = tuple(
            _slot(np.arange(64) if n in full else np.sort(rng.choice(4096, 64, replace=False)),
                  64, 64, n=64 if n in full else 4096, key=f"{n}|64|4096")
            for n in names
        )  # fmt: skip
        return Signature(SignatureParams(), slots, model_id=mid)

    for _ in range(40):
        full_a = {n for n in names if rng.random() < 0.2}
        full_b = {n for n in names if rng.random() < 0.2}
        if rng.random() < 0.3:  # a whole layer not eligible on one side: other layer sets
            full_b |= {n for n in names if ".layers.1." in n}
        a, b = signature("a", full_a), signature("b", full_b)
        shuffled = Signature(b.params, tuple(rng.permutation(b.slots)), model_id="b")
        same, any_order = match_slots(a, b), match_slots(a, shuffled)
        assert same.layer_map == any_order.layer_map
        assert [(x.key, y.key) for x, y in same.pairs] == [
            (x.key, y.key) for x, y in any_order.pairs
        ]
        assert all(y is b.slots[names.index(y.key.split("|")[0])] for _, y in same.pairs)
