"""A compact index for candidate search over millions of models: consistent position sampling.

Sketches (`lineage.sketch_codes`: the (slot, position) pairs a hash samples, as uint32 codes)
are kept by `lineage.sketch_segments.SketchLog` (an appended log and memory-mapped segments);
this module searches them: candidates by shared codes, then through verified matches.

Parameters (chosen by measurement on `lineage.lab.synthetic.SyntheticHub`, one architecture,
families of mean size 33 whose children keep 20-95% of their parent's positions; the numbers of
scripts/bench_scale.py are in docs/benchmarks.md). `rate` 32 keeps 1,024 codes of a model's
64 x 512 positions: 4 KiB in the log, 2 bytes a posting in memory (segment-local uint16 rows).
Unrelated models then share Poisson(2) codes, related ones s / 32 for s shared positions; but a
pair is related down to s ~ 104-117 of 32,768 (the critical total at alpha 0.01 / N), about 4
codes, which no 1/32 sketch tells from chance: direct search alone found 0.80-0.90 of related
pairs whatever the threshold that keeps false candidates few (measured at 3,000 models: rate 16
reaches 0.99 but at 8 KiB a model; rate 64 finds under 0.96). Those weak pairs are strong
relatives of the models between them, so `related` also searches from the verified matches
(`expand`): `min_shared` 10 (false candidates: P(Poisson(2) >= 10) = 5e-5 of the models),
`expand` up to 64 matches whose candidates need `expand_shared` 12 (2.5e-6) reached 0.9988
recall at 2,000 models (seed 7, 300 queries; 0.9994 with 10, 0.9963 with 16; 8 expansions
gave 0.958) for ~15 verifications a query beyond the true matches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from fingerprint.comparison import DEFAULT_ALPHA, PairResult, compare
from fingerprint.signature import Signature
from lineage.sketch_codes import (
    DEFAULT_MAX_CODES,
    DEFAULT_RATE,
    distinct,
    sketch_codes,
    sketch_rows,
    slot_salt,
)
from lineage.sketch_segments import (
    LANES,
    MAX_SEGMENT,
    SketchLog,
    jit_enabled,
    postings,
    segment_counts,
)

__all__ = [
    "DEFAULT_EXPAND",
    "DEFAULT_EXPAND_SHARED",
    "DEFAULT_MAX_CODES",
    "DEFAULT_MIN_SHARED",
    "DEFAULT_RATE",
    "MAX_SEGMENT",
    "Candidate",
    "SketchIndex",
    "postings",
    "segment_counts",
    "sketch_codes",
    "sketch_rows",
    "slot_salt",
]

DEFAULT_MIN_SHARED = 10
DEFAULT_EXPAND_SHARED = 12
DEFAULT_EXPAND = 64
# expansions counted together (one pass over the segments; BATCH x rows counters a segment)
BATCH = 16


@dataclass(frozen=True, slots=True)
class Candidate:
    """A stored model whose sketch shares codes with the query's.

    Attributes:
        model_id: the stored model.
        row: its row in the index.
        sampled: codes shared.
        estimated: estimated shared bottom-k positions (sampled x rate).
    """

    model_id: str
    row: int
    sampled: int
    estimated: int


class SketchIndex(SketchLog):
    """Sketches of many models in a folder (`SketchLog`), searched by one signature."""

    def add(self, model_id: str, sig: Signature) -> None:
        """Index one model's signature (a model already indexed is replaced)."""
        self.add_codes(model_id, sketch_codes(sig, self.rate, self.max_codes))

    def candidates(
        self,
        codes: np.ndarray,
        *,
        min_shared: int = DEFAULT_MIN_SHARED,
        exclude: Iterable[str] = (),
    ) -> list[Candidate]:
        """Indexed models sharing at least `min_shared` codes with the sketch `codes` (from
        `sketch_codes`), most shared first."""
        rows, shared = self.counts_many([codes], least=min_shared)[0]
        return self._named(rows, shared, set(exclude))

    def _named(self, rows: np.ndarray, shared: np.ndarray, skip: set[str]) -> list[Candidate]:
        """The live candidates of `rows` sharing `shared` codes (empty: unknown, 0), most
        shared first."""
        out = []
        counts = shared.tolist() if shared.size else [0] * rows.size
        for r, s in zip(rows.tolist(), counts, strict=True):
            model_id = self.ids[r]
            if self._row[model_id] != r or model_id in skip:
                continue  # a replaced sketch, or the query itself
            out.append(Candidate(model_id, r, s, s * self.rate))
        out.sort(key=lambda c: (-c.sampled, c.row))
        return out

    def related(
        self,
        codes: np.ndarray,
        verify: Callable[[Candidate], bool],
        *,
        min_shared: int = DEFAULT_MIN_SHARED,
        expand: int = DEFAULT_EXPAND,
        expand_shared: int = DEFAULT_EXPAND_SHARED,
        exclude: Iterable[str] = (),
        ahead: Callable[[list[Candidate]], None] | None = None,
    ) -> list[Candidate]:
        """Candidates of the sketch `codes` that `verify` accepts, found directly and through
        the strongest accepted ones; `ahead`, when given, is told each batch of candidates
        before they are verified one by one (to read what verifying them needs at once).

        A weak relative (a great-uncle: a few hundred shared positions of 32,768, a handful of
        codes) is indistinguishable from chance in a 1/rate sketch, but it is a strong relative
        of the models between the two. So after the direct search, the sketches of up to
        `expand` accepted models (strongest first, `BATCH` at a time) are searched, and what
        they turn up is verified against the query too. `Candidate.sampled` stays the query's
        own count. Compiled, a pass counts the next strongest of the frontier with the batch (up
        to `LANES`, never past `expand`; `SketchLog.reaching`): a sketch's count does not depend
        on when it is made, so the candidates are the same, in fewer passes.
        """
        skip = set(exclude)
        # the direct candidates' counts (rows ascending); a row reached through the expansion
        # is counted against the query on its own sketch (`shared_codes`): the same count,
        # without listing every row that shares a code (most of the index)
        rows, shared = self.counts_many([codes], least=min_shared)[0]
        query = distinct(np.asarray(codes, np.uint32))

        def own(row: int) -> int:
            at = int(np.searchsorted(rows, row))
            if at < rows.size and rows[at] == row:
                return int(shared[at])
            return self.shared_codes(query, row)

        seen: set[int] = set()
        found: list[Candidate] = []
        frontier: list[Candidate] = []

        def consider(cands: list[Candidate]) -> None:
            cands = [c for c in cands if c.row not in seen]
            if ahead is not None and cands:
                ahead(cands)
            for c in cands:
                seen.add(c.row)
                mine = own(c.row)
                c = Candidate(c.model_id, c.row, mine, mine * self.rate)
                if verify(c):
                    found.append(c)
                    frontier.append(c)

        consider(self._named(rows, shared, skip))
        expanded = 0
        reached: dict[int, np.ndarray] = {}  # hub row -> rows reaching expand_shared with it
        width = LANES if jit_enabled() else BATCH
        while frontier and expanded < expand:
            # the strongest first, a batch at a time (counted in one pass over the segments)
            frontier.sort(key=lambda c: (c.sampled, -c.row))
            hubs = [frontier.pop() for _ in range(min(len(frontier), expand - expanded, BATCH))]
            expanded += len(hubs)
            todo = [h for h in hubs if h.row not in reached]
            if todo:
                # with the next strongest of the frontier, up to what may still be expanded:
                # one compiled pass counts `width` sketches for little more than one (their
                # codes are mostly shared); a count is the same whenever it is made
                spare = [c for c in reversed(frontier) if c.row not in reached]
                todo += spare[: max(0, min(expand - expanded, width - len(todo)))]
                sketches = [self.codes_of(h.model_id) for h in todo]
                for h, hit in zip(todo, self.reaching(sketches, expand_shared), strict=True):
                    reached[h.row] = hit
            for h in hubs:
                consider(self._named(reached.pop(h.row), np.zeros(0, np.int64), skip))
        found.sort(key=lambda c: (-c.sampled, c.row))
        return found

    def search(
        self,
        sig: Signature,
        load: Callable[[str], Signature],
        *,
        alpha: float | None = None,
        min_shared: int = DEFAULT_MIN_SHARED,
        expand: int = DEFAULT_EXPAND,
        expand_shared: int = DEFAULT_EXPAND_SHARED,
        exclude: Iterable[str] = (),
    ) -> list[tuple[Candidate, PairResult]]:
        """Stored models related to `sig`: `related` with `compare` on full signatures (`load`
        gives a stored model's, called for candidates only) as the verification; a pair
        `compare` calls unrelated is no match.

        Args:
            alpha: significance level of `compare`; default `DEFAULT_ALPHA / N` (Bonferroni
                over the N indexed models, as `lineage.match.SignatureIndex` does).
        """
        alpha = DEFAULT_ALPHA / max(1, len(self)) if alpha is None else alpha
        pairs: dict[str, PairResult] = {}

        def verify(c: Candidate) -> bool:
            pair = compare(sig, load(c.model_id), alpha=alpha)
            pairs[c.model_id] = pair
            return pair.verdict != "unrelated"

        codes = sketch_codes(sig, self.rate, self.max_codes)
        found = self.related(
            codes,
            verify,
            min_shared=min_shared,
            expand=expand,
            expand_shared=expand_shared,
            exclude=exclude,
        )
        return [(c, pairs[c.model_id]) for c in found]
