"""A Hub-compatible HTTP server over a zoo folder, for tests and the offline demo.

`serve(root)` starts it on 127.0.0.1 in a background thread; the real `huggingface_hub` client
talks to it with `HfApi(endpoint=server.url)` or `HF_ENDPOINT`. Standard library (and PyYAML
for cards) only.

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

Modules: `routes` (the table above) sends a request to `listing`, `info` or `downloads`, which
check `access` (private, disabled, gated, revisions), read `query` parameters, and build answers
(`messages`) from `records` (the API's JSON) over `repos` (files and hashes: `hashing`, `cards`).
`handler` applies `faults` and writes answers, `listener` owns the socket, `counters` counts,
and this module ties them together.

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

import threading
from collections.abc import Callable, Iterable
from os import PathLike

from hub.emulator.counters import ServerCounters, Tally
from hub.emulator.faults import FaultInjector, Faults
from hub.emulator.handler import Handler
from hub.emulator.listener import Listener
from hub.emulator.messages import Answer, HubContext, Request
from hub.emulator.repos import RepoStore

__all__ = ["PAGE_SIZE", "HubServer", "ServerCounters", "serve"]

PAGE_SIZE = 50


class HubServer:
    """A running server. Use `serve()` to make one; stop it with `stop()` or a `with` block.

    Attributes:
        url: base URL, e.g. `http://127.0.0.1:54321`; pass it as `endpoint=` or `HF_ENDPOINT`.
        store: the repos served (call `store.invalidate()` after editing files in place).
        injector: the fault injector, with its `injected` counts.
        page_size: most items per page of /api/models and of trees.
        tokens: bearer tokens that unlock gated and private repos.
        hash_cache: JSON file the content hashes are saved to at `stop()` (None: not saved).
    """

    def __init__(
        self, listener: Listener, hub: HubContext, hash_cache: str | PathLike[str] | None = None
    ):
        self._httpd = listener
        self._hub = hub
        self.url = hub.url
        self.store, self.injector = hub.store, hub.injector
        self.page_size, self.tokens = hub.page_size, hub.tokens
        self.hash_cache = hash_cache
        self._thread: threading.Thread | None = None

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
        return self._hub.tally.snapshot()

    def reset_counters(self) -> None:
        """Zero the request counters (and the injected-fault counts)."""
        self._hub.tally.reset()


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
    tamper: Callable[[Request, Answer], Answer] | None = None,
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
        tamper: (request, answer) -> the answer sent instead (see `HubContext.tamper`).

    Returns:
        The running server; also a context manager that stops it on exit.

    Raises:
        ValueError: `page_size` is below 1.
    """
    if page_size < 1:
        raise ValueError(f"page_size must be >= 1, got {page_size}")
    store = RepoStore(root)
    injector = FaultInjector(faults)
    listener = Listener((host, port), Handler)
    bound_host, bound_port = listener.server_address[:2]
    listener.hub = HubContext(
        store=store,
        injector=injector,
        tally=Tally(injector.injected),
        page_size=page_size,
        tokens=frozenset(tokens),
        url=f"http://{bound_host!s}:{bound_port}",
        tamper=tamper,
    )
    server = HubServer(listener, listener.hub, hash_cache)
    try:
        if hash_cache is not None:
            store.load_hashes(hash_cache)
        if prehash:
            server.prehash()
            if hash_cache is not None:
                store.save_hashes(hash_cache)
    except BaseException:
        server.stop()
        raise
    return server.start()
