"""Adapter-only repos linked to their base, and adapters on one base that learnt the same thing.

An adapter repo (`adapter_model.safetensors`: LoRA factors A [r, in] and B [out, r] per module)
shares no weight with its base, so signatures never link it. It is linked here, and only where
its metadata names the base (shapes alone are shared by every model of an architecture, so they
never make an edge):

1. **declared**: adapter_config.json's `base_model_name_or_path` (else the card's `base_model`
   with relation adapter) names a model of the store (`resolve_base`);
2. **fits**: every module's update B @ A has the shape of that module's weight in the base
   (a declared base where some do not fit is the wrong base: a finding, no edge);
3. **stays derived**: the base's windows (the signature's first rows of the adapted matrices)
   with the update applied still compare "derived" with the base's own windows under the
   signature comparison's rules (`fingerprint.comparison.compare`): the update is an update of
   those weights, not a replacement of them.

Adapters linked to one base are then compared by the Grassmann similarity of their updates
(`fingerprint.subspace`): a pair far above the random baseline learnt the same thing and gets a
sibling note (`SiblingNote`), never an edge. The threshold is on the lift over the baseline,
(similarity - baseline) / (1 - baseline), because the levels move with the shapes: measured
(docs/adapters.md, 5 seeds) sibling adapters lift 0.35-0.43, adapters on other data at most
0.09, random ones 0.00-0.01; `SIBLING_LIFT` = 0.25 sits 0.16 above the highest unrelated pair
and 0.10 below the lowest sibling.

`adapter_links` reads the factors of each adapter and a few base windows (at most
`MAX_WINDOWS`); failures are recorded per adapter and never stop the rest.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fingerprint.comparison import DERIVED, PairResult, compare
from fingerprint.plan import normalize_name, window_rows
from fingerprint.signature import SignatureParams, compute_signature
from fingerprint.subspace import compare_factors
from hub.adapters import AdapterFactors, read_factors
from hub.errors import HubError
from hub.records import ModelRecord, TensorInfo, TensorWindow
from hub.tensor_index import TensorIndex
from lineage.errors import LineageError

# Base windows checked per adapter (spread over its modules by name): each is one window read.
MAX_WINDOWS = 8
# Lift over the random baseline above which two adapters on one base are siblings (docstring).
SIBLING_LIFT = 0.25
# What an adapter link's evidence names, in order.
EVIDENCE = (
    "declared base",
    "factor shapes fit the base",
    "base windows with the update stay derived",
)


@dataclass(frozen=True, slots=True)
class AdapterLink:
    """A base -> adapter edge and its evidence.

    Attributes:
        base, adapter: model ids.
        method: `lora:r<rank>` (`lora` when no rank is known).
        modules: modules the adapter updates (read), all of which fit the base.
        pair: the base's windows against the same windows with the update applied.
        update_norm: ||dW|| / ||W|| over those windows: how large the update is.
        notes: what was assumed or left out (no alpha in the config, modules over the cap).
    """

    base: str
    adapter: str
    method: str
    modules: int
    pair: PairResult
    update_norm: float
    notes: tuple[str, ...] = ()
    relation: str = "adapter"
    evidence: tuple[str, ...] = EVIDENCE


@dataclass(frozen=True, slots=True)
class AdapterFinding:
    """An adapter that is not linked, and why.

    `kind`: `adapter_base_mismatch` (the declared base is in the store but the update does not
    fit it: the wrong base), `adapter_not_an_update` (applied to the base's windows the update
    does not leave them derived from the base: it replaces them), `adapter_base_missing` (the
    declared base is not in the store), `adapter_no_base` (no base declared), `adapter_unread`
    (its factors or the base's windows could not be read), `adapter_unchecked` (the adapted
    matrices are too small for a signature window). Only the first two accuse anyone.
    """

    adapter: str
    kind: str
    declared: str | None
    evidence: str


@dataclass(frozen=True, slots=True)
class SiblingNote:
    """Two adapters on one base whose updates span the same directions: they learnt the same
    thing. A note beside the two edges, never a parent link between the adapters."""

    a: str
    b: str
    base: str
    similarity: float
    baseline: float
    lift: float
    modules: int


@dataclass(frozen=True, slots=True)
class AdapterLinks:
    edges: tuple[AdapterLink, ...] = ()
    siblings: tuple[SiblingNote, ...] = ()
    findings: tuple[AdapterFinding, ...] = ()


def declared_base(record: ModelRecord) -> str | None:
    """The base an adapter record names: adapter_config.json's, else the card's adapter base,
    else the card's only base."""
    base = record.extra.get("adapter_base")
    if isinstance(base, str) and base:
        return base
    bases = [b.id for b in record.declared_bases if b.relation == "adapter"]
    if not bases and len(record.declared_bases) == 1:
        bases = [record.declared_bases[0].id]
    return bases[0] if bases else None


