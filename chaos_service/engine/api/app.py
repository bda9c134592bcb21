"""The Toxiproxy v2 HTTP API over a `ProxyCollection`: parse, call one method, render.

Routes, status codes and bodies follow Toxiproxy 2.12; additions are additive fields
(``protocol`` on proxies, ``ttl``/``expires_in`` on toxics) and a version header.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chaos_service import TOXIPROXY_API_VERSION, __version__
from chaos_service.engine.api.decode import (
    ProxyBody,
    ToxicBody,
    ToxicUpdateBody,
    parse_body,
    parse_list,
)
from chaos_service.engine.api.errors import error_response, status_for
from chaos_service.engine.api.render import dumps, proxy_json, stats_json, toxic_json
from chaos_service.engine.collection import PopulateFailed, ProxyCollection, ToxicUpdate
from chaos_service.errors import ChaosServiceError, InvalidInput

log = logging.getLogger(__name__)

#: Request bodies larger than this are refused (413) without being read further.
MAX_BODY = 1024 * 1024
_BASE32HEX = "0123456789abcdefghijklmnopqrstuv"


def _json(value: Any, status: int = 200) -> Response:
    return Response(dumps(value), status_code=status, media_type="application/json")


async def _read_body(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise InvalidInput(f"bad request body: larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class EngineApi:
    """Route handlers bound to one collection."""

    def __init__(self, collection: ProxyCollection) -> None:
        self.proxies = collection

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    async def list_proxies(self, request: Request) -> Response:
        now = self._now()
        return _json({p.name: proxy_json(p, now) for p in self.proxies.sorted_by_name()})

    async def create_proxy(self, request: Request) -> Response:
        body = parse_body(await _read_body(request), ProxyBody, "proxy")
        proxy = await self.proxies.create(body.spec())
        return _json(proxy_json(proxy, self._now()), 201)

    async def populate(self, request: Request) -> Response:
        try:
            bodies = parse_list(await _read_body(request), ProxyBody, "proxy")
            proxies = await self.proxies.populate([body.spec() for body in bodies])
        except (InvalidInput, PopulateFailed) as exc:
            cause = exc.cause if isinstance(exc, PopulateFailed) else exc
            done = exc.done if isinstance(exc, PopulateFailed) else None
            status = status_for(cause)
            now = self._now()
            rendered = None if done is None else [proxy_json(p, now) for p in done]
            return _json({"error": str(cause), "status": status, "proxies": rendered}, status)
        now = self._now()
        return _json({"proxies": [proxy_json(p, now) for p in proxies]}, 201)

    async def show_proxy(self, request: Request) -> Response:
        proxy = self.proxies.get(request.path_params["proxy"])
        return _json(proxy_json(proxy, self._now()))

    async def update_proxy(self, request: Request) -> Response:
        name = request.path_params["proxy"]
        self.proxies.get(name)
        body = parse_body(await _read_body(request), ProxyBody, "proxy")
        proxy = await self.proxies.update(name, body.listen, body.upstream, body.enabled)
        return _json(proxy_json(proxy, self._now()))

    async def delete_proxy(self, request: Request) -> Response:
        await self.proxies.delete(request.path_params["proxy"])
        return Response(status_code=204)

    async def reset(self, request: Request) -> Response:
        await self.proxies.reset()
        return Response(status_code=204)

    async def proxy_stats(self, request: Request) -> Response:
        return _json(stats_json(self.proxies.get(request.path_params["proxy"])))

    async def list_toxics(self, request: Request) -> Response:
        proxy = self.proxies.get(request.path_params["proxy"])
        now = self._now()
        return _json([toxic_json(entry, now) for entry in proxy.ordered_toxics()])

    async def create_toxic(self, request: Request) -> Response:
        proxy_name = request.path_params["proxy"]
        self.proxies.get(proxy_name)
        body = parse_body(await _read_body(request), ToxicBody, "toxic")
        entry = self.proxies.add_toxic(
            proxy_name,
            type_name=body.type or "",
            name=body.name,
            stream=body.stream,
            toxicity=body.toxicity,
            attributes=body.attributes,
            ttl=body.ttl,
        )
        return _json(toxic_json(entry, self._now()))

    async def show_toxic(self, request: Request) -> Response:
        proxy = self.proxies.get(request.path_params["proxy"])
        return _json(toxic_json(proxy.toxic(request.path_params["toxic"]), self._now()))

    async def update_toxic(self, request: Request) -> Response:
        proxy_name, toxic_name = request.path_params["proxy"], request.path_params["toxic"]
        self.proxies.get(proxy_name).toxic(toxic_name)
        body = parse_body(await _read_body(request), ToxicUpdateBody, "toxic")
        update = ToxicUpdate(attributes=body.attributes, toxicity=body.toxicity, ttl=body.ttl)
        entry = self.proxies.update_toxic(proxy_name, toxic_name, update)
        return _json(toxic_json(entry, self._now()))

    async def delete_toxic(self, request: Request) -> Response:
        self.proxies.remove_toxic(request.path_params["proxy"], request.path_params["toxic"])
        return Response(status_code=204)

    async def version(self, request: Request) -> Response:
        body = f'{{"version": "{TOXIPROXY_API_VERSION}"}}\n'.encode()
        return Response(body, media_type="application/json;charset=utf-8")

    def routes(self) -> list[Route]:
        routes = [
            Route("/proxies", self.list_proxies, methods=["GET"]),
            Route("/proxies", self.create_proxy, methods=["POST"]),
            Route("/populate", self.populate, methods=["POST"]),
            Route("/proxies/{proxy}", self.show_proxy, methods=["GET"]),
            # POST is deprecated in Toxiproxy but still what toxiproxy-python sends.
            Route("/proxies/{proxy}", self.update_proxy, methods=["POST", "PATCH"]),
            Route("/proxies/{proxy}", self.delete_proxy, methods=["DELETE"]),
            Route("/proxies/{proxy}/stats", self.proxy_stats, methods=["GET"]),
            Route("/proxies/{proxy}/toxics", self.list_toxics, methods=["GET"]),
            Route("/proxies/{proxy}/toxics", self.create_toxic, methods=["POST"]),
            Route("/proxies/{proxy}/toxics/{toxic}", self.show_toxic, methods=["GET"]),
            Route("/proxies/{proxy}/toxics/{toxic}", self.update_toxic, methods=["POST", "PATCH"]),
            Route("/proxies/{proxy}/toxics/{toxic}", self.delete_toxic, methods=["DELETE"]),
            Route("/reset", self.reset, methods=["POST"]),
            Route("/version", self.version, methods=["GET"]),
        ]
        for route in routes:
            route.methods.discard("HEAD")  # type: ignore[union-attr]  # Starlette adds it to GET routes
        return routes


class ToxiproxyHeaders:
    """Request id and version headers on every response; browsers refused (anti-CSRF)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = "".join(secrets.choice(_BASE32HEX) for _ in range(20)).encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-toxiproxy-request-id", request_id))
                headers.append((b"x-chaos-service-version", __version__.encode()))
                message = {**message, "headers": headers}
            await send(message)

        user_agent = dict(scope["headers"]).get(b"user-agent", b"")
        if user_agent.startswith(b"Mozilla/"):
            response = PlainTextResponse("User agent not allowed\n", status_code=403)
            await response(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return PlainTextResponse("404 page not found\n", status_code=404)
    return Response(status_code=exc.status_code)  # 405: empty body, as gorilla/mux sends


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ChaosServiceError)
    return error_response(str(exc), status_for(exc))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("internal error on %s %s", request.method, request.url.path)
    return error_response(f"internal error: {exc.__class__.__name__}", 500)


def create_app(collection: ProxyCollection) -> ASGIApp:
    """The engine's ASGI app."""
    api = EngineApi(collection)
    app = Starlette(
        routes=api.routes(),
        exception_handlers={
            HTTPException: _http_exception,
            ChaosServiceError: _domain_error,
            Exception: _unexpected,
        },
    )
    app.router.redirect_slashes = False
    return ToxiproxyHeaders(app)
