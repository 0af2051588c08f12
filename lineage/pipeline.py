"""Library functions behind `lineage add`, `fingerprint` and `compare`.

Each takes a Store and plain arguments and returns a frozen summary, so everything the CLI does
is callable from Python. A model that cannot be read is reported (and, when it is in the store,
marked with its status and reason); it never stops the others.

`lineage.pipeline` keeps the three calls the CLI names (`add_local`, `fingerprint_models`,
`compare_refs`); the parts live beside it: `pipeline_records` (summaries), `add_claims` (which
folder gets which id), `add_cache` (the Hugging Face cache), `pipeline_sources` (opening a
stored model, resolving a reference to its signature). Their public names are re-exported here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from fingerprint.comparison import DEFAULT_ALPHA, PairResult, compare
from fingerprint.signature import SignatureParams
from hub.errors import HubError
from hub.local import open_local_model
from lineage.add_cache import add_hf_cache, add_snapshot, cached_snapshots
from lineage.add_claims import claim_ids, found_folders, moved_other
from lineage.catalogue import Catalogue
from lineage.engine import (
    UNEXPECTED,
    Engine,
    Executor,
    ThreadExecutor,
    one_line,
    store_outcome,
    unexpected,
)
from lineage.pipeline_records import AddSummary, AddTally, Failure, FingerprintSummary, Progress
from lineage.pipeline_sources import open_source, resolve_signature, store_signature
from lineage.policy import Context, retries
from lineage.store import Store

__all__ = [
    "AddSummary",
    "Failure",
    "FingerprintSummary",
    "Progress",
    "add_hf_cache",
    "add_local",
    "compare_refs",
    "fingerprint_models",
    "open_source",
    "resolve_signature",
    "store_signature",
]


def add_local(
    store: Store, paths: Iterable[str | os.PathLike[str]], *, model_id: str | None = None
) -> AddSummary:
    """Register local model folders (or folders of them) in the store, reading headers only.

    Each folder gets its id from `hub.folders.folder_id` (`org/name`), or keeps the id it is
    already stored under (same resolved path). A folder is refused, never stored over another
    model, when its id is taken: by another folder of the same add (all of them are refused,
    one failure naming every path) or by a stored model from another place (another folder
    that still exists, or the Hub). When the stored folder no longer exists, a folder with the
    same weights (same revision) is that model moved and takes its id over; other weights are
    refused.
    A folder that does not parse is reported in `failed` and not stored, so the store is left
    as it was for it; the other folders are still added.
    A snapshot folder of a Hugging Face cache (`models--ORG--NAME/snapshots/COMMIT`, or a
    folder above it) is stored as `add_hf_cache` stores it: ORG/NAME at COMMIT, one revision
    per repo; with `model_id` it is a folder like any other.

    Args:
        store: where the models go.
        paths: model folders or folders of them.
        model_id: the id to give the one model folder in `paths` (`lineage add PATH --id`).

    Raises:
        LineageError: `model_id` with more than one path, or with a folder of folders.
    """
    candidates, failed = found_folders(paths, model_id)
    tally = AddTally()
    snapshots: dict[str, tuple[str, Path]] = {}
    if model_id is None:  # a snapshot named with --id is a folder like any other
        candidates, snapshots = cached_snapshots(candidates, tally)
    for claim in claim_ids(store, candidates, model_id, failed):
        mid = claim.model_id
        try:
            model = open_local_model(claim.folder, model_id=mid)
        except HubError as e:
            failed.append(Failure(mid, e.status, one_line(str(e))))
            continue
        except Exception as e:  # one odd folder never stops the others
            failed.append(Failure(mid, UNEXPECTED, unexpected(mid, e)))
            continue
        if claim.moved is not None and model.record.revision != claim.moved.revision:
            failed.append(Failure(mid, "duplicate_id", moved_other(claim)))
            continue
        getattr(tally, store.upsert_model(model.record)).append(mid)  # new, changed, unchanged
    tally.failed.extend(failed)
    for repo_id, (commit, folder) in snapshots.items():
        add_snapshot(store, tally, repo_id, commit, folder, named=True)
    return tally.summary()


def _unreadable(model_id: str, err: Exception) -> str:
    return (
        f"{model_id}: cannot read its weights ({err}); check the files and run `lineage add` again"
    )


def fingerprint_models(
    store: Store,
    ids: Sequence[str] = (),
    *,
    everything: bool = False,
    device: str = "auto",
    params: SignatureParams | None = None,
    progress: Progress | None = None,
    executor: Executor | None = None,
) -> FingerprintSummary:
    """Compute and store signatures.

    Args:
        ids: these models (recomputed even when current). Empty: every model whose stored
            signature is missing or stale and whose status deserves another try
            (`lineage.policy`, context `fingerprint`).
        everything: recompute every such model, current or not.
        device: "auto", "cpu" or "cuda".
        params: signature parameters (default `SignatureParams()`).
        progress: called as (done, total, model id) after each model.
        executor: where signatures are computed (default: one local thread, models in turn).
    """
    catalogue = Catalogue(store, params or SignatureParams())
    skipped: list[str] = []
    if ids:
        records = [store.require_model(i) for i in ids]
    else:
        records = []
        for r in store.models():
            if retries(r.status, Context.FINGERPRINT) and (
                everything or not catalogue.is_current(r)
            ):
                records.append(r)
            else:
                skipped.append(r.id)
    done: list[str] = []
    failed: list[Failure] = []
    total_bytes = 0
    engine = Engine(
        open_model=open_source,
        model_id=lambda r: r.id,
        unreadable=_unreadable,
        executor=executor or ThreadExecutor(1),
        params=catalogue.params,
        device=device,
    )
    try:
        for i, outcome in enumerate(engine.run(records)):
            rec = outcome.job
            store_outcome(catalogue, rec, outcome, upsert=False)
            if outcome.signature is not None:
                total_bytes += outcome.signature.bytes_read
                done.append(rec.id)
            else:
                failed.append(Failure(rec.id, outcome.status, outcome.reason))
            if progress is not None:
                progress(i + 1, len(records), rec.id)
    finally:
        if executor is None:
            engine.executor.close()
    return FingerprintSummary(tuple(done), tuple(skipped), tuple(failed), total_bytes)


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