def resolve_base(declared: str, ids: Sequence[str] | set[str]) -> str | None:
    """The stored model id `declared` names: the id itself, or a path ending in `org/name`
    (`/home/me/hf/meta-llama/Llama-2-7b-hf`); never a guess on the last component alone."""
    if declared in ids:
        return declared
    parts = [p for p in declared.replace("\\", "/").split("/") if p]
    tail = "/".join(parts[-2:])
    return tail if len(parts) > 2 and tail in ids else None


def is_adapter(record: ModelRecord) -> bool:
    """An adapter-only repo, as its files say (`hub.layout`'s adapter row)."""
    return bool(record.extra.get("adapter"))


class _Windows:
    """An in-memory source of given windows (a `fingerprint.protocol.TensorSource`)."""

    def __init__(self, model_id: str, windows: Mapping[str, tuple[TensorInfo, np.ndarray]]):
        self.model_id = model_id
        self._windows = windows

    def tensor_infos(self) -> list[TensorInfo]:
        return [info for info, _ in self._windows.values()]

    def read_window(self, name: str, n: int) -> TensorWindow:
        values = np.ascontiguousarray(self._windows[name][1].reshape(-1)[:n], dtype=np.float32)
        return TensorWindow(raw=values.tobytes(), decoded=values)


def _fit(
    factors: AdapterFactors, base: TensorIndex
) -> tuple[dict[str, tuple[TensorInfo, bool]], list[str]]:
    """Module -> (the base's weight, stored transposed) for modules whose update fits; and a
    line for each module that does not. A square weight is taken as [out, in] (a square
    Conv1D's update is then applied transposed in the window check: same size, same test)."""
    infos = {normalize_name(i.name): i for i in base.tensor_infos()}
    fits: dict[str, tuple[TensorInfo, bool]] = {}
    misfits: list[str] = []
    for module, (a, b) in factors.factors.items():
        want = (b.shape[0], a.shape[1])
        info = infos.get(normalize_name(module) + ".weight")
        shape = tuple(info.shape) if info is not None else None
        if info is not None and info.decodable and shape in (want, want[::-1]):
            # torch Linear stores [out, in]; GPT-2's Conv1D [in, out] (fan_in_fan_out)
            fits[module] = (info, shape != want)
        else:
            have = "no such weight" if info is None else f"{list(info.shape)}"
            misfits.append(f"{normalize_name(module)}: update {list(want)}, base {have}")
    return fits, misfits


