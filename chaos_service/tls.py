"""The process's one verifying TLS context for HTTP clients.

Building a context loads the CA bundle (about 25 ms); every client made per request or per
fault would pay that again, so they all share this one.
"""

from __future__ import annotations

import functools
import ssl


@functools.cache
def client_context() -> ssl.SSLContext:
    return ssl.create_default_context()
