"""sse_cut: end a stream after some events, cleanly or with a TCP reset.

``clean`` finishes the HTTP response properly with no more events (so no ``[DONE]``): a
client sees a stream that ended early. ``reset`` aborts the connection mid-body: a
client sees a connection error.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos_service.http_faults.base import AFTER, AfterEvents, Finish, Op
from chaos_service.toxics.attributes import Choice

MODES = ("clean", "reset")


@dataclass(frozen=True, slots=True)
class SseCut(AfterEvents):
    mode: str = "clean"

    type_name = "sse_cut"
    attributes = (
        AFTER,
        Choice("mode", MODES, "clean: end the response; reset: abort it with a TCP RST"),
    )

    def act(self) -> list[Op]:
        return [Finish(reset=self.mode == "reset")]
