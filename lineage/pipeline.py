"""Library functions behind `lineage add`, `fingerprint` and `compare`.

Each takes a Store and plain arguments and returns a frozen summary, so everything the CLI does
is callable from Python. A model that cannot be read is reported (and, when it is in the store,
marked with its status and reason); it never stops the others.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fingerprint.comparison import DEFAULT_ALPHA, PairResult, compare
from fingerprint.signature import Signature, SignatureParams, compute_signature
from hub.errors import HubError
from hub.folders import find_model_dirs
from hub.local import open_local_model
from hub.records import ModelRecord
from lineage.catalogue import Catalogue
from lineage.engine import (
    UNEXPECTED,
    Engine,
    Executor,
    OpenedModel,
    ThreadExecutor,
    one_line,
    store_outcome,
    unexpected,
)
from lineage.errors import LineageError, UnknownModelError
from lineage.policy import Context, retries
from lineage.store import Store

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True, slots=True)
class Failure:
    """A model that could not be handled: its id (or path), status code and one-line reason."""

    model: str
    status: str
    reason: str


@dataclass(frozen=True, slots=True)
class AddSummary:
    """What an add did, by model id. `skipped`: cached repos without weights to read (a
    tokenizer or a config downloaded alone), left out of a whole-cache add without an error."""

    new: tuple[str, ...]
    changed: tuple[str, ...]
    unchanged: tuple[str, ...]
    failed: tuple[Failure, ...]
    skipped: tuple[Failure, ...] = ()

    def __add__(self, other: AddSummary) -> AddSummary:
        return AddSummary(
            *(getattr(self, f) + getattr(other, f) for f in AddSummary.__dataclass_fields__)
        )


@dataclass(frozen=True, slots=True)
class FingerprintSummary:
    fingerprinted: tuple[str, ...]
    skipped: tuple[str, ...]
    failed: tuple[Failure, ...]
    bytes_read: int


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
    candidates, failed = _found_folders(paths, model_id)
    tally = _Tally()
    snapshots: dict[str, tuple[str, Path]] = {}
    if model_id is None:  # a snapshot named with --id is a folder like any other
        candidates, snapshots = _cached_snapshots(candidates, tally)
    for claim in _claim_ids(store, candidates, model_id, failed):
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
            failed.append(Failure(mid, "duplicate_id", _moved_other(claim)))
            continue
        getattr(tally, store.upsert_model(model.record)).append(mid)  # new, changed, unchanged
    tally.failed.extend(failed)
    for repo_id, (commit, folder) in snapshots.items():
        _add_snapshot(store, tally, repo_id, commit, folder, named=True)
    return tally.summary()


def add_hf_cache(
    store: Store,
    repo_ids: Sequence[str] = (),
    *,
    cache_dir: str | os.PathLike[str] | None = None,
) -> AddSummary:
    """Register models of the local Hugging Face cache under their repo ids and revisions.

    Each repo gives one snapshot: the one `refs/main` points at, else the most recently
    modified (`hub.cache.cached_models`). It is stored with source "cache", its commit as
    revision and the snapshot folder as path, so it is read from disk, never downloaded.
    A repo whose id is already stored from elsewhere is refused, not stored over: a local
    folder, or a Hub model at another revision (`lineage crawl` updates that one); a Hub model
    at the same revision is left as it is (its reads already use this snapshot).

    Args:
        store: where the models go.
        repo_ids: only these repos (each one missing from the cache is a failure); empty:
            every model repo in the cache, skipping those whose snapshot holds no weights.
        cache_dir: the hub cache folder (default: `hub.cache.default_cache_dir()`, from
            HF_HUB_CACHE or HF_HOME).
    """
    from hub.cache import cached_models, default_cache_dir

    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    snapshots = {repo: (commit, folder) for repo, commit, folder in cached_models(root)}
    wanted = list(dict.fromkeys(repo_ids)) or sorted(snapshots)
    tally = _Tally()
    for repo_id in wanted:
        if repo_id not in snapshots:
            tally.failed.append(
                Failure(
                    repo_id,
                    "not_found",
                    f"{repo_id} is not in the Hugging Face cache at {root} (HF_HUB_CACHE, "
                    f"HF_HOME); download it first (`hf download {repo_id}`) or crawl it",
                )
            )
            continue
        commit, folder = snapshots[repo_id]
        _add_snapshot(store, tally, repo_id, commit, folder, named=bool(repo_ids))
    return tally.summary()


@dataclass(slots=True)
class _Tally:
    """What an add did so far, as lists (an `AddSummary` once done)."""

    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    skipped: list[Failure] = field(default_factory=list)

    def summary(self) -> AddSummary:
        return AddSummary(
            tuple(self.new),
            tuple(self.changed),
            tuple(self.unchanged),
            tuple(self.failed),
            tuple(self.skipped),
        )


def _add_snapshot(
    store: Store, tally: _Tally, repo_id: str, commit: str, folder: Path, *, named: bool
) -> None:
    """Store one cached snapshot as `repo_id` at `commit` (see `add_hf_cache` for the rules).
    `named`: asked for by name, so a snapshot without weights is a failure, not a skip."""
    from hub.errors import NoSafetensorsError

    stored = store.get_model(repo_id)
    if stored is not None and stored.source == "hub" and stored.revision == commit:
        tally.unchanged.append(repo_id)
        return
    refusal = _cache_refusal(stored, repo_id, commit)
    if refusal is not None:
        tally.failed.append(Failure(repo_id, "duplicate_id", refusal))
        return
    try:
        model = open_local_model(folder, model_id=repo_id, source="cache", revision=commit)
    except NoSafetensorsError as e:
        failure = Failure(repo_id, e.status, one_line(str(e)))
        (tally.failed if named else tally.skipped).append(failure)
        return
    except HubError as e:
        tally.failed.append(Failure(repo_id, e.status, one_line(str(e))))
        return
    except Exception as e:  # one odd snapshot never stops the others
        tally.failed.append(Failure(repo_id, UNEXPECTED, unexpected(repo_id, e)))
        return
    getattr(tally, store.upsert_model(model.record)).append(repo_id)


def _cached_snapshots(
    candidates: list[tuple[str, Path]], tally: _Tally
) -> tuple[list[tuple[str, Path]], dict[str, tuple[str, Path]]]:
    """Split found folders into plain folders and HF cache snapshots, one snapshot per repo
    (the one `hub.cache.cached_models` picks; other revisions found are skipped)."""
    from hub.cache import cached_models, snapshot_of

    plain: list[tuple[str, Path]] = []
    found: dict[str, list[tuple[str, Path]]] = {}
    for mid, folder in candidates:
        snap = snapshot_of(folder)
        if snap is None:
            plain.append((mid, folder))
        else:
            found.setdefault(snap[0], []).append((snap[1], folder))
    chosen: dict[str, tuple[str, Path]] = {}
    for repo_id, snaps in sorted(found.items()):
        pick = snaps[0]
        if len(snaps) > 1:
            cache_root = snaps[0][1].parents[2]
            current = {r: c for r, c, _ in cached_models(cache_root)}.get(repo_id)
            pick = next((s for s in snaps if s[0] == current), max(snaps))
        chosen[repo_id] = pick
        for commit, folder in snaps:
            if (commit, folder) != pick:
                tally.skipped.append(
                    Failure(
                        repo_id,
                        "other_revision",
                        f"{repo_id}: the cached revision {commit[:12]} at {folder} was not "
                        f"added; the store keeps one revision per model ({pick[0][:12]})",
                    )
                )
    return plain, chosen


def _cache_refusal(stored: ModelRecord | None, repo_id: str, commit: str) -> str | None:
    """Why a cached snapshot may not be stored under `repo_id`, or None when it may."""
    if stored is None or stored.source == "cache":
        return None
    if stored.source == "hub":
        return (
            f"{repo_id}: stored from the Hub at revision {(stored.revision or '?')[:12]}, and the cache "
            f"holds {commit[:12]}; run `lineage crawl` to update it, or read it from the cache "
            "in another --db"
        )
    return (
        f"{repo_id}: already stored from {stored.path or stored.source}, so its cached "
        f"snapshot was not added; add the folder under another id with `lineage add PATH --id "
        "ORG/NAME`, or use another --db"
    )


_ID_HINT = "add it alone with `lineage add PATH --id ORG/NAME` to name it"
_IDS_HINT = "add each alone with `lineage add PATH --id ORG/NAME` to name it"


@dataclass(frozen=True, slots=True)
class _Claim:
    """A folder that may be stored under `model_id`; `moved`: the record of its old place."""

    model_id: str
    folder: Path
    moved: ModelRecord | None = None


def _moved_other(claim: _Claim) -> str:
    # a vanished folder's id passes to a folder with the same weights only (a move)
    old = claim.moved.path if claim.moved else "?"
    return (
        f"{claim.model_id}: stored from {old}, which is gone, with other weights than "
        f"{claim.folder}, so it was not replaced; {_ID_HINT}"
    )


def _found_folders(
    paths: Iterable[str | os.PathLike[str]], model_id: str | None
) -> tuple[list[tuple[str, Path]], list[Failure]]:
    """(id, resolved folder) of every model folder below `paths`, once each; and failures."""
    paths = list(paths)
    if model_id is not None and len(paths) != 1:
        raise LineageError(f"--id {model_id} names one model: pass exactly one model folder")
    found: dict[Path, str] = {}
    failed: list[Failure] = []
    for path in paths:
        try:
            dirs = find_model_dirs(path)
        except HubError as e:
            failed.append(Failure(str(path), e.status, str(e)))
            continue
        if not dirs:
            failed.append(
                Failure(str(path), "not_found", f"{path}: no model folders found below it")
            )
        if model_id is not None and [d for _, d in dirs] != [Path(path)]:
            raise LineageError(
                f"--id {model_id} names one model, and {path} is not a model folder; "
                "pass the model folder itself"
            )
        for mid, folder in dirs:
            found.setdefault(folder.resolve(), model_id or mid)
    return [(mid, folder) for folder, mid in found.items()], failed


def _stored_elsewhere(store: Store, mid: str, folder: Path) -> tuple[str | None, _Claim]:
    """Where stored `mid` lives when that is another place (None: free or this folder), and
    the claim of `folder` to it (moved when the stored folder is gone)."""
    rec = store.get_model(mid)
    if rec is None:
        return None, _Claim(mid, folder)
    if rec.source != "local" or not rec.path:
        return f"the {rec.source}", _Claim(mid, folder)
    stored = Path(rec.path).resolve()
    if stored == folder:
        return None, _Claim(mid, folder)
    if not stored.is_dir():
        return None, _Claim(mid, folder, moved=rec)
    return str(stored), _Claim(mid, folder)


def _claim_ids(
    store: Store,
    candidates: list[tuple[str, Path]],
    model_id: str | None,
    failed: list[Failure],
) -> list[_Claim]:
    """The folders that may be stored, under which id; each refused id becomes one failure."""
    # a folder already stored keeps its id, whatever the rule says today
    stored_ids = {
        Path(r.path).resolve(): r.id for r in store.models() if r.source == "local" and r.path
    }
    by_id: dict[str, list[Path]] = {}
    for mid, folder in candidates:
        known = stored_ids.get(folder)
        if known is not None and model_id is not None and known != model_id:
            failed.append(
                Failure(
                    model_id,
                    "duplicate_id",
                    f"{folder} is already stored as {known}; not added again as {model_id}",
                )
            )
            continue
        by_id.setdefault(known or mid, []).append(folder)
    accepted: list[_Claim] = []
    for mid, folders in sorted(by_id.items()):
        if len(folders) > 1 and not any(stored_ids.get(f) == mid for f in folders):
            both = " and ".join(str(f) for f in folders)
            failed.append(
                Failure(
                    mid,
                    "duplicate_id",
                    f"{mid}: {both} would both get this id, so neither was added; {_IDS_HINT}",
                )
            )
            continue
        for folder in folders:  # the stored folder stays; any other one is refused
            taken, claim = _stored_elsewhere(store, mid, folder)
            if taken is None:
                accepted.append(claim)
                continue
            failed.append(
                Failure(
                    mid,
                    "duplicate_id",
                    f"{mid}: already stored from {taken}, so {folder} was not added; {_ID_HINT}",
                )
            )
    return accepted


def open_source(record: ModelRecord) -> OpenedModel:
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
    """Store `sig` as the signature of `record` (see `lineage.catalogue.Catalogue.put`)."""
    Catalogue(store, sig.params).put(record, sig)


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


# A Hub reference where a path could go: org/name, optionally @revision (a branch, tag or sha).
_HUB_REF = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}(@[\w./-]{1,128})?")


def resolve_signature(
    store: Store | None,
    ref: str,
    *,
    device: str = "auto",
    params: SignatureParams | None = None,
) -> Signature:
    """The signature of `ref`: a model id in the store, else a local model folder, else a Hub
    repo id (`org/name`, or `org/name@REVISION`) read from the configured endpoint.

    A stored model without a current signature (`lineage.catalogue`: its revision and these
    parameters) is fingerprinted and the signature stored; a folder or a Hub model that is not
    in the store is fingerprinted without storing anything (a Hub model reads only its windows,
    and reuses the HF cache's snapshot when there is one).
    """
    params = params or SignatureParams()
    record = store.get_model(ref) if store is not None else None
    if store is not None and record is not None:
        catalogue = Catalogue(store, params)
        sig = catalogue.load(record)
        if sig is None:
            sig = compute_signature(open_source(record), params=params, device=device)
            catalogue.put(record, sig)
        return sig
    if Path(ref).is_dir():
        model = open_local_model(ref, model_id=ref)
        return compute_signature(model, params=params, device=device)
    if _HUB_REF.fullmatch(ref):
        from hub.hubsource import open_hub_model

        repo_id, _, revision = ref.partition("@")
        try:
            hub_model = open_hub_model(repo_id, revision=revision or None)
        except HubError as err:
            raise UnknownModelError(
                ref,
                f"{ref!r} is neither a model in the database nor a folder, and the Hub could "
                f"not give it ({one_line(str(err), 300)}); pass a folder path or a repo id the "
                "endpoint has, or `lineage add` it first",
            ) from None
        return compute_signature(hub_model, params=params, device=device)
    raise UnknownModelError(
        ref,
        f"{ref!r} is neither a model in the database, a model folder nor a Hub id (org/name); "
        "pass a folder path or a repo id, or `lineage add` it first",
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
