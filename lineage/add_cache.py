"""`lineage add --hf-cache` and cached snapshots met by a folder add: models of the local
Hugging Face cache stored under their repo ids and revisions (source "cache"), read from disk,
never downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from hub.errors import HubError
from hub.local import open_local_model
from hub.records import ModelRecord
from lineage.engine import UNEXPECTED, one_line, unexpected
from lineage.pipeline_records import AddSummary, AddTally, Failure
from lineage.store import Store


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
    tally = AddTally()
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
        add_snapshot(store, tally, repo_id, commit, folder, named=bool(repo_ids))
    return tally.summary()


def add_snapshot(
    store: Store, tally: AddTally, repo_id: str, commit: str, folder: Path, *, named: bool
) -> None:
    """Store one cached snapshot as `repo_id` at `commit` (see `add_hf_cache` for the rules).
    `named`: asked for by name, so a snapshot without weights is a failure, not a skip."""
    from hub.errors import NoSafetensorsError

    stored = store.get_model(repo_id)
    if stored is not None and stored.source == "hub" and stored.revision == commit:
        tally.unchanged.append(repo_id)
        return
    refusal = cache_refusal(stored, repo_id, commit)
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


def cached_snapshots(
    candidates: list[tuple[str, Path]], tally: AddTally
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


def cache_refusal(stored: ModelRecord | None, repo_id: str, commit: str) -> str | None:
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
