"""Content identifiers of the emulated Hub: git blob oids, LFS pointers and oids, tree oids.

Identifiers are deterministic across copies of a zoo:

- a file's git oid is the sha1 of its git blob (`blob <size>\\0<content>`), or, for LFS files
  (weights, or anything of 10 MiB or more), the sha1 of its LFS pointer; the LFS oid is the sha256
  of the content (and the file's ETag);
- a directory's oid is the sha1 of the `(path, oid)` lines of the files under it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

__all__ = [
    "LFS_MIN_SIZE",
    "LFS_SUFFIXES",
    "FileHashes",
    "hash_file",
    "is_lfs",
    "lfs_pointer",
    "stat_key",
    "tree_oids",
]

LFS_SUFFIXES = (
    ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".gguf", ".npz",
    ".npy", ".pkl", ".pickle", ".zip", ".tar", ".gz", ".zst", ".arrow", ".parquet",
)  # fmt: skip
LFS_MIN_SIZE = 10 * 2**20
_CHUNK = 8 * 2**20

# (git oid, LFS sha256 or None, LFS pointer size or None): what hashing a file yields.
FileHashes = tuple[str, str | None, int | None]


class _Hashed(Protocol):
    @property
    def path(self) -> str: ...

    @property
    def oid(self) -> str: ...


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git LFS pointer text stored in git for a large file."""
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
    )


def is_lfs(path: str, size: int) -> bool:
    """Whether the Hub would store this file with LFS."""
    return path.lower().endswith(LFS_SUFFIXES) or size >= LFS_MIN_SIZE


def stat_key(abspath: Path, st: os.stat_result) -> tuple:
    """What identifies a file's content without reading it: path, size, times and inode."""
    return (str(abspath), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def hash_file(abspath: Path, rel: str, size: int) -> FileHashes:
    """(git oid, sha256 or None, pointer size or None), reading the file once in chunks.

    Args:
        abspath: the file on disk.
        rel: its path in the repo (the suffix decides LFS).
        size: its size in bytes.
    """
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


def tree_oids(files: Sequence[_Hashed]) -> dict[str, str]:
    """A deterministic oid for every directory (and "" for the root), from its content."""
    lines: dict[str, list[str]] = {"": []}
    for f in files:
        parts = f.path.split("/")
        for depth in range(len(parts)):
            lines.setdefault("/".join(parts[:depth]), []).append(f"{f.path}\0{f.oid}")
    return {d: hashlib.sha1("\n".join(v).encode()).hexdigest() for d, v in lines.items()}
