"""OpenAI's chat-completion wire format for a `ReplyScript`: chunks, bodies, errors."""

from __future__ import annotations

from typing import Any

from chaos_service.sandbox.llm_stub.script import ReplyScript

SYSTEM_FINGERPRINT = "fp_chaos_stub"


def usage(script: ReplyScript) -> dict[str, Any]:
    return {
        "prompt_tokens": script.prompt_tokens,
        "completion_tokens": script.completion_tokens,
        "total_tokens": script.prompt_tokens + script.completion_tokens,
    }


def stream_chunks(
    script: ReplyScript, *, completion_id: str, created: int, model: str, include_usage: bool
) -> list[dict[str, Any]]:
    """Every ``chat.completion.chunk`` of the streamed reply, in order (``[DONE]`` excluded).

    First a role-only chunk, then one chunk per token or tool-call fragment, then the
    finish chunk and, with ``include_usage``, a usage-only chunk with empty ``choices``.
    """

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if include_usage:
            body["usage"] = None
        return body

    chunks = [chunk({"role": "assistant", "content": "" if not script.tool_calls else None, "refusal": None})]
    chunks += [chunk({"content": token}) for token in script.tokens]
    for index, call in enumerate(script.tool_calls):
        for number, fragment in enumerate(call.fragments()):
            function: dict[str, Any] = {"arguments": fragment}
            entry: dict[str, Any] = {"index": index, "function": function}
            if number == 0:
                function["name"] = call.name
                entry.update(id=call.id, type="function")
            chunks.append(chunk({"tool_calls": [entry]}))
    chunks.append(chunk({}, script.finish_reason))
    if include_usage:
        final = chunk({})
        final["choices"] = []
        final["usage"] = usage(script)
        chunks.append(final)
    return chunks


def completion_body(script: ReplyScript, *, completion_id: str, created: int, model: str) -> dict[str, Any]:
    """The non-streaming ``chat.completion`` object."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": None if script.tool_calls else script.text,
        "refusal": None,
        "annotations": [],
    }
    if script.tool_calls:
        message["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in script.tool_calls
        ]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": script.finish_reason}],
        "usage": usage(script),
    }


def error_body(message: str, error_type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}
