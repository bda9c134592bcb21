"""Proxies and toxics as Toxiproxy's JSON, byte for byte where clients can tell."""

from __future__ import annotations

import json
import struct
from typing import Any

from chaos_service.engine.model import Direction, ToxicEntry
from chaos_service.engine.proxy import Proxy


def dumps(value: Any) -> bytes:
    """Compact JSON, escaping ``<``, ``>`` and ``&`` as Go's encoder does."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


def float32_number(value: float) -> float | int:
    """The shortest decimal that reads back as the same float32 (``0.2``, not ``0.2000000029``)."""
    target = struct.pack("f", value)
    for digits in range(1, 10):
        candidate = float(f"{value:.{digits}g}")
        if struct.pack("f", candidate) == target:
            break
    else:
        candidate = value
    return int(candidate) if candidate.is_integer() else candidate


def toxic_json(entry: ToxicEntry, now: float) -> dict[str, Any]:
    body: dict[str, Any] = {
        "attributes": entry.toxic.attribute_values(),
        "name": entry.name,
        "type": entry.type_name,
        "stream": entry.stream,
        "toxicity": float32_number(entry.toxicity),
    }
    if entry.ttl is not None and entry.expires_at is not None:
        body["ttl"] = entry.ttl
        body["expires_in"] = round(max(entry.expires_at - now, 0.0), 3)
    return body


def proxy_json(proxy: Proxy, now: float) -> dict[str, Any]:
    return {
        "name": proxy.name,
        "listen": proxy.listen,
        "upstream": proxy.upstream,
        "enabled": proxy.enabled,
        "protocol": proxy.protocol,
        "toxics": [toxic_json(entry, now) for entry in proxy.ordered_toxics()],
    }


def stats_json(proxy: Proxy) -> dict[str, Any]:
    """Counters since the proxy was created; toxics that ever took effect, by name."""
    live = proxy.runtime.live_bytes() if proxy.enabled else {}
    has_messages = proxy.protocol_spec.message_unit is not None
    fired = dict.fromkeys((entry.name for entry in proxy.ordered_toxics()), 0) | proxy.stats.fired

    def direction(d: Direction) -> dict[str, Any]:
        counters = proxy.stats.direction(d)
        return {"bytes": counters.bytes + live.get(d, 0), "messages": counters.messages if has_messages else None}

    return {
        "name": proxy.name,
        "protocol": proxy.protocol,
        "enabled": proxy.enabled,
        "connections": {
            "open": proxy.runtime.open_connections() if proxy.enabled else 0,
            "total": proxy.stats.connections,
        },
        "message_unit": proxy.protocol_spec.message_unit,
        "upstream": direction(Direction.UPSTREAM),
        "downstream": direction(Direction.DOWNSTREAM),
        "toxics": {name: {"fired": count} for name, count in fired.items()},
    }
