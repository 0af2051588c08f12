"""The JSON records the emulated Hub API returns: model records, siblings and tree entries.

A model record is filled field by field from a table (`_FIELDS`): each API field names where its
value comes from (the manifest, the card, the files on disk, their hashes). Fields without an
entry are copied from the manifest, with the Hub's defaults.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hub.emulator.cards import card_tags, parse_front_matter
from hub.emulator.repos import Listing, RepoFile, RepoSnapshot, RepoStore

__all__ = [
    "EXPAND_FIELDS",
    "FILE_FIELDS",
    "INFO_DEFAULT_FIELDS",
    "LIST_DEFAULT_FIELDS",
    "LIST_FULL_FIELDS",
    "iso",
    "model_record",
    "tree_children",
    "tree_entry",
]

# Fields `expand` may name on the real Hub (huggingface_hub's ExpandModelProperty_T). We fill the
# ones a folder can answer; the others are accepted and left out.
# fmt: off
EXPAND_FIELDS = frozenset((
    "author", "baseModels", "cardData", "childrenModelCount", "config", "createdAt", "disabled",
    "downloads", "downloadsAllTime", "evalResults", "gated", "gguf", "inference",
    "inferenceProviderMapping", "lastModified", "library_name", "likes", "mask_token",
    "model-index", "pipeline_tag", "private", "resourceGroup", "safetensors", "sha", "siblings",
    "spaces", "tags", "transformersInfo", "trendingScore", "usedStorage", "widgetData",
))
# What the Hub returns without `expand`: listings, listings with full=True, and model_info.
LIST_DEFAULT_FIELDS = (
    "likes", "trendingScore", "private", "downloads", "tags", "pipeline_tag", "library_name",
    "createdAt",
)
LIST_FULL_FIELDS = ("author", "sha", "lastModified", "gated", "disabled", "siblings")
INFO_DEFAULT_FIELDS = (
    "author", "sha", "lastModified", "private", "gated", "disabled", "downloads",
    "downloadsAllTime", "likes", "tags", "pipeline_tag", "library_name", "createdAt",
    "trendingScore", "cardData", "config", "siblings", "safetensors", "usedStorage",
)
# fmt: on
# Fields that need the repo's files (the others come from the manifest alone).
FILE_FIELDS = frozenset(
    {"sha", "siblings", "safetensors", "usedStorage", "lastModified", "createdAt"}
)
_DEFAULTS = {"private": False, "gated": False, "disabled": False, "downloads": 0, "likes": 0,
             "trendingScore": 0}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Sources:
    """What one record's fields are read from."""

    store: RepoStore
    meta: dict[str, Any]
    snap: RepoSnapshot | None  # only when a field shows hashes
    files: Listing  # only when a field needs the files
    blobs: bool

    @property
    def repo_id(self) -> str:
        return self.meta["id"]

    def card(self) -> dict | None:
        readme = self.store.folder(self.repo_id) / "README.md"
        return parse_front_matter(readme.read_text(errors="replace")) if readme.is_file() else None

    def mtime(self) -> str:
        return iso(max((st.st_mtime for _, _, st in self.files), default=0.0))


