"""One request through an http proxy: plan, delays, then a made-up reply or the upstream's.

The upstream's response is streamed to the client as it arrives. With no stream toxic
acting on it (the fast path) each chunk is relayed as read, nothing parsed; otherwise
the body is cut into events and pushed through the toxics (`pipeline`).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Any

import h11
import httpx

from chaos_service.engine.listen import split_host_port
from chaos_service.engine.proxy import Proxy
from chaos_service.engine.stats import DirectionCounters
from chaos_service.http_faults.headers import client_response_headers, is_event_stream, upstream_request_headers
from chaos_service.http_faults.pipeline import EventPipeline, Run, Runs, StreamFinished
from chaos_service.http_faults.plan import plan_request
from chaos_service.http_faults.replies import Reply, error_reply
from chaos_service.http_faults.request import RequestInfo
from chaos_service.http_faults.server import ClientConnection
from chaos_service.http_faults.sse import SseSplitter

log = logging.getLogger(__name__)

#: An event stream block larger than this is passed on in pieces, as non-events.
MAX_EVENT = 1024 * 1024


@dataclass(slots=True)
class ProxyContext:
    """What the requests of one enabled proxy share: in-flight runs and toxic state."""

    proxy: Proxy
    runs: Runs = field(default_factory=Runs)
    #: Answer toxics' state across requests, by toxic name.
    states: dict[str, Any] = field(default_factory=dict)


async def serve_request(
    ctx: ProxyContext, conn: ClientConnection, client: httpx.AsyncClient, request: h11.Request, body: bytes
) -> None:
    """Answer one request on ``conn`` (its body already read), through ``client`` upstream."""
    proxy = ctx.proxy
    stats = proxy.stats
    info = RequestInfo(request.method.decode("ascii"), request.target.decode("latin-1"), list(request.headers), body)
    plan = plan_request(info, proxy.toxics, conn.rng, ctx.states)
    for name in plan.fired:
        stats.toxic_fired(name)
    delays = [(ctx.runs.open(name, toxic), seconds) for name, toxic, seconds in plan.delays]
    streams = [ctx.runs.open(name, toxic, toxic.new_state()) for name, toxic in plan.streams]
    try:
        for run, seconds in delays:
            await run.pause(seconds)
        if plan.reply is not None:
            _reply(conn, plan.reply, stats.downstream)
        else:
            await _forward(ctx, conn, client, info, streams)
    finally:
        for run, _ in delays:
            ctx.runs.close(run)
        for run in streams:
            ctx.runs.close(run)


def upstream_url(upstream: str, target: str) -> httpx.URL:
    """``http://<upstream><target>`` (the target's path and query kept byte for byte)."""
    address = split_host_port(upstream, "upstream")
    if "://" in target:  # absolute form, as sent to a forward proxy
        slash = target.find("/", target.find("://") + 3)
        target = target[slash:] if slash >= 0 else "/"
    elif not target.startswith("/"):
        target = "/" + target if target != "*" else "*"
    return httpx.URL(scheme="http", host=address.host, port=address.port, raw_path=target.encode("latin-1"))


def _reply(conn: ClientConnection, reply: Reply, counters: DirectionCounters) -> None:
    conn.send_reply(reply)
    counters.messages += 1
    counters.bytes += len(reply.body)


async def _forward(
    ctx: ProxyContext, conn: ClientConnection, client: httpx.AsyncClient, info: RequestInfo, streams: list[Run]
) -> None:
    proxy = ctx.proxy
    counters = proxy.stats.downstream
    headers = upstream_request_headers(info.headers, identity=bool(streams))
    try:
        url = upstream_url(proxy.upstream, info.target)
        upstream_request = httpx.Request(info.method, url, headers=headers, content=info.body)
        response = await client.send(upstream_request, stream=True)
    except httpx.HTTPError as exc:
        log.info("proxy %s: upstream %s failed: %r", proxy.name, proxy.upstream, exc)
        message = f"The proxy could not reach the upstream {proxy.upstream}: {type(exc).__name__}."
        _reply(conn, error_reply(502, rng=conn.rng, message=message), counters)
        return
    try:
        events = bool(streams) and is_event_stream(response.headers.raw)
        head = client_response_headers(response.headers.raw, keep_length=not events)
        conn.send_head(response.status_code, head, response.reason_phrase.encode("latin-1", "replace"))
        counters.messages += 1
        if events:
            await _relay_events(ctx, conn, response, streams, counters)
        else:
            async for chunk in response.aiter_raw():
                counters.bytes += len(chunk)
                conn.send_data(chunk)
                if conn.write_paused:
                    await conn.drain()
        conn.send_end()
    except StreamFinished as finished:
        if finished.reset:
            conn.reset()
        else:
            conn.send_end()
    except httpx.HTTPError as exc:  # the upstream broke off mid-body: so does the client's response
        log.info("proxy %s: upstream response broke off: %r", proxy.name, exc)
        conn.reset()
    finally:
        await response.aclose()


async def _relay_events(
    ctx: ProxyContext,
    conn: ClientConnection,
    response: httpx.Response,
    streams: list[Run],
    counters: DirectionCounters,
) -> None:
    pipeline = EventPipeline(streams, conn.write, conn.rng, ctx.proxy.stats.toxic_fired)
    splitter = SseSplitter()
    await pipeline.start()
    async for chunk in response.aiter_raw():
        counters.bytes += len(chunk)
        for block in splitter.feed(chunk):
            await pipeline.push(block)
        if splitter.pending > MAX_EVENT:
            await pipeline.push_fragment(splitter.take_pending())
    tail = splitter.take_pending()
    if tail:
        await pipeline.push_fragment(tail)


def new_rng(proxy: Proxy) -> random.Random:
    """A connection's random source, drawn from the proxy's (reproducible with ``--seed``)."""
    return random.Random(proxy.rng.getrandbits(64))
