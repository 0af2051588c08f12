"""Models already in the local Hugging Face cache, so they are never downloaded again.

The cache is found as huggingface_hub finds it (`HF_HUB_CACHE`, else `HF_HOME/hub`, else
`~/.cache/huggingface/hub`), but read from the environment at call time, so a test or a caller
that changes HF_HOME after import is honoured. A cached model opens as a `LocalModel` over its
snapshot folder (whose files are symlinks into `blobs/`), with the snapshot's commit as revision.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from huggingface_hub import CachedRepoInfo, CachedRevisionInfo, scan_cache_dir

from hub.errors import ModelNotFoundError
from hub.local import LocalModel, open_local_model


def default_cache_dir() -> Path:
    """The hub cache folder huggingface_hub would use, from the current environment."""
    explicit = os.getenv("HF_HUB_CACHE") or os.getenv("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(explicit)).expanduser()
    home = os.getenv("HF_HOME") or os.path.join(
        os.getenv("XDG_CACHE_HOME", os.path.join("~", ".cache")), "huggingface"
    )
    return Path(os.path.expandvars(home)).expanduser() / "hub"


# a snapshot folder as huggingface_hub lays it out: models--ORG--NAME/snapshots/COMMIT
_COMMIT = re.compile(r"[0-9a-f]{40}")


def snapshot_of(folder: str | os.PathLike[str]) -> tuple[str, str] | None:
    """(repo id, commit) when `folder` is a model snapshot folder of an HF cache
    (`.../models--ORG--NAME/snapshots/COMMIT`), else None. Only the path is looked at."""
    path = Path(folder)
    repo = path.parent.parent.name
    if path.parent.name != "snapshots" or not _COMMIT.fullmatch(path.name):
        return None
    if not repo.startswith("models--") or len(repo) == len("models--"):
        return None
    # huggingface_hub names the folder `models--` + repo_id with "/" as "--"
    return repo[len("models--") :].replace("--", "/"), path.name


def _current(repo: CachedRepoInfo) -> CachedRevisionInfo:
    # The revision `main` points at; without one, the newest (ties broken by commit, for
    # a deterministic answer).
    on_main = [r for r in repo.revisions if "main" in r.refs]
    pool = on_main or list(repo.revisions)
    return max(pool, key=lambda r: (r.last_modified, r.commit_hash))


def _model_repos(cache_dir: Path) -> dict[str, CachedRepoInfo]:
    if not cache_dir.is_dir():
        return {}
    info = scan_cache_dir(cache_dir)
    return {r.repo_id: r for r in info.repos if r.repo_type == "model" and r.revisions}


def cached_models(cache_dir: str | os.PathLike[str] | None = None) -> list[tuple[str, str, Path]]:
    """Models in the cache, one per repo, as (repo id, commit, snapshot folder), sorted by id.

    The revision is the one `refs/main` points at, else the most recently modified one.
    A missing cache folder is an empty cache. Repos the scan finds corrupted are left out.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    out = []
    for repo_id, repo in sorted(_model_repos(root).items()):
        rev = _current(repo)
        out.append((repo_id, rev.commit_hash, Path(rev.snapshot_path)))
    return out


def open_cached_model(repo_id: str, cache_dir: str | os.PathLike[str] | None = None) -> LocalModel:
    """Open the cached snapshot of `repo_id` (see `cached_models` for which revision).

    Raises:
        ModelNotFoundError: the repo is not in the cache.
        NoSafetensorsError, MalformedFileError: as `open_local_model`, e.g. a shard that was
            never downloaded.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    repo = _model_repos(root).get(repo_id)
    if repo is None:
        raise ModelNotFoundError(
            f"{repo_id} is not in the Hugging Face cache at {root}; download it first or "
            "read it from the Hub.",
            model_id=repo_id,
            path=str(root),
        )
    rev = _current(repo)
    return open_local_model(
        rev.snapshot_path, model_id=repo_id, source="cache", revision=rev.commit_hash
    )
