"""A Hub-compatible HTTP server over a zoo folder, for tests and the offline demo.

`serve(root)` starts it on 127.0.0.1 in a background thread; the real `huggingface_hub` client
talks to it with `HfApi(endpoint=server.url)` or `HF_ENDPOINT`. Standard library only.

Routes (models only; repo ids are `org/name` or `name`):

    GET  /api/models                                   search, author, filter, pipeline_tag, gated,
                                                       sort, direction, limit, expand, full,
                                                       cardData, config; paged by `cursor` with an
                                                       absolute `Link: <...>; rel="next"`
    GET  /api/models/{id}[/revision/{rev}]             model info (expand, blobs)
    GET  /api/models/{id}/tree/{rev}[/{path}]          recursive, expand; paged like /api/models
    POST /api/models/{id}/paths-info/{rev}             form or JSON: paths (repeated), expand
    HEAD /{id}/resolve/{rev}/{path}                    X-Repo-Commit, ETag, X-Linked-Etag/-Size
    GET  /{id}/resolve/{rev}/{path}                    streamed from disk; Range -> 206 / 416

What the Hub does and we mirror: errors carry `X-Error-Code` (RepoNotFound, RevisionNotFound,
EntryNotFound, GatedRepo) and `X-Error-Message`, which `hf_raise_for_status` turns into
RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError and GatedRepoError. Gating
(manifest `gated` not false) guards file downloads only, as on the Hub: model info, trees and
README.md stay readable. Without a valid bearer token a gated file answers 401, with another
token 403. Private repos are hidden (404 RepoNotFound, left out of listings) without a valid token.
The only revisions are `main` (also `refs/heads/main`) and the repo's current sha; after a repo
changes its old sha answers RevisionNotFound.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from os import PathLike
from typing import Any

from hub.emulator.faults import FaultInjector, Faults
from hub.emulator.repos import RepoStore
from hub.emulator.routes import _Handler

__all__ = ["PAGE_SIZE", "HubServer", "ServerCounters", "serve"]

PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class ServerCounters:
    """What a server answered since start (or the last `reset_counters`).

    Attributes:
        requests: requests received, faulted ones included.
        statuses: number of answers per HTTP status.
        bytes_by_path: body bytes sent per URL path (unquoted, without query string).
        range_requests: requests that carried a `Range` header.
        faults: injected faults per kind (see `hub.emulator.faults.KINDS`).
    """

    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    bytes_by_path: dict[str, int] = field(default_factory=dict)
    range_requests: int = 0
    faults: dict[str, int] = field(default_factory=dict)

    @property
    def bytes_total(self) -> int:
        """Body bytes sent over all paths."""
        return sum(self.bytes_by_path.values())


class HubServer:
    """A running server. Use `serve()` to make one; stop it with `stop()` or a `with` block.

    Attributes:
        url: base URL, e.g. `http://127.0.0.1:54321`; pass it as `endpoint=` or `HF_ENDPOINT`.
        store: the repos served (call `store.invalidate()` after editing files in place).
        injector: the fault injector, with its `injected` counts.
        page_size: most items per page of /api/models and of trees.
        hash_cache: JSON file the content hashes are saved to at `stop()` (None: not saved).
    """

    def __init__(
        self,
        root: str | PathLike[str],
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        *,
        page_size: int = PAGE_SIZE,
        tokens: Iterable[str] = (),
    ):
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}")
        self.store = RepoStore(root)
        self.injector = FaultInjector(faults)
        self.page_size = page_size
        self.tokens = frozenset(tokens)
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.hub = self
        bound_host, bound_port = self._httpd.server_address[:2]
        self.url = f"http://{bound_host!s}:{bound_port}"
        self.hash_cache: str | PathLike[str] | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.reset_counters()

    def start(self) -> HubServer:
        """Serve in a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection. Safe to call twice."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.close_connections()
        self._httpd.server_close()
        if self.hash_cache is not None:
            self.store.save_hashes(self.hash_cache)

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def prehash(self) -> int:
        """Hash every file of every repo now (so no request waits on a big file); returns repos."""
        ids = self.store.ids()
        for repo_id in ids:
            self.store.snapshot(repo_id)
        return len(ids)

    @property
    def counters(self) -> ServerCounters:
        """A snapshot of the request counters."""
        with self._lock:
            return ServerCounters(
                requests=self._requests,
                statuses=dict(self._statuses),
                bytes_by_path=dict(self._bytes),
                range_requests=self._ranges,
                faults=dict(self.injector.injected),
            )

    def reset_counters(self) -> None:
        """Zero the request counters (and the injected-fault counts)."""
        with self._lock:
            self._requests = 0
            self._ranges = 0
            self._statuses: Counter[int] = Counter()
            self._bytes: Counter[str] = Counter()
            self.injector.injected.clear()

    def _count_request(self, ranged: bool) -> None:
        with self._lock:
            self._requests += 1
            self._ranges += ranged

    def _count_answer(self, path: str, status: int | None = None, nbytes: int = 0) -> None:
        with self._lock:
            if status is not None:
                self._statuses[status] += 1
            if nbytes:
                self._bytes[path] += nbytes


def serve(
    root: str | PathLike[str],
    host: str = "127.0.0.1",
    port: int = 0,
    faults: Faults | None = None,
    *,
    page_size: int = PAGE_SIZE,
    tokens: Iterable[str] = (),
    prehash: bool = False,
    hash_cache: str | PathLike[str] | None = None,
) -> HubServer:
    """Start a Hub-compatible server over a zoo folder (docs/contracts.md layout).

    Args:
        root: folder with `manifest.json` and `repos/<org>/<name>/`.
        host: interface to bind; keep the default loopback.
        port: TCP port; 0 picks a free one (read it back from `.url`).
        faults: faults to inject (see `hub.emulator.faults`); None injects nothing.
        page_size: most items per page of /api/models and of trees.
        tokens: bearer tokens that unlock gated and private repos.
        prehash: hash all files before returning, so that no request waits on a big file
            (sha256 runs at about 1 GB/s, slower under load; a HEAD that waits on a 4 GB file
            can outlast the client's `HF_HUB_ETAG_TIMEOUT`, 10 s by default).
        hash_cache: JSON file of content hashes, read at start and written after `prehash` and
            at `stop()`, so that big files are hashed once across runs.

    Returns:
        The running server; also a context manager that stops it on exit.
    """
    server = HubServer(root, host, port, faults, page_size=page_size, tokens=tokens)
    server.hash_cache = hash_cache
    try:
        if hash_cache is not None:
            server.store.load_hashes(hash_cache)
        if prehash:
            server.prehash()
            if hash_cache is not None:
                server.store.save_hashes(hash_cache)
    except BaseException:
        server.stop()
        raise
    return server.start()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    hub: HubServer

    def __init__(self, *args: Any, **kwargs: Any):
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._open_lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
