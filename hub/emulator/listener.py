"""The emulated Hub's listening socket: a threaded HTTP server that can drop every connection.

`ThreadingHTTPServer.shutdown` stops accepting but leaves keep-alive connections open, each
holding a thread until its client hangs up; `close_connections` ends them at `stop()`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import ThreadingHTTPServer
from typing import Any

from hub.emulator.messages import HubContext

__all__ = ["Listener"]


class Listener(ThreadingHTTPServer):
    """A `ThreadingHTTPServer` that tracks its open connections; `hub` is what handlers read."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    hub: HubContext

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
        """Shut down every connection still open (their threads then end)."""
        with self._open_lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
