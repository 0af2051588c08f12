"""Grassmann similarity of low-rank updates: did two children learn the same thing?

Two adapters (or two fine-tunes) of one base each add an update dW to a weight matrix. Where the
updates span the same directions, the children learnt the same thing (seed note 001, RepMatch).
For a subspace U1 and U2 of k orthonormal columns each, the similarity is

    phi(U1, U2) = ||U1^T U2||_F^2 / k  (the mean squared cosine of the principal angles)

1 for the same subspace, 0 for orthogonal ones; random k-dimensional subspaces of R^d give
k / d on average (`random_baseline`): a score means something only next to that baseline.

A LoRA update dW = scale * B @ A (B [out, r], A [r, in]) is never formed: with B = Qb Rb and
A^T = Qa Ra, dW = Qb (Rb Ra^T) Qa^T, and the SVD of the r x r core gives dW's singular vectors
Qb Uc (left: column space, what the update writes) and Qa Vc (right: row space, what it reads).
A dense difference (child - base on one window) is decomposed directly. Pure numpy, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from fingerprint.plan import normalize_name

# Singular values below this fraction of the largest are rounding, not directions of the update
# (a LoRA B still at its zero init, a rank-deficient factor).
RANK_TOL = 1e-6
Factors = Mapping[str, tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True, slots=True)
class Subspaces:
    """The singular subspaces of one update, strongest direction first.

    Attributes:
        left: [out, rank] orthonormal columns spanning the update's column space.
        right: [in, rank] orthonormal columns spanning its row space.
        singular_values: [rank], descending (scale applied).
    """

    left: np.ndarray
    right: np.ndarray
    singular_values: np.ndarray

    @property
    def rank(self) -> int:
        return int(self.singular_values.shape[0])


@dataclass(frozen=True, slots=True)
class ModuleSimilarity:
    """One module both updates touch, compared on its top-k singular subspaces.

    Attributes:
        name: the module's normalized name (`layers.0.self_attn.q_proj`).
        k: directions compared on each side.
        rows, cols: the update's shape (out, in).
        left: phi of the column spaces (output side; LoRA's B).
        right: phi of the row spaces (input side; LoRA's A).
    """

    name: str
    k: int
    rows: int
    cols: int
    left: float
    right: float

    @property
    def baseline(self) -> float:
        """What random updates of this shape give, the two sides averaged."""
        return (random_baseline(self.k, self.rows) + random_baseline(self.k, self.cols)) / 2


@dataclass(frozen=True, slots=True)
class SubspaceResult:
    """Two updates (two adapters, two fine-tunes of one base) compared module by module.

    Every module both touch weighs the same in the means. `similarity` is the mean of the
    left and right means; `baseline` is what two random updates of the same shapes give.

    Attributes:
        modules: per module, in name order.
        only_a, only_b: modules one side updates and the other does not.
        skipped: modules both touch that were not compared, with the reason ("name: why").
    """

    modules: tuple[ModuleSimilarity, ...]
    only_a: int = 0
    only_b: int = 0
    skipped: tuple[str, ...] = ()

    @property
    def modules_compared(self) -> int:
        return len(self.modules)

    @property
    def left(self) -> float:
        return _mean([m.left for m in self.modules])

    @property
    def right(self) -> float:
        return _mean([m.right for m in self.modules])

    @property
    def similarity(self) -> float:
        return (self.left + self.right) / 2

    @property
    def baseline(self) -> float:
        return _mean([m.baseline for m in self.modules])

    def to_dict(self) -> dict[str, object]:
        """JSON-ready numbers; a mean over no module is None."""
        keys = ("similarity", "left", "right", "baseline", "modules_compared", "only_a", "only_b")
        out = {k: None if (v := getattr(self, k)) != v else v for k in keys}  # NaN != NaN
        return {**out, "skipped": list(self.skipped)}


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def random_baseline(k: int, d: int, k2: int | None = None) -> float:
    """Expected phi of two independent uniformly random subspaces of R^d (k and k2 dimensions).

    E ||U1^T U2||_F^2 = k * k2 / d (each of U1's columns keeps k2 / d of its squared norm in a
    random k2-dimensional subspace); divided by min(k, k2) as `similarity` does.
    """
    k2 = k if k2 is None else k2
    if not (0 < k <= d and 0 < k2 <= d):
        raise ValueError(f"random_baseline: need 0 < k, k2 <= d, got k={k}, k2={k2}, d={d}")
    return k * k2 / (d * min(k, k2))


def random_subspace(d: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random k-dimensional subspace of R^d as [d, k] orthonormal columns (the span
    of a Gaussian matrix is rotation invariant, so uniform)."""
    return np.linalg.qr(rng.standard_normal((d, k)))[0]


def similarity(u1: np.ndarray, u2: np.ndarray) -> float:
    """phi(U1, U2) = ||U1^T U2||_F^2 / min(k1, k2) for orthonormal columns; in [0, 1]."""
    if u1.shape[0] != u2.shape[0]:
        raise ValueError(f"similarity: subspaces of R^{u1.shape[0]} and R^{u2.shape[0]}")
    k = min(u1.shape[1], u2.shape[1])
    if k == 0:
        raise ValueError("similarity: an empty subspace")
    m = u1.T.astype(np.float64) @ u2.astype(np.float64)
    return float(min(1.0, float(np.sum(m * m)) / k))


def principal_angles(u1: np.ndarray, u2: np.ndarray) -> np.ndarray:
    """Principal angles (radians, ascending) between two orthonormal bases: arccos of the
    singular values of U1^T U2. phi is the mean of their squared cosines when k1 = k2."""
    s = np.linalg.svd(u1.T.astype(np.float64) @ u2.astype(np.float64), compute_uv=False)
    return np.sort(np.arccos(np.clip(s, -1.0, 1.0)))


def _truncate(u: np.ndarray, s: np.ndarray, v: np.ndarray) -> Subspaces:
    keep = int(np.sum(s > RANK_TOL * s[0])) if s.size and s[0] > 0 else 0
    return Subspaces(left=u[:, :keep], right=v[:, :keep], singular_values=s[:keep])


def factor_subspaces(a: np.ndarray, b: np.ndarray, scale: float = 1.0) -> Subspaces:
    """Singular subspaces of dW = scale * B @ A without forming dW.

    Args:
        a: LoRA A, [r, in].
        b: LoRA B, [out, r].
        scale: alpha / r (only the singular values see it; the subspaces do not).

    Raises:
        ValueError: the factors' inner dimensions differ.
    """
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
        raise ValueError(f"factor_subspaces: A {a.shape} and B {b.shape} do not multiply")
    qb, rb = np.linalg.qr(b.astype(np.float64))
    qa, ra = np.linalg.qr(a.T.astype(np.float64))
    uc, s, vct = np.linalg.svd(rb @ ra.T)
    return _truncate(qb @ uc, np.abs(scale) * s, qa @ vct.T)


def dense_subspaces(delta: np.ndarray, k: int | None = None) -> Subspaces:
    """Top-k (default: all above `RANK_TOL`) singular subspaces of a dense update [rows, cols]
    (a fine-tune's child - base on one window)."""
    if delta.ndim != 2:
        raise ValueError(f"dense_subspaces: need a matrix, got shape {delta.shape}")
    u, s, vt = np.linalg.svd(delta.astype(np.float64), full_matrices=False)
    sub = _truncate(u, s, vt.T)
    if k is not None and k < sub.rank:
        sub = Subspaces(sub.left[:, :k], sub.right[:, :k], sub.singular_values[:k])
    return sub


def compare_subspaces(
    a: Mapping[str, Subspaces], b: Mapping[str, Subspaces], *, k: int | None = None
) -> SubspaceResult:
    """Compare two updates module by module (names matched after `normalize_name`).

    Args:
        a, b: module name -> its update's subspaces.
        k: directions compared per module; default the smaller rank of the two (a rank-8 and a
            rank-16 adapter compare their top 8), and never more than either has.
    """
    na = {normalize_name(n): s for n, s in a.items()}
    nb = {normalize_name(n): s for n, s in b.items()}
    modules: list[ModuleSimilarity] = []
    skipped: list[str] = []
    for name in sorted(na.keys() & nb.keys()):
        sa, sb = na[name], nb[name]
        if sa.left.shape[0] != sb.left.shape[0] or sa.right.shape[0] != sb.right.shape[0]:
            skipped.append(
                f"{name}: shapes differ ({sa.left.shape[0]}x{sa.right.shape[0]} vs "
                f"{sb.left.shape[0]}x{sb.right.shape[0]})"
            )
            continue
        kk = min(sa.rank, sb.rank) if k is None else min(k, sa.rank, sb.rank)
        if kk == 0:
            skipped.append(f"{name}: a zero update")
            continue
        rows, cols = sa.left.shape[0], sa.right.shape[0]
        if kk >= min(rows, cols):
            # k directions filling the space are the whole space on that side: always 1
            skipped.append(f"{name}: rank {kk} fills a {rows}x{cols} matrix")
            continue
        left = similarity(sa.left[:, :kk], sb.left[:, :kk])
        right = similarity(sa.right[:, :kk], sb.right[:, :kk])
        modules.append(ModuleSimilarity(name, kk, rows, cols, left, right))
    only_a, only_b = len(na.keys() - nb.keys()), len(nb.keys() - na.keys())
    return SubspaceResult(tuple(modules), only_a, only_b, tuple(skipped))


def compare_factors(a: Factors, b: Factors, *, k: int | None = None) -> SubspaceResult:
    """Compare two LoRA adapters given as module name -> (A [r, in], B [out, r]); the scale
    alpha / r is left out, it changes no subspace."""
    sa = {n: factor_subspaces(fa, fb) for n, (fa, fb) in a.items()}
    return compare_subspaces(sa, {n: factor_subspaces(fa, fb) for n, (fa, fb) in b.items()}, k=k)


def compare_deltas(
    a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], *, k: int
) -> SubspaceResult:
    """Compare two full fine-tunes of one base through their dense updates on the same windows
    (tensor name -> child - base), top-k directions each."""
    sa = {n: dense_subspaces(d, k) for n, d in a.items()}
    return compare_subspaces(sa, {n: dense_subspaces(d, k) for n, d in b.items()}, k=k)
