"""The per-request plan: which toxics act on a request, decided when it arrives.

Toxics are considered in chain order. Each one that matches the request throws its
toxicity coin (one draw per matching toxic); those that win take part:

* the first answer toxic that answers (``http_error``, a failing ``fail_attempts``)
  provides the reply, and the upstream is not called; later answer toxics and every
  stream toxic then stay out;
* every delay toxic adds its delay, whatever its place in the chain;
* stream toxics are kept, in chain order, for the response body (they act only if the
  response turns out to be an event stream, and count as fired when they act).

The plan is computed once: toxics added or changed later act on later requests only
(but removing or updating a toxic releases what it holds, see `pipeline`).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from chaos_service.engine.model import ToxicEntry
from chaos_service.http_faults.base import AnswerToxic, DelayToxic, StreamToxic
from chaos_service.http_faults.replies import Reply
from chaos_service.http_faults.request import RequestInfo

#: Header naming the toxic that made a reply up, so a fault can be told from a real error.
TOXIC_HEADER = "x-chaos-toxic"


@dataclass(slots=True)
class Plan:
    """What the I/O shell does for one request.

    ``fired`` names the toxics that took effect already (answers and delays).
    """

    reply: Reply | None = None
    delays: list[tuple[str, DelayToxic, float]] = field(default_factory=list)
    streams: list[tuple[str, StreamToxic]] = field(default_factory=list)
    fired: list[str] = field(default_factory=list)


def plan_request(
    request: RequestInfo,
    entries: Iterable[ToxicEntry],
    rng: random.Random,
    states: MutableMapping[str, Any],
) -> Plan:
    """Decide what the proxy's toxics do to ``request``.

    ``states`` holds answer toxics' state across requests, by toxic name (created with
    the toxic's ``new_state`` on first use; the caller drops it when the toxic changes).
    """
    plan = Plan()
    for entry in entries:
        toxic = entry.toxic
        if isinstance(toxic, AnswerToxic) and plan.reply is not None:
            continue
        if not isinstance(toxic, AnswerToxic | DelayToxic | StreamToxic) or not toxic.matches(request):
            continue
        if entry.toxicity < 1.0 and rng.random() >= entry.toxicity:
            continue
        if isinstance(toxic, AnswerToxic):
            if entry.name not in states:
                states[entry.name] = toxic.new_state()
            reply = toxic.answer(request, states[entry.name], rng)
            if reply is not None:
                plan.reply = dataclasses.replace(reply, headers=(*reply.headers, (TOXIC_HEADER, entry.name)))
                plan.fired.append(entry.name)
        elif isinstance(toxic, DelayToxic):
            plan.delays.append((entry.name, toxic, toxic.delay_seconds(rng)))
            plan.fired.append(entry.name)
        else:
            plan.streams.append((entry.name, toxic))
    if plan.reply is not None:
        plan.streams.clear()
    return plan
