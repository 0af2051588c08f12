"""The repos the local Hub server serves: the manifest, the files, their hashes and the API records.

Layout (docs/contracts.md): `<root>/manifest.json` lists `ModelMeta` records and
`<root>/repos/<org>/<name>/` holds each repo's files. A folder without a manifest entry is served
with default metadata; a manifest entry without a folder is served with no files.

Identifiers are deterministic across copies of a zoo:

- a file's git oid is the sha1 of its git blob (`blob <size>\\0<content>`), or, for LFS files
  (weights, or anything of 10 MiB or more), the sha1 of its LFS pointer; the LFS oid is the sha256
  of the content;
- a repo's `sha` is the sha1 of its sorted `(path, oid)` list, so any change of content, name or
  set of files gives a new sha.

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
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

MANIFEST = "manifest.json"
REPOS_DIR = "repos"
LFS_SUFFIXES = (
    ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".gguf", ".npz",
    ".npy", ".pkl", ".pickle", ".zip", ".tar", ".gz", ".zst", ".arrow", ".parquet",
)  # fmt: skip
LFS_MIN_SIZE = 10 * 2**20
# `org/name` or `name`; each part starts with a letter or digit, so `..` can never escape the root.
REPO_ID = re.compile(r"(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*")
_SKIP_DIRS = {".git", ".cache", "__pycache__"}
_CHUNK = 8 * 2**20
_MAX_HEADER = 100 * 2**20

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


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git LFS pointer text stored in git for a large file."""
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
    )


def is_lfs(path: str, size: int) -> bool:
    """Whether the Hub would store this file with LFS."""
    return path.lower().endswith(LFS_SUFFIXES) or size >= LFS_MIN_SIZE


def iso(ts: float) -> str:
    """A POSIX time as the Hub writes dates (`2024-01-31T12:00:00.000Z`)."""
    when = datetime.fromtimestamp(ts, tz=timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


class RepoStore:
    """Reads a zoo folder and answers what the server needs about its repos. Thread-safe."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self._lock = threading.Lock()
        self._hashes: dict[tuple, tuple[str, str | None, int | None]] = {}
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
        if self._folder(repo_id).is_dir():
            return {"id": repo_id}
        return None

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

    def _folder(self, repo_id: str) -> Path:
        return self.root / REPOS_DIR / repo_id

    def _folder_ids(self) -> list[str]:
        base = self.root / REPOS_DIR
        if not base.is_dir():
            return []
        ids: list[str] = []
        for org in sorted(p for p in base.iterdir() if p.is_dir()):
            ids.extend(f"{org.name}/{repo.name}" for repo in sorted(org.iterdir()) if repo.is_dir())
        return ids

    # -- files ----------------------------------------------------------------------------------

    def listing(self, repo_id: str) -> list[tuple[str, Path, os.stat_result]]:
        """`(path in repo, path on disk, stat)` of the repo's files, sorted; nothing is read."""
        folder = self._folder(repo_id)
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
            dirs=_tree_oids(files),
        )

    def _file(self, rel: str, abspath: Path, st: os.stat_result) -> RepoFile:
        key = _stat_key(abspath, st)
        with self._lock:
            cached = self._hashes.get(key)
        if cached is None:
            cached = _hash_file(abspath, rel, st.st_size)
            with self._lock:
                self._hashes[key] = cached
        oid, sha256, pointer_size = cached
        return RepoFile(rel, abspath, st.st_size, oid, sha256, pointer_size)

    def safetensors_header(self, abspath: Path, st: os.stat_result) -> dict[str, Any] | None:
        """The parsed JSON header of a safetensors file, None if it does not parse."""
        key = _stat_key(abspath, st)
        with self._lock:
            if key in self._headers:
                return self._headers[key]
        header = _read_safetensors_header(abspath, st.st_size)
        with self._lock:
            self._headers[key] = header
        return header

    # -- API records ----------------------------------------------------------------------------

    def record(
        self, repo_id: str, fields: tuple[str, ...] | list[str], *, blobs: bool = False
    ) -> dict[str, Any] | None:
        """The model JSON the Hub API returns, restricted to `fields` plus `id`, `_id`, `modelId`.

        Args:
            repo_id: the repo.
            fields: API field names (see `EXPAND_FIELDS`); names we cannot fill are left out.
            blobs: give siblings their size, blob id and LFS info (`model_info(files_metadata=True)`).
        """
        meta = self.meta(repo_id)
        if meta is None:
            return None
        # Hash content only for fields that show hashes; the rest needs a directory walk at most.
        snap = self.snapshot(repo_id) if blobs or "sha" in fields else None
        files = self.listing(repo_id) if FILE_FIELDS.intersection(fields) else []
        out: dict[str, Any] = {
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
            "id": repo_id,
        }
        for name in fields:
            value = self._field(name, meta, snap, files, blobs)
            if value is not None:
                out[name] = value
        out["modelId"] = repo_id
        return out

    def _field(
        self,
        name: str,
        meta: dict,
        snap: RepoSnapshot | None,
        files: list[tuple[str, Path, os.stat_result]],
        blobs: bool,
    ) -> Any:
        repo_id = meta["id"]
        if name == "sha":
            return snap.sha if snap else None
        if name == "siblings":
            if blobs and snap is not None:
                return [_sibling(f) for f in snap.files]
            return [{"rfilename": rel} for rel, _, _ in files]
        if name == "usedStorage":
            return sum(st.st_size for _, _, st in files)
        if name == "safetensors":
            return self._parameters(files)
        if name == "cardData":
            return self._card_of(repo_id)
        if name == "config":
            return _read_json(self._folder(repo_id) / "config.json")
        if name == "tags":
            return _tags(meta, self._card_of(repo_id))
        if name == "lastModified":
            return meta.get("lastModified") or self._mtime(files)
        if name == "createdAt":
            return meta.get("createdAt") or meta.get("lastModified") or self._mtime(files)
        if name == "downloadsAllTime":
            return meta.get(name, meta.get("downloads", 0))
        if name == "author":
            return meta.get("author") or (repo_id.split("/")[0] if "/" in repo_id else None)
        return meta.get(name, _DEFAULTS.get(name))

    def _card_of(self, repo_id: str) -> dict | None:
        readme = self._folder(repo_id) / "README.md"
        return parse_front_matter(readme.read_text(errors="replace")) if readme.is_file() else None

    def _mtime(self, files: list[tuple[str, Path, os.stat_result]]) -> str:
        return iso(max((st.st_mtime for _, _, st in files), default=0.0))

    def _parameters(self, files: list[tuple[str, Path, os.stat_result]]) -> dict[str, Any] | None:
        params: dict[str, int] = {}
        found = False
        for rel, abspath, st in files:
            if "/" in rel or not rel.endswith(".safetensors"):
                continue
            header = self.safetensors_header(abspath, st)
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


