"""An on-disk cache of byte ranges of remote files, so re-fingerprinting costs no network.

A range is keyed by the file's content hash (the LFS sha256 the Hub gives for weights, else its
git blob id) and its absolute byte offsets `[start, end)`: content-addressed, so it can never
serve bytes of another version of a file, whatever the repo or revision.

Layout: `<root>/<hash[:2]>/<hash>/<start>-<end>.bin`, each file the bytes followed by a 16-byte
blake2b digest of them. Writes go to a temporary file in the same folder and are renamed into
place with `os.replace`, so a reader sees a whole entry or none. An entry whose length or digest
is wrong (a crash, a full disk, a stray edit) is ignored, deleted and fetched again.

The root is `$LINEAGE_CACHE/windows` when LINEAGE_CACHE is set, else
`~/.cache/model-lineage/windows`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import TypeGuard

__all__ = ["WindowCache", "default_cache_dir", "is_content_hash"]

_DIGEST = 16
# A content hash (LFS sha256, git blob sha1): hex digits only, so a key from a server can never
# name another folder (`..`, `/`).
_KEY = re.compile(r"^[0-9a-fA-F]{16,128}$")


def default_cache_dir() -> Path:
    """`$LINEAGE_CACHE/windows`, else `~/.cache/model-lineage/windows` (read at call time)."""
    base = os.environ.get("LINEAGE_CACHE")
    if base:
        return Path(os.path.expandvars(base)).expanduser() / "windows"
    return Path.home() / ".cache" / "model-lineage" / "windows"


def is_content_hash(key: object) -> TypeGuard[str]:
    """Whether `key` may name a cache entry (hex digits, 16 to 128 of them)."""
    return isinstance(key, str) and _KEY.match(key) is not None


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=_DIGEST).digest()


class WindowCache:
    """Byte ranges of content-addressed files on disk. Safe to share between threads and
    processes (entries are immutable and appear atomically).

    Attributes:
        root: the cache folder (created on first write).
        hits, misses: lookups answered and not answered since creation.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    def _count(self, hit: bool) -> None:
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    def path(self, key: str, start: int, end: int) -> Path:
        """Where the entry for `key` and `[start, end)` lives.

        Raises:
            ValueError: the key is not a plain hash-like string (it becomes a folder name).
        """
        if not is_content_hash(key):
            raise ValueError(f"cache key {key!r} is not a content hash")
        return self.root / key[:2] / key / f"{start}-{end}.bin"

    def get(self, key: str, start: int, end: int) -> bytes | None:
        """The cached bytes, or None when absent, short or corrupt (a bad entry is removed)."""
        path = self.path(key, start, end)
        try:
            raw = path.read_bytes()
        except OSError:
            self._count(False)
            return None
        data, digest = raw[:-_DIGEST], raw[-_DIGEST:]
        if len(raw) != end - start + _DIGEST or _digest(data) != digest:
            with contextlib.suppress(OSError):
                path.unlink()
            self._count(False)
            return None
        self._count(True)
        return data

    def put(self, key: str, start: int, end: int, data: bytes) -> None:
        """Store exactly `end - start` bytes. A failure to write is ignored (it is a cache).

        Raises:
            ValueError: `data` is not `end - start` bytes long: a short body is never cached.
        """
        if len(data) != end - start:
            raise ValueError(
                f"refusing to cache {len(data)} bytes for the {end - start}-byte range "
                f"[{start}, {end})"
            )
        path = self.path(key, start, end)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.write(_digest(data))
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError:
            pass  # a read-only or full disk costs a re-fetch next time, nothing else
