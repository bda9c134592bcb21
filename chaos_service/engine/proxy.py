"""A proxy: its definition, its toxics, and the protocol runtime that serves it."""

from __future__ import annotations

import random
import socket

from chaos_service.engine.model import Direction, ProxySpec, ToxicEntry, ToxicKind
from chaos_service.engine.protocols import ProtocolSpec, protocol
from chaos_service.engine.stats import ProxyStats
from chaos_service.errors import ToxicExists, ToxicNotFound


class Proxy:
    """A named listener forwarding to an upstream, with toxics on each direction.

    ``listen`` is what the API reports: the literal address until the proxy first binds,
    then the socket's real address (kept across disable and enable, so the port sticks).
    """

    def __init__(self, spec: ProxySpec, rng: random.Random) -> None:
        self.name = spec.name
        self.listen = spec.listen
        self.upstream = spec.upstream
        self.protocol = spec.protocol
        self.enabled = False
        self.rng = rng
        self.toxics: list[ToxicEntry] = []
        self.stats = ProxyStats()
        self.runtime = self.protocol_spec.runtime(self)

    @property
    def protocol_spec(self) -> ProtocolSpec:
        return protocol(self.protocol)

    def start(self, listener: socket.socket, reported_listen: str) -> None:
        """Serve on an already bound and listening socket."""
        self.listen = reported_listen
        self.runtime.start(listener)
        self.enabled = True

    def stop(self, keep_listener: bool = False) -> socket.socket | None:
        """Stop listening and close every connection; toxics stay.

        With ``keep_listener`` the listening socket is handed back open, for a proxy that
        replaces this one on the same address.
        """
        listener = self.runtime.stop(keep_listener)
        self.enabled = False
        return listener

    # -- toxics -------------------------------------------------------------------------

    def toxic(self, name: str) -> ToxicEntry:
        for entry in self.toxics:
            if entry.name == name:
                return entry
        raise ToxicNotFound()

    def ordered_toxics(self) -> list[ToxicEntry]:
        """All upstream toxics, then all downstream ones, each in chain order."""
        return [e for e in self.toxics if e.direction is Direction.UPSTREAM] + [
            e for e in self.toxics if e.direction is Direction.DOWNSTREAM
        ]

    def check_name_free(self, name: str) -> None:
        if any(entry.name == name for entry in self.toxics):
            raise ToxicExists()

    def add_toxic(self, entry: ToxicEntry) -> None:
        """Append a toxic to its direction's chain, on open connections too."""
        self.check_name_free(entry.name)
        self.toxics.append(entry)
        self.runtime.toxic_added(entry)

    def update_toxic(self, entry: ToxicEntry, toxic: ToxicKind, toxicity: float) -> None:
        """Restart a toxic in place with new attributes and toxicity."""
        entry.toxic = toxic
        entry.toxicity = toxicity
        self.runtime.toxic_updated(entry)

    def remove_toxic(self, name: str) -> ToxicEntry:
        entry = self.toxic(name)
        entry.cancel_expiry()
        self.toxics.remove(entry)
        self.runtime.toxic_removed(entry)
        return entry

    def remove_all_toxics(self) -> None:
        for entry in list(self.toxics):
            self.remove_toxic(entry.name)
