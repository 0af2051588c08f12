"""The row/column pattern of a window explains shared positions between unrelated models; the
pair test asks only for what it does not explain (trained RoPE q/k, position embeddings)."""

import numpy as np

from fingerprint.comparison import compare, compare_slot
from fingerprint.signature import Signature, SignatureParams, SlotSignature
from fingerprint.structure import effective_population, window_grid

ROWS, COLS, K = 256, 256, 512
N = ROWS * COLS


def _slot(name: str, positions: np.ndarray, rows: int = ROWS, cols: int = COLS) -> SlotSignature:
    return SlotSignature(
        key=f"{name}|{cols}|{rows * cols}", tensor=name, dtype="F32", shape=(rows, cols),
        n=rows * cols, positions=np.sort(positions).astype(np.uint32),
        identity=np.zeros(0, np.uint64), mean=0.0, std=0.02, kurtosis=3.0, absmax=0.1,
        distinct=0.99, digest=np.sort(positions).astype(np.uint32).tobytes()[:16],
    )  # fmt: skip


def _rowed(rng: np.random.Generator, hot: np.ndarray) -> np.ndarray:
    """k positions, 90% of them in the `hot` rows (a model whose large-scale rows hold its
    extremes), the rest anywhere."""
    cells = (hot[:, None] * COLS + np.arange(COLS)).ravel()
    inside = rng.choice(cells, int(0.9 * K), replace=False)
    rest = np.setdiff1d(rng.choice(N, 2 * K, replace=False), inside)[: K - inside.size]
    return np.concatenate([inside, rest])


def test_the_grid_of_a_window():
    assert window_grid(_slot("w", np.arange(K))) == (ROWS, COLS)
    assert window_grid(_slot("w", np.arange(K), rows=1, cols=N)) == (1, N)


def test_unrelated_windows_sharing_hot_rows_are_explained_by_them():
    rng = np.random.default_rng(0)
    hot = rng.choice(ROWS, 16, replace=False)  # the same rows are large in every model
    a, b = _slot("q", _rowed(rng, hot)), _slot("q", _rowed(rng, hot))
    s = compare_slot(a, b, K, 256)
    assert s.shared > 30  # ~13x the 4 expected under exchangeable positions
    assert K * K / s.population > 0.7 * s.shared  # the pattern's population expects about that
    assert s.p_value > 1e-3


def test_a_related_window_keeps_its_evidence():
    rng = np.random.default_rng(1)
    hot = rng.choice(ROWS, 16, replace=False)
    pa = _rowed(rng, hot)
    pb = np.concatenate([pa[:400], np.setdiff1d(_rowed(rng, hot), pa)[: K - 400]])
    s = compare_slot(_slot("q", pa), _slot("q", pb), K, 256)
    assert s.shared >= 400
    assert K * K / s.population < 0.15 * s.shared
    assert s.p_value == 0.0  # below 1e-300


def test_a_single_row_window_has_no_pattern_to_explain():
    rng = np.random.default_rng(2)
    pa = rng.choice(N, K, replace=False)
    a = _slot("w", pa, rows=1, cols=N)
    assert effective_population(a, a) == N


def test_unrelated_models_structured_in_every_layer_are_not_derived():
    # trained rotary q/k put their extremes in the same rows in every layer, whatever the init
    rng = np.random.default_rng(3)
    hot = rng.choice(ROWS, 16, replace=False)
    names = [f"layers.{i}.self_attn.{m}_proj.weight" for i in range(6) for m in "qk"]
    params = SignatureParams()
    a = Signature(params, tuple(_slot(n, _rowed(rng, hot)) for n in names), model_id="a")
    b = Signature(params, tuple(_slot(n, _rowed(rng, hot)) for n in names), model_id="b")
    r = compare(a, b)
    assert sum(s.shared for s in r.per_slot) > 4 * sum(K * K / N for _ in names)
    assert r.verdict == "unrelated"
    assert r.p_value > 1e-4


def test_unstructured_windows_keep_their_population():
    rng = np.random.default_rng(4)
    a, b = (_slot("w", rng.choice(N, K, replace=False)) for _ in range(2))
    assert effective_population(a, b) == N
