"""How well the null of the pair test holds, per role, on pairs known to be unrelated.

The p-value of `fingerprint.comparison` takes each slot's shared count to be hypergeometric
(bottom-k positions exchangeable). On pairs that are unrelated by construction (zoo models of
different families and one architecture) this module counts, per role of the slot (token
embedding, position embedding, attention, MLP, head, other), how many positions are shared
against how many the null expects, and how often a slot's own tail falls below 1e-2 and 1e-3
against how often the null says it should. A role whose ratio sits well above 1 is structured:
its positions are not exchangeable, and the verdict must not rest on it alone (the spread rule).
It also counts the verdicts those unrelated pairs get: anything but "unrelated" or
"incomparable" there is a false claim.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from fingerprint import significance
from fingerprint.alignment import split_key
from fingerprint.comparison import FEW_SLOTS, PairResult, compare, is_position_table, spread_tail
from fingerprint.plan import normalize_name, role_of
from fingerprint.signature import Signature

# Position embeddings are split from the other embeddings: they are the structured ones.
ROLES = ("token embedding", "position embedding", "attention", "mlp", "head", "other")
TAILS = (1e-2, 1e-3)


def slot_role(tensor: str) -> str:
    """The role a slot is reported under."""
    norm = normalize_name(tensor)
    if is_position_table(norm):
        return "position embedding"
    role = role_of(norm)
    return "token embedding" if role == "embedding" else role


@dataclass(frozen=True, slots=True)
class RoleNull:
    """One role over the unrelated pairs: slots seen, shared vs expected, small tails seen vs
    expected under the null (`tails[t] = (seen, expected)` for t in `TAILS`)."""

    role: str
    slots: int
    shared: int
    expected: float
    tails: tuple[tuple[int, float], ...]
    # what the null expects once each slot's row or column pattern is accounted for
    expected_pattern: float = float("nan")

    @property
    def ratio(self) -> float:
        """Shared positions over what exchangeable positions expect (1.0: they hold)."""
        return self.shared / self.expected if self.expected else float("nan")

    @property
    def ratio_pattern(self) -> float:
        """Shared positions over what the test's null expects (row/column pattern included)."""
        return self.shared / self.expected_pattern if self.expected_pattern else float("nan")


@dataclass(frozen=True, slots=True)
class NullCheck:
    """Per-role figures and the verdicts of the unrelated pairs.

    `smallest_p`: the smallest exact p over all slots; `smallest_spread_p`: the smallest p the
    verdict reads (the block slots without their most significant ones, `spread_tail`): how far
    the closest unrelated pair stands from "derived".
    """

    pairs: int
    roles: tuple[RoleNull, ...]
    verdicts: Mapping[str, int]
    smallest_p: float
    smallest_spread_p: float = 1.0


def unrelated_pairs(families: Mapping[str, str], arch: Mapping[str, str]) -> list[tuple[str, str]]:
    """Every pair of models in different families with the same architecture, sorted."""
    ids = sorted(families)
    return [
        (a, b)
        for a, b in itertools.combinations(ids, 2)
        if families[a] != families[b] and arch.get(a) == arch.get(b)
    ]


def _tail_mass(n: int, k: int, t: float) -> float:
    """P(slot tail <= t) under the null: the tail is discrete, so at most t."""
    pmf = significance.slot_pmf(n, k)
    tails = pmf[::-1].cumsum()[::-1]  # tails[s] = P(shared >= s)
    return float(pmf[tails <= t].sum())


def check(sigs: Mapping[str, Signature], pairs: Iterable[tuple[str, str]]) -> NullCheck:
    """Compare each pair and gather the per-role figures (pairs with a missing model skipped)."""
    shared: Counter[str] = Counter()
    slots: Counter[str] = Counter()
    expected: dict[str, float] = defaultdict(float)
    expected_pattern: dict[str, float] = defaultdict(float)
    seen = {t: Counter[str]() for t in TAILS}
    want: dict[float, dict[str, float]] = {t: defaultdict(float) for t in TAILS}
    verdicts: Counter[str] = Counter()
    smallest, smallest_spread, n_pairs = 1.0, 1.0, 0
    masses: dict[tuple[int, int, float], float] = {}
    for a, b in pairs:
        if a not in sigs or b not in sigs:
            continue
        r: PairResult = compare(sigs[a], sigs[b])
        n_pairs += 1
        verdicts[r.verdict] += 1
        if r.per_slot:
            smallest = min(smallest, r.p_value)
            blocks = tuple(s for s in r.per_slot if split_key(s.key) is not None)
            rest = spread_tail(blocks if len(blocks) >= FEW_SLOTS else r.per_slot)[0]
            smallest_spread = min(smallest_spread, rest)
        for s in r.per_slot:
            role = slot_role(s.tensor)
            slots[role] += 1
            shared[role] += s.shared
            expected[role] += s.k * s.k / s.n
            expected_pattern[role] += s.k * s.k / s.population
            for t in TAILS:
                seen[t][role] += s.p_value <= t
                key = (s.population, s.k, t)
                if key not in masses:
                    masses[key] = _tail_mass(s.population, s.k, t)
                want[t][role] += masses[key]
    roles = tuple(
        RoleNull(
            role=role,
            slots=slots[role],
            shared=shared[role],
            expected=expected[role],
            tails=tuple((seen[t][role], want[t][role]) for t in TAILS),
            expected_pattern=expected_pattern[role],
        )
        for role in ROLES
        if slots[role]
    )
    return NullCheck(n_pairs, roles, dict(verdicts), smallest, smallest_spread)


def table(rows: Sequence[tuple[str, NullCheck]]) -> list[str]:
    """Markdown: one line per (label, role)."""
    out = [
        "| set | role | slot comparisons | shared / expected (exchangeable) | shared / expected "
        "(row/column pattern) | tail <= 1e-2: seen / expected | tail <= 1e-3: seen / expected |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, nc in rows:
        for r in nc.roles:
            cells = [f"{seen} / {exp:.1f}" for seen, exp in r.tails]
            out.append(
                f"| {label} | {r.role} | {r.slots} | {r.ratio:.2f} | {r.ratio_pattern:.2f} | "
                f"{cells[0]} | {cells[1]} |"
            )
    return out


def verdict_table(rows: Sequence[tuple[str, NullCheck]]) -> list[str]:
    """Markdown: the verdicts of each set's unrelated pairs."""
    out = [
        "| set | unrelated pairs | derived | cousin | identical | smallest p | smallest p the "
        "verdict reads |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, nc in rows:
        v = nc.verdicts
        out.append(
            f"| {label} | {nc.pairs} | {v.get('derived', 0)} | {v.get('cousin', 0)} | "
            f"{v.get('identical', 0)} | {nc.smallest_p:.2g} | {nc.smallest_spread_p:.2g} |"
        )
    return out