def model_record(
    store: RepoStore, repo_id: str, fields: tuple[str, ...] | list[str], *, blobs: bool = False
) -> dict[str, Any] | None:
    """The model JSON the Hub API returns, restricted to `fields` plus `id`, `_id`, `modelId`.

    Args:
        store: the served repos.
        repo_id: the repo.
        fields: API field names (see `EXPAND_FIELDS`); names we cannot fill are left out.
        blobs: give siblings their size, blob id and LFS info (`model_info(files_metadata=True)`).

    Returns:
        The record, None if the repo is unknown.
    """
    meta = store.meta(repo_id)
    if meta is None:
        return None
    # Hash content only for fields that show hashes; the rest needs a directory walk at most.
    sources = _Sources(
        store=store,
        meta=meta,
        snap=store.snapshot(repo_id) if blobs or "sha" in fields else None,
        files=store.listing(repo_id) if FILE_FIELDS.intersection(fields) else [],
        blobs=blobs,
    )
    out: dict[str, Any] = {"_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24], "id": repo_id}
    for name in fields:
        read = _FIELDS.get(name)
        value = read(sources) if read else meta.get(name, _DEFAULTS.get(name))
        if value is not None:
            out[name] = value
    out["modelId"] = repo_id
    return out


def _siblings(s: _Sources) -> list[dict[str, Any]]:
    if s.blobs and s.snap is not None:
        return [_sibling(f) for f in s.snap.files]
    return [{"rfilename": rel} for rel, _, _ in s.files]


def _sibling(f: RepoFile) -> dict[str, Any]:
    out: dict[str, Any] = {"rfilename": f.path, "size": f.size, "blobId": f.oid}
    if f.sha256 is not None:
        out["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": f.pointer_size}
    return out


def _parameters(s: _Sources) -> dict[str, Any] | None:
    """Parameter counts per dtype over the top-level safetensors files, as the Hub reports them."""
    params: dict[str, int] = {}
    found = False
    for rel, abspath, st in s.files:
        if "/" in rel or not rel.endswith(".safetensors"):
            continue
        header = s.store.safetensors_header(abspath, st)
        if header is None:
            continue
        found = True
        for name, info in header.items():
            if name == "__metadata__" or not isinstance(info, dict):
                continue
            count = 1
            for dim in info.get("shape", []):
                count *= int(dim)
            params[info["dtype"]] = params.get(info["dtype"], 0) + count
    return {"parameters": params, "total": sum(params.values())} if found else None


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _author(s: _Sources) -> str | None:
    return s.meta.get("author") or (s.repo_id.split("/")[0] if "/" in s.repo_id else None)


# API field -> where its value comes from; a field not listed is read from the manifest.
_FIELDS: dict[str, Callable[[_Sources], Any]] = {
    "sha": lambda s: s.snap.sha if s.snap else None,
    "siblings": _siblings,
    "usedStorage": lambda s: sum(st.st_size for _, _, st in s.files),
    "safetensors": _parameters,
    "cardData": lambda s: s.card(),
    "config": lambda s: _read_json(s.store.folder(s.repo_id) / "config.json"),
    "tags": lambda s: card_tags(s.meta, s.card()),
    "lastModified": lambda s: s.meta.get("lastModified") or s.mtime(),
    "createdAt": lambda s: s.meta.get("createdAt") or s.meta.get("lastModified") or s.mtime(),
    "downloadsAllTime": lambda s: s.meta.get("downloadsAllTime", s.meta.get("downloads", 0)),
    "author": _author,
}


def tree_entry(snap: RepoSnapshot, path: str, *, expand: bool = False) -> dict[str, Any] | None:
    """The tree / paths-info JSON entry of a file or directory, None if the path is absent."""
    file = snap.by_path.get(path)
    if file is not None:
        entry: dict[str, Any] = {"type": "file", "oid": file.oid, "size": file.size, "path": path}
        if file.sha256 is not None:
            entry["lfs"] = {"oid": file.sha256, "size": file.size, "pointerSize": file.pointer_size}
    elif path in snap.dirs and path:
        entry = {"type": "directory", "oid": snap.dirs[path], "size": 0, "path": path}
    else:
        return None
    if expand:
        date = snap.meta.get("lastModified") or iso(0)
        entry["lastCommit"] = {"id": snap.sha, "title": "Upload folder", "date": date}
        if entry["type"] == "file":
            entry["securityFileStatus"] = {
                "status": "safe",
                "avScan": None,
                "pickleImportScan": None,
            }
    return entry


def tree_children(snap: RepoSnapshot, folder: str, *, recursive: bool) -> list[str]:
    """Paths of the entries under `folder` ("" for the root): directories first, like the Hub."""
    prefix = f"{folder}/" if folder else ""
    paths = [p for p in (*snap.dirs, *snap.by_path) if p and p.startswith(prefix)]
    if not recursive:
        paths = [p for p in paths if "/" not in p[len(prefix) :]]
    return sorted(paths, key=lambda p: (p not in snap.dirs, p))


def iso(ts: float) -> str:
    """A POSIX time as the Hub writes dates (`2024-01-31T12:00:00.000Z`)."""
    when = datetime.fromtimestamp(ts, tz=timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
