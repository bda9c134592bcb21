"""The domain exception tree. No HTTP here: the API layers map these to status codes.

    ChaosServiceError
    ├── InvalidInput            bad input from a user: a field, a value, a file
    │   ├── InvalidToxic        a toxic's type, stream, toxicity or attributes
    │   └── InvalidProxy        a proxy's name, listen, upstream or protocol
    ├── NotFound
    │   ├── ProxyNotFound
    │   └── ToxicNotFound
    ├── AlreadyExists
    │   ├── ProxyExists
    │   └── ToxicExists
    └── ListenFailed            the listen address could not be bound (in use, not local)
"""

from __future__ import annotations


class ChaosServiceError(Exception):
    """Base of every error the project raises on purpose."""


class InvalidInput(ChaosServiceError):
    """The caller sent something that cannot be accepted; nothing was changed."""


class InvalidToxic(InvalidInput):
    pass


class InvalidProxy(InvalidInput):
    pass


class NotFound(ChaosServiceError):
    pass


class ProxyNotFound(NotFound):
    def __init__(self, message: str = "proxy not found") -> None:
        super().__init__(message)


class ToxicNotFound(NotFound):
    def __init__(self, message: str = "toxic not found") -> None:
        super().__init__(message)


class AlreadyExists(ChaosServiceError):
    pass


class ProxyExists(AlreadyExists):
    def __init__(self, message: str = "proxy already exists") -> None:
        super().__init__(message)


class ToxicExists(AlreadyExists):
    def __init__(self, message: str = "toxic already exists") -> None:
        super().__init__(message)


class ListenFailed(ChaosServiceError):
    """Binding a proxy's listen address failed; the message is the OS error, Go-style."""
