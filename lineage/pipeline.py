"""Library functions behind `lineage add`, `fingerprint` and `compare`.

Each takes a Store and plain arguments and returns a frozen summary, so everything the CLI does
is callable from Python. A model that cannot be read is reported (and, when it is in the store,
marked with its status and reason); it never stops the others.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fingerprint.compare import DEFAULT_ALPHA, PairResult, compare
from fingerprint.protocol import TensorSource
from fingerprint.signature import Signature, SignatureParams, compute_signature
from hub.errors import HubError
from hub.local import find_model_dirs, open_local_model
from hub.records import ModelRecord
from lineage.errors import UnknownModelError
from lineage.store import Store

Progress = Callable[[int, int, str], None]

# Statuses worth another try: "gated", "not_found", "no_safetensors" need the user first.
RETRYABLE = ("ok", "malformed", "network")


@dataclass(frozen=True, slots=True)
class Failure:
    """A model that could not be handled: its id (or path), status code and one-line reason."""

    model: str
    status: str
    reason: str


@dataclass(frozen=True, slots=True)
class AddSummary:
    new: tuple[str, ...]
    changed: tuple[str, ...]
    unchanged: tuple[str, ...]
    failed: tuple[Failure, ...]


@dataclass(frozen=True, slots=True)
class FingerprintSummary:
    fingerprinted: tuple[str, ...]
    skipped: tuple[str, ...]
    failed: tuple[Failure, ...]
    bytes_read: int


def add_local(store: Store, paths: Iterable[str | os.PathLike[str]]) -> AddSummary:
    """Register local model folders (or folders of them) in the store, reading headers only.

    A folder that does not parse is reported in `failed` and not stored, so the store is left
    as it was for it; the other folders are still added.
    """
    new: list[str] = []
    changed: list[str] = []
    unchanged: list[str] = []
    failed: list[Failure] = []
    for path in paths:
        try:
            found = find_model_dirs(path)
        except HubError as e:
            failed.append(Failure(str(path), e.status, str(e)))
            continue
        if not found:
            failed.append(
                Failure(str(path), "not_found", f"{path}: no model folders found below it")
            )
        for model_id, folder in found:
            try:
                model = open_local_model(folder, model_id=model_id)
            except HubError as e:
                failed.append(Failure(model_id, e.status, str(e)))
                continue
            outcome = store.upsert_model(model.record)
            {"new": new, "changed": changed, "unchanged": unchanged}[outcome].append(model_id)
    return AddSummary(tuple(new), tuple(changed), tuple(unchanged), tuple(failed))


def open_source(record: ModelRecord) -> TensorSource:
    """A tensor source for a stored model, from where the record says it lives."""
    if record.source in ("local", "cache") and record.path:
        return open_local_model(
            record.path,
            model_id=record.id,
            source=record.source,
            revision=record.revision if record.source == "cache" else None,
        )
    if record.source == "hub":
        # The default endpoint ($HF_ENDPOINT) and token: records never hold either. Reading at
        # the stored commit keeps the signature consistent with the record.
        from hub.hubsource import HubClient, open_hub_model
        from hub.window_cache import WindowCache

        return open_hub_model(
            record.id, client=HubClient(), revision=record.revision, cache=WindowCache()
        )
    raise UnknownModelError(
        record.id,
        f"{record.id}: no readable source recorded (source={record.source!r}); "
        "add it again with `lineage add PATH` or `lineage crawl`",
    )


def store_signature(store: Store, record: ModelRecord, sig: Signature) -> None:
    store.put_signature(
        record.id,
        revision=record.revision,
        arch=sig.arch,
        params=sig.params.tag(),
        n_slots=len(sig.slots),
        bytes_read=sig.bytes_read,
        blob=sig.to_bytes(),
    )


def fingerprint_models(
    store: Store,
    ids: Sequence[str] = (),
    *,
    everything: bool = False,
    device: str = "auto",
    params: SignatureParams | None = None,
    progress: Progress | None = None,
) -> FingerprintSummary:
    """Compute and store signatures.

    Args:
        ids: these models (recomputed even when current). Empty: every readable model whose
            stored signature is missing or stale.
        everything: recompute every readable model.
        device: "auto", "cpu" or "cuda".
        params: signature parameters (default `SignatureParams()`).
        progress: called as (done, total, model id) after each model.
    """
    params = params or SignatureParams()
    skipped: list[str] = []
    if ids:
        records = [store.require_model(i) for i in ids]
    else:
        records = []
        for r in store.models():
            current = store.has_current_signature(r.id, r.revision, params=params.tag())
            if r.status in RETRYABLE and (everything or not current):
                records.append(r)
            else:
                skipped.append(r.id)
    done: list[str] = []
    failed: list[Failure] = []
    total_bytes = 0
    for i, rec in enumerate(records):
        try:
            sig = compute_signature(open_source(rec), params=params, device=device)
        except HubError as e:
            store.set_status(rec.id, e.status, str(e))
            failed.append(Failure(rec.id, e.status, str(e)))
        except (OSError, ValueError) as e:
            reason = f"{rec.id}: cannot read its weights ({e}); check the files and run `lineage add` again"
            store.set_status(rec.id, "malformed", reason)
            failed.append(Failure(rec.id, "malformed", reason))
        else:
            store_signature(store, rec, sig)
            if rec.status != "ok":
                store.set_status(rec.id, "ok", "")
            total_bytes += sig.bytes_read
            done.append(rec.id)
        if progress is not None:
            progress(i + 1, len(records), rec.id)
    return FingerprintSummary(tuple(done), tuple(skipped), tuple(failed), total_bytes)


def resolve_signature(
    store: Store | None,
    ref: str,
    *,
    device: str = "auto",
    params: SignatureParams | None = None,
) -> Signature:
    """The signature of `ref`: a model id in the store, else a local model folder.

    A stored model without a current signature is fingerprinted (and the signature stored); a
    folder that is not in the store is fingerprinted without storing anything.
    """
    params = params or SignatureParams()
    record = store.get_model(ref) if store is not None else None
    if record is not None:
        row = store.get_signature(ref) if store is not None else None
        if row is not None and row.revision == record.revision:
            return Signature.from_bytes(row.blob, model_id=ref)
        sig = compute_signature(open_source(record), params=params, device=device)
        if store is not None:
            store_signature(store, record, sig)
        return sig
    if Path(ref).is_dir():
        model = open_local_model(ref, model_id=ref)
        return compute_signature(model, params=params, device=device)
    raise UnknownModelError(
        ref,
        f"{ref!r} is neither a model in the database nor a model folder; "
        "pass a folder path, or `lineage add` it first",
    )


def compare_refs(
    store: Store | None,
    a: str,
    b: str,
    *,
    device: str = "auto",
    alpha: float = DEFAULT_ALPHA,
) -> PairResult:
    """Compare two models given as ids in the store or local folders."""
    sig_a = resolve_signature(store, a, device=device)
    sig_b = resolve_signature(store, b, device=device)
    return compare(sig_a, sig_b, alpha=alpha)
