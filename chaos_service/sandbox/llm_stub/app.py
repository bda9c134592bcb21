"""The LLM stub's HTTP app: an OpenAI-compatible chat completions endpoint."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from chaos_service.sandbox.llm_stub.script import InvalidRequest, ReplyScript, plan_reply
from chaos_service.sandbox.llm_stub.wire import completion_body, error_body, stream_chunks

DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "chaos-stub")


@dataclass(frozen=True, slots=True)
class StubSettings:
    models: tuple[str, ...] = DEFAULT_MODELS
    api_key: str | None = None
    pace_ms: float = 0.0
    first_token_ms: float = 0.0
    created: float = field(default_factory=time.time)


def _error(status: int, message: str, error_type: str, param: str | None = None, code: str | None = None) -> Response:
    return JSONResponse(error_body(message, error_type, param, code), status_code=status)


def _headers(request_id: str) -> dict[str, str]:
    return {
        "x-request-id": request_id,
        "openai-processing-ms": "1",
        "x-ratelimit-limit-requests": "10000",
        "x-ratelimit-remaining-requests": "9999",
        "x-ratelimit-reset-requests": "6ms",
    }


def _sse(chunk: object) -> bytes:
    return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"


async def _stream(script: ReplyScript, chunks: list[dict[str, object]]) -> AsyncIterator[bytes]:
    yield _sse(chunks[0])  # the role chunk goes out with the headers
    pace = script.pace_ms / 1000
    first = script.first_token_ms / 1000
    for index, chunk in enumerate(chunks[1:]):
        delay = first if index == 0 else (pace if _is_token(chunk) else 0.0)
        if delay:
            await asyncio.sleep(delay)
        yield _sse(chunk)
    yield b"data: [DONE]\n\n"


def _is_token(chunk: dict[str, object]) -> bool:
    choices = chunk.get("choices")
    return bool(choices) and choices[0].get("finish_reason") is None  # type: ignore[index]


class StubApi:
    def __init__(self, settings: StubSettings) -> None:
        self.settings = settings

    def _authorised(self, request: Request) -> bool:
        if self.settings.api_key is None:
            return True
        return request.headers.get("authorization") == f"Bearer {self.settings.api_key}"

    async def chat_completions(self, request: Request) -> Response:
        if not self._authorised(request):
            return _error(401, "Incorrect API key provided.", "invalid_request_error", code="invalid_api_key")
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "We could not parse the JSON body of your request.", "invalid_request_error")
        try:
            script = plan_reply(body, pace_ms=self.settings.pace_ms, first_token_ms=self.settings.first_token_ms)
        except InvalidRequest as exc:
            return _error(400, str(exc), "invalid_request_error", exc.param, exc.code)
        model = body["model"]
        if model not in self.settings.models:
            message = f"The model `{model}` does not exist or you do not have access to it."
            return _error(404, message, "invalid_request_error", code="model_not_found")
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        headers = _headers(f"req_{uuid.uuid4().hex[:16]}")
        if not body.get("stream"):
            if script.first_token_ms:
                await asyncio.sleep(script.first_token_ms / 1000)
            payload = completion_body(script, completion_id=completion_id, created=created, model=model)
            return JSONResponse(payload, headers=headers)
        options = body.get("stream_options") or {}
        include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
        chunks = stream_chunks(
            script, completion_id=completion_id, created=created, model=model, include_usage=include_usage
        )
        return StreamingResponse(
            _stream(script, chunks), media_type="text/event-stream; charset=utf-8", headers=headers
        )

    async def models(self, request: Request) -> Response:
        created = int(self.settings.created)
        data = [
            {"id": m, "object": "model", "created": created, "owned_by": "chaos-service"} for m in self.settings.models
        ]
        return JSONResponse({"object": "list", "data": data})

    async def model(self, request: Request) -> Response:
        name = request.path_params["model"]
        if name not in self.settings.models:
            message = f"The model '{name}' does not exist"
            return _error(404, message, "invalid_request_error", "model", "model_not_found")
        return JSONResponse(
            {"id": name, "object": "model", "created": int(self.settings.created), "owned_by": "chaos-service"}
        )


async def _not_found(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        message = f"Invalid method for URL ({request.method} {request.url.path})"
        return _error(405, message, "invalid_request_error")
    return _error(exc.status_code, f"Invalid URL ({request.method} {request.url.path})", "invalid_request_error")


def create_app(settings: StubSettings | None = None) -> Starlette:
    api = StubApi(settings or StubSettings())
    return Starlette(
        routes=[
            Route("/v1/chat/completions", api.chat_completions, methods=["POST"]),
            Route("/v1/models", api.models, methods=["GET"]),
            Route("/v1/models/{model}", api.model, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _not_found},
    )
