"""The repos the emulated Hub serves: the manifest, each repo's files and their cached hashes.

Layout (docs/contracts.md): `<root>/manifest.json` lists `ModelMeta` records and
`<root>/repos/<org>/<name>/` holds each repo's files. A folder without a manifest entry is served
with default metadata; a manifest entry without a folder is served with no files.

A repo's `sha` is the sha1 of its sorted `(path, oid)` list (oids: `hub.emulator.hashing`), so
any change of content, name or set of files gives a new sha.

Content hashes are cached by `(path, size, mtime_ns, ctime_ns, inode)`, so a 4 GB file is read once
per change. Rewriting a file of the same size within one tick of the file system clock keeps the
old key: call `RepoStore.invalidate()` after such an edit.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hub.emulator.hashing import FileHashes, hash_file, stat_key, tree_oids

__all__ = ["MANIFEST", "REPOS_DIR", "REPO_ID", "RepoFile", "RepoSnapshot", "RepoStore"]

MANIFEST = "manifest.json"
REPOS_DIR = "repos"
# `org/name` or `name`; each part starts with a letter or digit, so `..` can never escape the root.
REPO_ID = re.compile(r"(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*")
_SKIP_DIRS = {".git", ".cache", "__pycache__"}
_MAX_HEADER = 100 * 2**20

# (path in repo, path on disk, stat) of one file, as `RepoStore.listing` gives them.
Listing = list[tuple[str, Path, os.stat_result]]
_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class RepoFile:
    """One served file.

    Attributes:
        path: path inside the repo, with `/`.
        abspath: where it lies on disk.
        size: bytes.
        oid: git blob oid (of the LFS pointer for LFS files).
        sha256: LFS oid (sha256 of the content), None for plain git files.
        pointer_size: size of the LFS pointer, None for plain git files.
    """

    path: str
    abspath: Path
    size: int
    oid: str
    sha256: str | None = None
    pointer_size: int | None = None

    @property
    def etag(self) -> str:
        """The ETag the Hub sends: the LFS sha256 for LFS files, else the git oid (unquoted)."""
        return self.sha256 or self.oid


@dataclass(frozen=True, slots=True)
class RepoSnapshot:
    """A repo at one moment: metadata, files (sorted by path) and the derived sha."""

    id: str
    meta: dict[str, Any]
    files: tuple[RepoFile, ...]
    sha: str
    by_path: dict[str, RepoFile] = field(repr=False)
    dirs: dict[str, str] = field(repr=False)  # directory path -> tree oid ("" is the root)


class RepoStore:
    """Reads a zoo folder and answers what the server needs about its repos. Thread-safe."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self._lock = threading.Lock()
        self._hashes: dict[tuple, FileHashes] = {}
        self._headers: dict[tuple, dict[str, Any] | None] = {}
        self._manifest_key: tuple | None = None
        self._meta: dict[str, dict[str, Any]] = {}
        self._order: list[str] = []

    # -- metadata -------------------------------------------------------------------------------

    def ids(self) -> list[str]:
        """All repo ids: manifest order first, then folders without a manifest entry, sorted."""
        self._load_manifest()
        extra = sorted(set(self._folder_ids()) - set(self._meta))
        return self._order + extra

    def meta(self, repo_id: str) -> dict[str, Any] | None:
        """The manifest record of a repo (a default one for a bare folder), None if unknown."""
        self._load_manifest()
        if not REPO_ID.fullmatch(repo_id):
            return None
        if repo_id in self._meta:
            return self._meta[repo_id]
        if self.folder(repo_id).is_dir():
            return {"id": repo_id}
        return None

    def folder(self, repo_id: str) -> Path:
        """Where a repo's files lie (the folder may not exist)."""
        return self.root / REPOS_DIR / repo_id

    def invalidate(self) -> None:
        """Forget cached hashes, headers and manifest; the next request re-reads everything."""
        with self._lock:
            self._hashes.clear()
            self._headers.clear()
            self._manifest_key = None

    def load_hashes(self, path: str | os.PathLike[str]) -> int:
        """Read content hashes saved by `save_hashes`; entries whose file changed never match.

        Returns:
            The number of entries read (0 when the file does not exist or does not parse).
        """
        try:
            rows = json.loads(Path(path).read_text())["files"]
            entries = {tuple(row[:5]): tuple(row[5:]) for row in rows if len(row) == 8}
        except (OSError, ValueError, KeyError, TypeError):
            return 0
        with self._lock:
            self._hashes.update(entries)
        return len(entries)

    def save_hashes(self, path: str | os.PathLike[str]) -> None:
        """Write the known content hashes to `path` (atomically), for the next server."""
        with self._lock:
            rows = [[*key, *value] for key, value in self._hashes.items()]
        target = Path(path)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"version": 1, "files": rows}))
        os.replace(tmp, target)

    def _load_manifest(self) -> None:
        path = self.root / MANIFEST
        try:
            st = path.stat()
            key: tuple | None = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        except FileNotFoundError:
            key = None
        with self._lock:
            if key == self._manifest_key and (key is not None or not self._meta):
                return
            models = json.loads(path.read_text())["models"] if key is not None else []
            self._meta = {m["id"]: m for m in models}
            self._order = [m["id"] for m in models]
            self._manifest_key = key

    def _folder_ids(self) -> list[str]:
        base = self.root / REPOS_DIR
        if not base.is_dir():
            return []
        ids: list[str] = []
        for org in sorted(p for p in base.iterdir() if p.is_dir()):
            ids.extend(f"{org.name}/{repo.name}" for repo in sorted(org.iterdir()) if repo.is_dir())
        return ids

    # -- files ----------------------------------------------------------------------------------

    def listing(self, repo_id: str) -> Listing:
        """`(path in repo, path on disk, stat)` of the repo's files, sorted; nothing is read."""
        folder = self.folder(repo_id)
        out = []
        if folder.is_dir():
            for dirpath, dirnames, filenames in os.walk(folder):
                dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
                for name in filenames:
                    abspath = Path(dirpath) / name
                    out.append((abspath.relative_to(folder).as_posix(), abspath, abspath.stat()))
        out.sort(key=lambda item: item[0])
        return out

    def snapshot(self, repo_id: str) -> RepoSnapshot | None:
        """The repo's files and sha as they are on disk now; None if the repo is unknown.

        Hashes content the first time a file (at its current size and mtime) is seen.
        """
        meta = self.meta(repo_id)
        if meta is None:
            return None
        files = [self._file(rel, abspath, st) for rel, abspath, st in self.listing(repo_id)]
        listing = "".join(f"{f.path}\0{f.oid}\n" for f in files)
        sha = hashlib.sha1(f"{repo_id}\n{listing}".encode()).hexdigest()
        return RepoSnapshot(
            id=repo_id,
            meta=meta,
            files=tuple(files),
            sha=sha,
            by_path={f.path: f for f in files},
            dirs=tree_oids(files),
        )

    def safetensors_header(self, abspath: Path, st: os.stat_result) -> dict[str, Any] | None:
        """The parsed JSON header of a safetensors file, None if it does not parse."""
        return self._cached(
            self._headers, stat_key(abspath, st), lambda: _read_header(abspath, st.st_size)
        )

    def _file(self, rel: str, abspath: Path, st: os.stat_result) -> RepoFile:
        oid, sha256, pointer_size = self._cached(
            self._hashes, stat_key(abspath, st), lambda: hash_file(abspath, rel, st.st_size)
        )
        return RepoFile(rel, abspath, st.st_size, oid, sha256, pointer_size)

    def _cached(self, cache: dict[tuple, _V], key: tuple, compute: Callable[[], _V]) -> _V:
        # Computed outside the lock: hashing a big file must not hold up every other request.
        with self._lock:
            if key in cache:
                return cache[key]
        value = compute()
        with self._lock:
            cache[key] = value
        return value


def _read_header(path: Path, size: int) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as fh:
            prefix = fh.read(8)
            if len(prefix) < 8:
                return None
            (n,) = struct.unpack("<Q", prefix)
            if n > min(_MAX_HEADER, size - 8):
                return None
            header = json.loads(fh.read(n))
    except (OSError, ValueError):
        return None
    return header if isinstance(header, dict) else None
