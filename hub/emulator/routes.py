"""Request handling of the local Hub server: routing, the endpoints, ranges and Hub errors.

`hub.emulator.server` owns the listening socket and the counters; this module answers one request. See
`hub.emulator.server` for the routes and for what is mirrored from the Hub.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import socket
import struct
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from hub.emulator.repos import (
    EXPAND_FIELDS,
    INFO_DEFAULT_FIELDS,
    LIST_DEFAULT_FIELDS,
    LIST_FULL_FIELDS,
    RepoSnapshot,
    RepoStore,
    tree_children,
    tree_entry,
)

if TYPE_CHECKING:
    from hub.emulator.server import _HTTPServer

__all__ = ["RangeNotSatisfiable", "parse_range"]

_MAIN_REFS = ("main", "refs/heads/main")
_CHUNK = 2**20
_log = logging.getLogger("hub.emulator.server")


class _ApiError(Exception):
    def __init__(self, status: int, code: str | None, message: str, **headers: str):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class RangeNotSatisfiable(Exception):
    """A `Range` that starts past the end of the body: the answer is 416."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The byte range `[start, end]` (inclusive) a `Range` header asks of a body of `size` bytes.

    Supports `bytes=a-b`, `bytes=a-` and `bytes=-n`; returns None when the whole body should be
    sent (no header, a malformed one, or several ranges, which RFC 9110 lets a server ignore).

    Raises:
        RangeNotSatisfiable: the range starts past the end (the server answers 416).
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    match = re.fullmatch(r"\s*(\d*)\s*-\s*(\d*)\s*", spec)
    if unit.strip().lower() != "bytes" or match is None or match.group(0).strip() == "-":
        return None
    first, last = match.groups()
    if not first:
        n = int(last)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - n), size - 1
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable
    return start, min(int(last), size - 1) if last else size - 1


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "model-lineage-hub/1"
    timeout = 60  # idle keep-alive connections end after this
    # small answers otherwise wait ~40 ms for the client's delayed ACK (Nagle) on loopback
    disable_nagle_algorithm = True
    server: _HTTPServer

    def handle(self) -> None:
        try:
            super().handle()
        except OSError as err:  # the peer reset or closed: nothing left to answer
            _log.debug("connection from %s ended: %s", self.address_string(), err)

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s %s", self.address_string(), format % args)

    # -- dispatch -------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        hub = self.server.hub
        length = self.headers.get("Content-Length") or "0"
        body = self.rfile.read(int(length)) if length.isdigit() else b""
        split = urlsplit(self.path)
        self._count_path = unquote(split.path)
        self._truncate = False
        self._answered = False  # True once a status line is out: no second answer may follow
        hub._count_request(self.headers.get("Range") is not None)
        fault = hub.injector.decide(self.command, self.path)
        if fault.latency_s:
            time.sleep(fault.latency_s)
        if fault.kind == "reset":
            self._reset()
            return
        if fault.kind == "429":
            wait = str(hub.injector.faults.retry_after)
            self._send_error(
                _ApiError(
                    429,
                    None,
                    "Too many requests, retry later",
                    **{
                        "Retry-After": wait,
                        "RateLimit": f'"api";r=0;t={wait}',
                        "RateLimit-Policy": '"fixed window";"api";q=1000;w=300',
                    },
                )
            )
            return
        if fault.kind in ("500", "502", "503"):
            self._send_error(_ApiError(int(fault.kind), None, "Injected server error"))
            return
        self._truncate = fault.kind == "truncate" and self.command == "GET"
        try:
            self._route(split.path, parse_qsl(split.query, keep_blank_values=True), body)
        except _ApiError as err:
            self._send_error(err)
        except OSError as err:  # the client went away, or a file vanished mid-answer
            _log.debug("%s %s: %s", self.command, self.path, err)
            self.close_connection = True
            if not self._answered:
                self._send_error(_ApiError(500, None, f"Internal error: {type(err).__name__}"))
        except Exception as err:  # a bug: answer 500 (if still possible) and log it
            _log.exception("error while answering %s %s", self.command, self.path)
            self.close_connection = True
            if not self._answered:
                self._send_error(_ApiError(500, None, f"Internal error: {type(err).__name__}"))

    def _route(self, path: str, query: list[tuple[str, str]], body: bytes) -> None:
        segs = path.split("/")[1:]
        method = self.command
        if segs[:2] == ["api", "models"]:
            rest = segs[2:]
            if rest in ([], [""]):
                self._allow("GET")
                return self._list_models(path, query)
            repo_id, action, args = _split_api_path(rest)
            if action is None:
                self._allow("GET")
                return self._model_info(repo_id, "main", query)
            if action == "revision" and len(args) == 1:
                self._allow("GET")
                return self._model_info(repo_id, args[0], query)
            if action == "tree" and args:
                self._allow("GET")
                return self._tree(path, repo_id, args[0], "/".join(args[1:]), query)
            if action == "paths-info" and len(args) == 1:
                self._allow("POST")
                return self._paths_info(repo_id, args[0], body)
        elif "resolve" in segs[1:3]:
            at = segs.index("resolve", 1)
            parts = [unquote(s) for s in segs]
            if len(parts) > at + 2:
                self._allow("GET", "HEAD")
                return self._resolve("/".join(parts[:at]), parts[at + 1], "/".join(parts[at + 2 :]))
        raise _ApiError(404, None, f"Not found: {method} {path}")

    def _allow(self, *methods: str) -> None:
        if self.command not in methods:
            raise _ApiError(
                405, None, f"Method {self.command} not allowed", Allow=", ".join(methods)
            )

    # -- endpoints ------------------------------------------------------------------------------

    def _list_models(self, path: str, query: list[tuple[str, str]]) -> None:
        hub = self.server.hub
        store = hub.store
        q = dict(query)
        fields = _expand(query)
        if fields is None:
            fields = list(LIST_DEFAULT_FIELDS)
            if _true(q.get("full")):
                fields += LIST_FULL_FIELDS
            if _true(q.get("cardData")):
                fields.append("cardData")
            if _true(q.get("config")):
                fields.append("config")
        authorized = self._authorized()
        search = (q.get("search") or "").lower()
        author = (q.get("author") or "").lower()
        filters = [v for k, v in query if k in ("filter", "filter[]") and v]
        checks = ("tags", "library_name", "pipeline_tag", "author", "private", "gated")
        ids = []
        for repo_id in store.ids():
            if search and search not in repo_id.lower():
                continue
            meta = store.record(repo_id, checks) or {}
            if (meta.get("private") and not authorized) or (
                author and (meta.get("author") or "").lower() != author
            ):
                continue
            labels = {*meta.get("tags", ()), meta.get("library_name"), meta.get("pipeline_tag")}
            if not all(f in labels for f in filters):
                continue
            if "pipeline_tag" in q and meta.get("pipeline_tag") != q["pipeline_tag"]:
                continue
            if "gated" in q and bool(meta.get("gated")) != _true(q["gated"]):
                continue
            ids.append(repo_id)
        if q.get("sort"):
            ids = _sorted(store, ids, q["sort"], descending=q.get("direction", "-1") != "1")
        limit = _int(q["limit"], "limit") if q.get("limit") else None
        size = min(limit, hub.page_size) if limit else hub.page_size
        start = _cursor(q.get("cursor"))
        page = [store.record(i, fields) for i in ids[start : start + size]]
        self._send_page(path, query, page, start + size, len(ids))

    def _model_info(self, repo_id: str, rev: str, query: list[tuple[str, str]]) -> None:
        snap = self._snapshot(repo_id)
        _check_revision(snap, rev)
        fields = _expand(query) or list(INFO_DEFAULT_FIELDS)
        record = self.server.hub.store.record(
            repo_id, fields, blobs=_true(dict(query).get("blobs"))
        )
        self._send_json(record)

    def _tree(
        self, path: str, repo_id: str, rev: str, folder: str, query: list[tuple[str, str]]
    ) -> None:
        snap = self._snapshot(repo_id)
        _check_revision(snap, rev)
        folder = folder.strip("/")
        if folder and folder not in snap.dirs:
            raise _ApiError(404, "EntryNotFound", f"{folder} does not exist on {rev}")
        q = dict(query)
        paths = tree_children(snap, folder, recursive=_true(q.get("recursive")))
        start = _cursor(q.get("cursor"))
        size = self.server.hub.page_size
        expand = _true(q.get("expand"))
        page = [tree_entry(snap, p, expand=expand) for p in paths[start : start + size]]
        self._send_page(path, query, page, start + size, len(paths))

    def _paths_info(self, repo_id: str, rev: str, body: bytes) -> None:
        snap = self._snapshot(repo_id)
        _check_revision(snap, rev)
        if (self.headers.get("Content-Type") or "").startswith("application/json"):
            data = json.loads(body or b"{}")
            paths, expand = data.get("paths", []), bool(data.get("expand"))
            paths = [paths] if isinstance(paths, str) else paths
        else:
            form = parse_qsl(body.decode(), keep_blank_values=True)
            paths = [v for k, v in form if k in ("paths", "paths[]")]
            expand = _true(dict(form).get("expand"))
        entries = [tree_entry(snap, p.strip("/"), expand=expand) for p in paths]
        self._send_json([e for e in entries if e is not None])

    def _resolve(self, repo_id: str, rev: str, path: str) -> None:
        snap = self._snapshot(repo_id)
        gated = snap.meta.get("gated") not in (None, False, "false")
        if gated and path != "README.md" and not self._authorized():
            bearer = self._bearer()
            raise _ApiError(
                403 if bearer else 401,
                "GatedRepo",
                f"Access to model {repo_id} is restricted. You must have access to it and be"
                " authenticated to access it. Please log in."
                if not bearer
                else f"Access to model {repo_id} is restricted and you are not in the authorized list.",
            )
        _check_revision(snap, rev)
        file = snap.by_path.get(path)
        if file is None:
            raise _ApiError(
                404,
                "EntryNotFound",
                f"{path} does not exist on {rev}",
                **{"X-Repo-Commit": snap.sha},
            )
        headers = {
            "X-Repo-Commit": snap.sha,
            "ETag": f'"{file.etag}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if file.sha256 is not None:
            headers["X-Linked-Etag"] = f'"{file.sha256}"'
            headers["X-Linked-Size"] = str(file.size)
        try:
            span = parse_range(self.headers.get("Range"), file.size)
        except RangeNotSatisfiable:
            raise _ApiError(
                416,
                None,
                f"Range not satisfiable for {path} of {file.size} bytes",
                **{"Content-Range": f"bytes */{file.size}", "X-Repo-Commit": snap.sha},
            ) from None
        if span is None:
            start, length, status = 0, file.size, 200
        else:
            start, length, status = span[0], span[1] - span[0] + 1, 206
            headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{file.size}"
        self._start(status, headers, length)
        if self.command == "GET" and length:
            with open(file.abspath, "rb") as fh:
                self._write_file(fh, start, length)

    # -- helpers --------------------------------------------------------------------------------

    def _snapshot(self, repo_id: str) -> RepoSnapshot:
        store = self.server.hub.store
        meta = store.meta(repo_id)
        if meta is None or (meta.get("private") and not self._authorized()):
            raise _ApiError(404, "RepoNotFound", "Repository not found")
        if meta.get("disabled"):
            raise _ApiError(403, None, "Access to this resource is disabled.")
        snap = store.snapshot(repo_id)
        assert snap is not None
        return snap

    def _bearer(self) -> str | None:
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        return token.strip() or None if scheme.lower() == "bearer" else None

    def _authorized(self) -> bool:
        return self._bearer() in self.server.hub.tokens

    def _send_page(
        self, path: str, query: list[tuple[str, str]], page: list, end: int, total: int
    ) -> None:
        headers = {}
        if end < total:
            kept = [(k, v) for k, v in query if k != "cursor"]
            cursor = base64.urlsafe_b64encode(f"o:{end}".encode()).decode()
            host = self.headers.get("Host")
            base = f"http://{host}" if host else self.server.hub.url
            url = f"{base}{path}?{urlencode([*kept, ('cursor', cursor)])}"
            headers["Link"] = f'<{url}>; rel="next"'
        self._send_json(page, headers)

    def _send_json(
        self, data: Any, headers: dict[str, str] | None = None, status: int = 200
    ) -> None:
        body = json.dumps(data, default=str).encode()
        self._start(
            status,
            {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
            len(body),
        )
        self._write_bytes(body)

    def _send_error(self, err: _ApiError) -> None:
        headers = dict(err.headers)
        if err.code:
            headers["X-Error-Code"] = err.code
        headers["X-Error-Message"] = err.message
        self._send_json({"error": err.message}, headers, err.status)

    # Counters move before the bytes leave, so a client never sees an answer not yet counted.

    def _start(self, status: int, headers: dict[str, str], length: int) -> None:
        self.server.hub._count_answer(self._count_path, status)
        self._answered = True
        if self._truncate:
            self.close_connection = True  # the client sees fewer bytes than Content-Length
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def _write_bytes(self, body: bytes) -> None:
        if self.command == "HEAD":
            return
        if self._truncate:
            body = body[: int(len(body) * self.server.hub.injector.faults.truncate_fraction)]
        self.server.hub._count_answer(self._count_path, nbytes=len(body))
        self.wfile.write(body)

    def _write_file(self, fh: Any, start: int, length: int) -> None:
        if self._truncate:
            length = int(length * self.server.hub.injector.faults.truncate_fraction)
        sent = 0
        while sent < length:
            want = min(length - sent, 8 * _CHUNK)
            self.server.hub._count_answer(self._count_path, nbytes=want)
            n = 0
            try:
                n = self.connection.sendfile(fh, start + sent, want)
            finally:
                if n < want:
                    self.server.hub._count_answer(self._count_path, nbytes=n - want)
            if n == 0:
                break
            sent += n

    def _reset(self) -> None:
        """Reset the connection (RST, not FIN): linger 0, then close the descriptor now."""
        self.close_connection = True
        self.server.hub._count_answer(self._count_path, 0)
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        socket.socket(fileno=self.connection.detach()).close()


def _split_api_path(rest: list[str]) -> tuple[str, str | None, list[str]]:
    """Split `/api/models/<rest>` into (repo id, action, unquoted action arguments)."""
    actions = ("tree", "paths-info", "revision")
    cut = (
        2
        if len(rest) > 2 and rest[2] in actions
        else 1
        if len(rest) > 1 and rest[1] in actions
        else None
    )
    if cut is None:
        return "/".join(unquote(s) for s in rest), None, []
    return (
        "/".join(unquote(s) for s in rest[:cut]),
        rest[cut],
        [unquote(s) for s in rest[cut + 1 :]],
    )


def _check_revision(snap: RepoSnapshot, rev: str) -> None:
    if rev not in (*_MAIN_REFS, snap.sha):
        raise _ApiError(404, "RevisionNotFound", f"Invalid rev id: {rev}")


def _expand(query: list[tuple[str, str]]) -> list[str] | None:
    names = [v for k, v in query if k in ("expand", "expand[]")]
    if not names:
        return None
    unknown = sorted(set(names) - EXPAND_FIELDS)
    if unknown:
        raise _ApiError(400, None, f"Invalid expand fields: {', '.join(unknown)}")
    return list(dict.fromkeys(names))


def _sorted(store: RepoStore, ids: list[str], key: str, *, descending: bool) -> list[str]:
    aliases = {
        "last_modified": "lastModified",
        "created_at": "createdAt",
        "trending_score": "trendingScore",
    }
    key = aliases.get(key, key)
    if key not in EXPAND_FIELDS and key != "id":
        raise _ApiError(400, None, f"Invalid sort field: {key}")
    values = {i: i if key == "id" else (store.record(i, [key]) or {}).get(key) for i in ids}
    known = sorted(
        (i for i in ids if values[i] is not None),
        key=lambda i: _sort_key(values[i]),
        reverse=descending,
    )
    return known + [i for i in ids if values[i] is None]


def _sort_key(value: Any) -> tuple[int, Any]:
    """Numbers before strings before anything else, so mixed values never raise."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    return (1, value) if isinstance(value, str) else (2, str(value))


def _cursor(value: str | None) -> int:
    if not value:
        return 0
    try:
        kind, _, offset = base64.urlsafe_b64decode(value.encode()).decode().partition(":")
        if kind == "o" and int(offset) >= 0:
            return int(offset)
    except ValueError:
        pass
    raise _ApiError(400, None, f"Invalid cursor: {value}")


def _int(value: str, name: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise _ApiError(400, None, f"{name} must be a positive integer, got {value!r}")
    return number


def _true(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes", "")