def parse_front_matter(text: str) -> dict[str, Any] | None:
    """The YAML front matter of a model card, None if absent or not a mapping."""
    if not text.startswith("---"):
        return None
    lines = text.splitlines()
    for end in range(1, len(lines)):
        if lines[end].strip() == "---":
            try:
                data = yaml.safe_load("\n".join(lines[1:end]))
            except yaml.YAMLError:
                return None
            return data if isinstance(data, dict) else None
    return None


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


def _tags(meta: dict, card: dict | None) -> list[str]:
    """Manifest tags plus the `base_model:` tags the Hub derives from the card."""
    tags = list(meta.get("tags") or [])
    if card:
        bases = card.get("base_model") or []
        bases = [bases] if isinstance(bases, str) else [b for b in bases if isinstance(b, str)]
        relation = card.get("base_model_relation")
        for base in bases:
            tags.append(f"base_model:{base}")
            if isinstance(relation, str):
                tags.append(f"base_model:{relation}:{base}")
        if isinstance(card.get("license"), str):
            tags.append(f"license:{card['license']}")
    return list(dict.fromkeys(tags))


def _sibling(f: RepoFile) -> dict[str, Any]:
    out: dict[str, Any] = {"rfilename": f.path, "size": f.size, "blobId": f.oid}
    if f.sha256 is not None:
        out["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": f.pointer_size}
    return out


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _stat_key(abspath: Path, st: os.stat_result) -> tuple:
    return (str(abspath), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _hash_file(abspath: Path, rel: str, size: int) -> tuple[str, str | None, int | None]:
    """(git oid, sha256 or None, pointer size or None), reading the file once in chunks."""
    lfs = is_lfs(rel, size)
    h = hashlib.sha256() if lfs else hashlib.sha1(f"blob {size}\0".encode())
    with open(abspath, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    if not lfs:
        return h.hexdigest(), None, None
    pointer = lfs_pointer(h.hexdigest(), size)
    oid = hashlib.sha1(f"blob {len(pointer)}\0".encode() + pointer).hexdigest()
    return oid, h.hexdigest(), len(pointer)


def _tree_oids(files: list[RepoFile]) -> dict[str, str]:
    """A deterministic oid for every directory (and "" for the root), from its content."""
    lines: dict[str, list[str]] = {"": []}
    for f in files:
        parts = f.path.split("/")
        for depth in range(len(parts)):
            lines.setdefault("/".join(parts[:depth]), []).append(f"{f.path}\0{f.oid}")
    return {d: hashlib.sha1("\n".join(v).encode()).hexdigest() for d, v in lines.items()}


def _read_safetensors_header(path: Path, size: int) -> dict[str, Any] | None:
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
