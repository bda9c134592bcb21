"""Send HTTP requests that undo a fault at a deadline, whatever happens to the run that made it.

    python -I restore_watchdog.py DEADLINE < REQUESTS.json

``DEADLINE`` is a `time.monotonic` value (the machine-wide ``CLOCK_MONOTONIC``).
``REQUESTS.json`` is a JSON array read from stdin, each entry
``{"method": "DELETE", "base": "http://host:port", "path": "/proxies/p/toxics/t"}``;
``base`` may also be ``unix:///path/to/socket`` (the Docker Engine API) or ``tcp://host:port``.
The watchdog prints ``armed`` once it has them, sleeps until the deadline, then sends each
request, retrying for a while when the server cannot be reached or answers 5xx; any other
answer (404 included: already undone) counts as done. Terminating it stands it down.

Fault drivers for targets without a time limit of their own (a real Toxiproxy, Docker)
start it detached via `watchdogs.Watchdogs`. Standard library only; run by path.
"""

from __future__ import annotations

import http.client
import json
import socket
import sys
import time
from urllib.parse import urlsplit

EXIT_DONE = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
ATTEMPTS = 5
RETRY_PAUSE = 1.0
TIMEOUT = 10.0


class UnixConnection(http.client.HTTPConnection):
    """HTTP over a unix socket (``Host: localhost``)."""

    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=TIMEOUT)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(self.socket_path)


def connection(base: str) -> http.client.HTTPConnection:
    parts = urlsplit(base)
    if parts.scheme == "unix":
        return UnixConnection(parts.path)
    if parts.scheme == "https":
        return http.client.HTTPSConnection(parts.netloc, timeout=TIMEOUT)
    return http.client.HTTPConnection(parts.netloc, timeout=TIMEOUT)


def send(request: dict[str, str]) -> bool:
    """Send one request, retrying on connection errors and 5xx; True once an answer settles it."""
    prefix = urlsplit(request["base"]).path.rstrip("/") if not request["base"].startswith("unix:") else ""
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(RETRY_PAUSE)
        conn = connection(request["base"])
        try:
            conn.request(request["method"], prefix + request["path"], headers={"Content-Length": "0"})
            status = conn.getresponse().status
        except OSError:
            continue
        finally:
            conn.close()
        if status < 500:
            return True
    return False


def main(argv: list[str]) -> int:
    try:
        deadline = float(argv[0])
        requests = json.loads(sys.stdin.read())
        if not isinstance(requests, list) or not all(
            isinstance(r, dict) and {"method", "base", "path"} <= r.keys() for r in requests
        ):
            raise ValueError("not a list of requests")
    except (IndexError, ValueError) as exc:
        print(f"usage: restore_watchdog.py DEADLINE < REQUESTS.json ({exc})", flush=True)
        return EXIT_USAGE
    print("armed", flush=True)
    remaining = deadline - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)
    results = [send(request) for request in requests]
    return EXIT_DONE if all(results) else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
