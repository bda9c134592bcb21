"""A webhook receiver for tests: a real HTTP server on 127.0.0.1 that records what it is sent."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """A webhook receiver on 127.0.0.1: records each POST's headers (lower-cased) and JSON body, and answers with the
    queued statuses (200 once they run out). Clearing ``answering`` makes it hold its answers."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], Any]] = []
        self.statuses: list[int] = []
        self.answering = threading.Event()
        self.answering.set()
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                with receiver.lock:
                    receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, json.loads(body)))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.arrived.notify_all()
                receiver.answering.wait(10)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that gave up waiting: nothing to answer

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/gameday"

    def wait_for(self, count: int, timeout: float) -> list[Any]:
        """The bodies once ``count`` requests have come (fewer if ``timeout`` passes first)."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.requests) >= count, timeout)
        return self.bodies

    @property
    def bodies(self) -> list[Any]:
        with self.lock:
            return [body for _, body in self.requests]

    def close(self) -> None:
        self.answering.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
