"""Byte ranges of one Hub repo's files at one commit, from the cheapest place that has them.

In order: the first bytes already held (a header read), the local HF cache's snapshot of the
same commit, the window cache (content-addressed, on disk), the network. Bodies are checked to
be exactly the range asked for (`HubClient.get_range`); a short body is retried and never
cached.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from hub.client import HubClient, is_commit, is_repo_id
from hub.errors import NetworkError
from hub.layout import safe_path
from hub.window_cache import WindowCache

__all__ = ["MODEL_DEADLINE_S", "ReadStats", "RemoteFile", "RemoteReader", "hf_snapshot"]

# Network time one model may take in all (headers, index, every window): a server slow on every
# request cannot hold a crawl on one model for hours. 64 windows of 32 MiB need far less.
MODEL_DEADLINE_S = 900.0


class ReadStats:
    """Bytes one model cost, by where they came from. Thread-safe counters.

    Attributes:
        fetched: body bytes received from the network (headers, index files, windows).
        cached: bytes served by the window cache.
        local: bytes read from the local HF cache's snapshot of the same commit.
        requests: range requests sent.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.fetched = 0
        self.cached = 0
        self.local = 0
        self.requests = 0

    def add(self, *, fetched: int = 0, cached: int = 0, local: int = 0, requests: int = 0) -> None:
        with self._lock:
            self.fetched += fetched
            self.cached += cached
            self.local += local
            self.requests += requests

    def __repr__(self) -> str:
        return (
            f"ReadStats(fetched={self.fetched}, cached={self.cached}, local={self.local}, "
            f"requests={self.requests})"
        )


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """One file of the repo: path, size and the content hash the window cache is keyed by."""

    path: str
    size: int
    key: str  # LFS sha256, else git blob id: the content hash the window cache is keyed by


class RemoteReader:
    """Ranges of one repo's files at one commit, from the cheapest place that has them.

    Network reads stop after `deadline_s` seconds from the reader's creation (`NetworkError`).
    """

    def __init__(
        self,
        client: HubClient,
        repo_id: str,
        revision: str,
        cache: WindowCache | None,
        snapshot: Path | None,
        stats: ReadStats | None = None,
        deadline_s: float = MODEL_DEADLINE_S,
    ):
        self.client = client
        self.deadline_s = deadline_s
        self._deadline = time.monotonic() + deadline_s
        self.repo_id = repo_id
        self.revision = revision
        self.cache = cache
        self.snapshot = snapshot
        self.files: dict[str, RemoteFile] = {}
        self.stats = stats if stats is not None else ReadStats()
        self._held: dict[str, bytes] = {}  # path -> its first bytes, already paid for

    def hold(self, path: str, prefix: bytes) -> None:
        """Keep a file's first bytes: later reads inside them cost nothing."""
        self._held[path] = prefix

    def _local(self, f: RemoteFile) -> Path | None:
        if self.snapshot is None or not safe_path(f.path):
            return None
        p = self.snapshot / f.path
        try:
            return p if p.is_file() and p.stat().st_size == f.size else None
        except OSError:
            return None

    def read(self, path: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of one file of the repo (a path of `files`).

        Raises:
            KeyError: a path paths-info did not describe.
            ValueError: the range is not within the file.
            HubError: the bytes could not be read (gated, network, ...).
        """
        f = self.files[path]
        if not (0 <= start <= end <= f.size):
            raise ValueError(f"range [{start}, {end}) is outside {path} ({f.size} bytes)")
        if start == end:
            return b""
        held = self._held.get(path)
        if held is not None and end <= len(held):
            return held[start:end]
        local = self._local(f)
        if local is not None:
            with open(local, "rb") as fh:
                fh.seek(start)
                data = fh.read(end - start)
            if len(data) == end - start:
                self.stats.add(local=len(data))
                return data
        if self.cache is not None:
            cached = self.cache.get(f.key, start, end)
            if cached is not None:
                self.stats.add(cached=len(cached))
                return cached
        if time.monotonic() > self._deadline:
            raise NetworkError(
                f"reading {self.repo_id} took over {self.deadline_s:.0f} s (the server is too "
                "slow); run the crawl again later",
                model_id=self.repo_id,
                path=path,
            )
        data, transferred = self.client.get_range(self.repo_id, self.revision, path, start, end)
        self.stats.add(fetched=transferred, requests=1)
        if self.cache is not None:
            self.cache.put(f.key, start, end, data)
        return data


def hf_snapshot(repo_id: str, revision: str, hf_cache: Path | None) -> Path | None:
    """The HF cache's snapshot folder of this repo at this commit, when it is there.

    Both come from the server: a repo id that is not `org/name` or a revision that is not a
    40-hex commit sha (`../../outside`) never forms a path; there is no snapshot then.
    """
    if hf_cache is None or not (is_repo_id(repo_id) and is_commit(revision)):
        return None
    folder = hf_cache / f"models--{repo_id.replace('/', '--')}" / "snapshots" / revision
    return folder if folder.is_dir() else None
