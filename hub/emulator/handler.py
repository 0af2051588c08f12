"""The emulated Hub's HTTP handler: reads a request, applies faults, writes the endpoint's answer.

Faults (`hub.emulator.faults`) are decided per request before routing: a reset closes the
connection with an RST, 429 and 5xx answer at once, a truncated answer sends full headers and
part of the body. Errors become the Hub's error answers (`X-Error-Code`, `X-Error-Message`);
an unexpected exception answers 500 and is logged. Counters move before bytes leave, so a client
never sees an answer not yet counted.
"""

from __future__ import annotations

import logging
import socket
import struct
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import parse_qsl, unquote, urlsplit

from hub.emulator.faults import SERVER_ERRORS, Fault
from hub.emulator.messages import Answer, ApiError, HubContext, Request, error_answer
from hub.emulator.routes import route

if TYPE_CHECKING:
    from hub.emulator.listener import Listener

__all__ = ["Handler"]

_CHUNK = 8 * 2**20  # bytes handed to sendfile at a time
_log = logging.getLogger("hub.emulator.server")


def _rate_limited(hub: HubContext) -> ApiError:
    wait = str(hub.injector.faults.retry_after)
    headers = {
        "Retry-After": wait,
        "RateLimit": f'"api";r=0;t={wait}',
        "RateLimit-Policy": '"fixed window";"api";q=1000;w=300',
    }
    return ApiError(429, None, "Too many requests, retry later", **headers)


def _tampered(hub: HubContext, req: Request) -> Answer:
    """The answer `hub.tamper` makes of the route's (an error answer is tampered with too)."""
    assert hub.tamper is not None
    try:
        answer = route(req)
    except ApiError as err:
        answer = error_answer(err)
    return hub.tamper(req, answer)


class Handler(BaseHTTPRequestHandler):
    """Answers the requests of one connection (keep-alive, HTTP/1.1)."""

    protocol_version = "HTTP/1.1"
    server_version = "model-lineage-hub/1"
    timeout = 60  # idle keep-alive connections end after this
    # small answers otherwise wait ~40 ms for the client's delayed ACK (Nagle) on loopback
    disable_nagle_algorithm = True
    server: Listener

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

    def _dispatch(self) -> None:
        hub = self.server.hub
        length = self.headers.get("Content-Length") or "0"
        body = self.rfile.read(int(length)) if length.isdigit() else b""
        split = urlsplit(self.path)
        self._count_path = unquote(split.path)
        self._truncate = False
        self._answered = False  # True once a status line is out: no second answer may follow
        hub.tally.request(ranged=self.headers.get("Range") is not None)
        fault = hub.injector.decide(self.command, self.path)
        if fault.latency_s:
            time.sleep(fault.latency_s)
        if fault.kind == "reset":
            self._reset()
            return
        early = self._fault_error(hub, fault)
        if early is not None:
            self._send(error_answer(early))
            return
        self._truncate = fault.kind == "truncate" and self.command == "GET"
        try:
            query = tuple(parse_qsl(split.query, keep_blank_values=True))
            req = Request(hub, self.command, split.path, query, body, self.headers)
            answer = route(req) if hub.tamper is None else _tampered(hub, req)
            self._send(answer)
        except ApiError as err:
            self._send(error_answer(err))
        except OSError as err:  # the client went away, or a file vanished mid-answer
            _log.debug("%s %s: %s", self.command, self.path, err)
            self._fail(err)
        except Exception as err:  # a bug: answer 500 (if still possible) and log it
            _log.exception("error while answering %s %s", self.command, self.path)
            self._fail(err)

    @staticmethod
    def _fault_error(hub: HubContext, fault: Fault) -> ApiError | None:
        if fault.kind == "429":
            return _rate_limited(hub)
        if fault.kind in SERVER_ERRORS:
            return ApiError(int(fault.kind), None, "Injected server error")
        return None

    def _fail(self, err: Exception) -> None:
        self.close_connection = True
        if not self._answered:
            self._send(error_answer(ApiError(500, None, f"Internal error: {type(err).__name__}")))

    def _send(self, answer: Answer) -> None:
        tally = self.server.hub.tally
        tally.answered(answer.status)
        self._answered = True
        if self._truncate:
            self.close_connection = True  # the client sees fewer bytes than Content-Length
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(answer.length))
        self.end_headers()
        if self.command == "HEAD":
            return
        if answer.file is None and answer.drip_s:
            self._drip(answer.body, answer.drip_s)
        elif answer.file is None:
            self._write_bytes(answer.body)
        elif answer.file.length:
            with open(answer.file.path, "rb") as fh:
                self._write_file(fh, answer.file.start, answer.file.length)

    def _kept(self, length: int) -> int:
        """How many of `length` body bytes go out (fewer when the answer is truncated)."""
        fraction = self.server.hub.injector.faults.truncate_fraction
        return int(length * fraction) if self._truncate else length

    def _write_bytes(self, body: bytes) -> None:
        body = body[: self._kept(len(body))]
        self.server.hub.tally.sent(self._count_path, len(body))
        self.wfile.write(body)

    def _drip(self, body: bytes, wait: float) -> None:
        for i in range(len(body)):
            time.sleep(wait)
            self.server.hub.tally.sent(self._count_path, 1)
            self.wfile.write(body[i : i + 1])
            self.wfile.flush()

    def _write_file(self, fh: BinaryIO, start: int, length: int) -> None:
        tally = self.server.hub.tally
        length = self._kept(length)
        sent = 0
        while sent < length:
            want = min(length - sent, _CHUNK)
            tally.sent(self._count_path, want)
            n = 0
            try:
                n = self.connection.sendfile(fh, start + sent, want)
            finally:
                if n < want:  # take back what did not leave
                    tally.sent(self._count_path, n - want)
            if n == 0:
                break
            sent += n

    def _reset(self) -> None:
        """Reset the connection (RST, not FIN): linger 0, then close the descriptor now."""
        self.close_connection = True
        self.server.hub.tally.answered(0)  # counted under status 0: no status line was sent
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        socket.socket(fileno=self.connection.detach()).close()