def check_adapter(
    adapter: TensorIndex,
    base: TensorIndex,
    *,
    params: SignatureParams | None = None,
    factors: AdapterFactors | None = None,
    max_windows: int = MAX_WINDOWS,
) -> AdapterLink | AdapterFinding:
    """The evidence that `adapter` adapts `base` (its declared base, already resolved).

    Returns:
        The link, or a finding: `adapter_base_mismatch` naming the modules that do not fit,
        `adapter_not_an_update`, or `adapter_unchecked` (see `AdapterFinding`).

    Raises:
        LineageError: the adapter holds no readable LoRA factors.
        MalformedFileError, HubError: bytes that could not be read.
    """
    params = params or SignatureParams()
    got = factors or read_factors(adapter)
    if not got.factors:
        raise LineageError(
            f"{adapter.model_id} holds no readable LoRA factors ({'; '.join(got.notes)})"
        )
    fits, misfits = _fit(got, base)
    if misfits:
        shown = "; ".join(misfits[:3]) + (
            f"; and {len(misfits) - 3} more" if len(misfits) > 3 else ""
        )
        return AdapterFinding(
            adapter.model_id,
            "adapter_base_mismatch",
            base.model_id,
            f"{len(misfits)} of {len(got.factors)} adapted modules do not fit the declared base "
            f"{base.model_id} ({shown}): trained on another architecture or size",
        )
    scale = got.scale if got.scale is not None else 1.0
    modules = sorted(fits)
    if len(modules) > max_windows:
        step = (len(modules) - 1) / (max_windows - 1)
        modules = [modules[round(i * step)] for i in range(max_windows)]
    plain: dict[str, tuple[TensorInfo, np.ndarray]] = {}
    patched: dict[str, tuple[TensorInfo, np.ndarray]] = {}
    update_sq = base_sq = 0.0
    for module in modules:
        info, transposed = fits[module]
        rows, cols = info.shape[0], int(np.prod(info.shape[1:]))
        r = window_rows(rows, cols, params.window)
        n = r * cols if cols <= params.window else params.window
        w0 = base.read_window(info.name, n).values.astype(np.float64)
        a, b = (x.astype(np.float64) for x in got.factors[module])
        take = -(-n // cols)  # rows the window touches
        delta = scale * (a[:, :take].T @ b.T if transposed else b[:take] @ a)
        dw = delta.reshape(-1)[:n]
        tinfo = TensorInfo(name=info.name, dtype="F32", shape=tuple(info.shape), decodable=True)
        plain[info.name] = (tinfo, w0)
        patched[info.name] = (tinfo, w0 + dw)
        update_sq += float(dw @ dw)
        base_sq += float(w0 @ w0)
    sig = {
        side: compute_signature(_Windows(f"{base.model_id}{side}", w), params=params, device="cpu")
        for side, w in (("", plain), ("+update", patched))
    }
    pair = compare(sig[""], sig["+update"])
    if pair.slots_compared == 0:
        return AdapterFinding(
            adapter.model_id,
            "adapter_unchecked",
            base.model_id,
            f"the adapted matrices of {base.model_id} are below the signature's "
            f"{params.min_elements} elements: no window to apply the update to, not linked",
        )
    notes = list(got.notes)
    if got.scale is None:
        notes.append("scale alpha / r unknown: the update applied with scale 1")
    if pair.verdict not in DERIVED:
        return AdapterFinding(
            adapter.model_id,
            "adapter_not_an_update",
            base.model_id,
            f"the declared base {base.model_id}'s windows with the update applied are "
            f"{pair.verdict} to the base (overlap {pair.overlap:.3f} on {pair.slots_compared} "
            "windows): the update replaces the weights rather than adapting them",
        )
    return AdapterLink(
        base=base.model_id,
        adapter=adapter.model_id,
        method=f"lora:r{got.rank}" if got.rank else "lora",
        modules=len(got.factors),
        pair=pair,
        update_norm=float(np.sqrt(update_sq / base_sq)) if base_sq > 0 else float("inf"),
        notes=tuple(notes),
    )


def sibling_notes(
    factors: Mapping[str, AdapterFactors], base_of: Mapping[str, str], *, lift: float = SIBLING_LIFT
) -> list[SiblingNote]:
    """Pairs of adapters on one base whose updates' Grassmann lift over the random baseline is
    at least `lift` (module names matched after `normalize_name`)."""
    notes: list[SiblingNote] = []
    for a, b in itertools.combinations(sorted(base_of), 2):
        if base_of[a] != base_of[b]:
            continue
        r = compare_factors(factors[a].factors, factors[b].factors)
        if not r.modules:
            continue
        gain = (r.similarity - r.baseline) / (1 - r.baseline)
        if gain >= lift:
            notes.append(
                SiblingNote(a, b, base_of[a], r.similarity, r.baseline, gain, r.modules_compared)
            )
    return notes


def adapter_links(
    records: Mapping[str, ModelRecord],
    open_model: Callable[[ModelRecord], TensorIndex],
    *,
    params: SignatureParams | None = None,
) -> AdapterLinks:
    """Edges from the stored adapters' declared bases to them, the findings, and sibling notes.

    Args:
        records: every model of the store by id.
        open_model: opens a stored model (`lineage.pipeline.open_source`).
        params: the signature parameters (the windows checked are the signature's).
    """
    edges: list[AdapterLink] = []
    findings: list[AdapterFinding] = []
    read: dict[str, AdapterFactors] = {}
    ids = set(records)
    bases: dict[str, TensorIndex] = {}  # a base opened once for all its adapters
    for mid in sorted(records):
        rec = records[mid]
        if not is_adapter(rec):
            continue
        declared = declared_base(rec)
        if declared is None:
            findings.append(
                AdapterFinding(
                    mid,
                    "adapter_no_base",
                    None,
                    "no base declared in adapter_config.json or the card: not linked "
                    "(shapes alone name no base)",
                )
            )
            continue
        base_id = resolve_base(declared, ids)
        if base_id is None or base_id == mid:
            findings.append(
                AdapterFinding(
                    mid,
                    "adapter_base_missing",
                    declared,
                    f"the declared base {declared!r} is not in the store: add it to link "
                    "the adapter",
                )
            )
            continue
        try:
            adapter = open_model(rec)
            got = read_factors(adapter)
            if base_id not in bases:
                bases[base_id] = open_model(records[base_id])
            result = check_adapter(adapter, bases[base_id], params=params, factors=got)
        except (HubError, LineageError, OSError, ValueError, KeyError) as err:
            findings.append(
                AdapterFinding(mid, "adapter_unread", declared, f"{type(err).__name__}: {err}")
            )
            continue
        if isinstance(result, AdapterFinding):
            findings.append(result)
        else:
            edges.append(result)
            read[mid] = got
    siblings = sibling_notes(read, {e.adapter: e.base for e in edges})
    return AdapterLinks(tuple(edges), tuple(siblings), tuple(findings))
