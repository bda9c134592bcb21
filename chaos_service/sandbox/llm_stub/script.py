"""What the LLM stub replies, decided from the request alone: pure and deterministic.

A request scripts its reply with an extra body field (the openai client sends it with
``extra_body={"stub": {...}}``) or with a directive in the last user message,
``[[stub tokens=20 pace_ms=5 tool=lookup_order]]``; the body field wins. Without
either, the reply echoes the last user message: ``"Echo: <message>"``.

| key              | meaning                                                          |
|------------------|------------------------------------------------------------------|
| `text`           | the exact reply text                                             |
| `tokens`         | instead of `text`: this many generated tokens                    |
| `pace_ms`        | delay between tokens when streaming                              |
| `first_token_ms` | delay before the first token (after the response headers)        |
| `tool_calls`     | `[{"name": …, "arguments": {…}}]`: reply with these tool calls |
|                  | (unless the last message is a tool result: then with text)       |
| `finish_reason`  | override `stop` (e.g. `length`, `content_filter`)                |

Text is cut into tokens with ``re.findall(r"\\s*\\S+", text)`` (each token carries its
leading space), one streamed chunk per token, so a caller knows the exact stream.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chaos_service.errors import InvalidInput

ROLES = {"system", "developer", "user", "assistant", "tool"}
FINISH_REASONS = {"stop", "length", "content_filter", "tool_calls"}
#: Tool-call arguments are streamed in fragments of this many characters.
ARGUMENT_FRAGMENT = 8
_VOCABULARY = ("The", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "while", "the", "agent")
_DIRECTIVE = re.compile(r"\[\[stub\b([^\]]*)\]\]")
_SCRIPT_KEYS = {"text", "tokens", "pace_ms", "first_token_ms", "tool_calls", "finish_reason"}


class InvalidRequest(InvalidInput):
    """The request is not one OpenAI would accept; ``param`` names the offending field."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.code = code


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as OpenAI sends it

    def fragments(self) -> list[str]:
        """The arguments as the stream delivers them, in pieces (valid JSON only when joined)."""
        text = self.arguments
        return [text[i : i + ARGUMENT_FRAGMENT] for i in range(0, len(text), ARGUMENT_FRAGMENT)] or [""]


@dataclass(frozen=True, slots=True)
class ReplyScript:
    tokens: tuple[str, ...]
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str
    pace_ms: float
    first_token_ms: float
    prompt_tokens: int

    @property
    def text(self) -> str:
        return "".join(self.tokens)

    @property
    def completion_tokens(self) -> int:
        return len(self.tokens) + sum(len(call.fragments()) for call in self.tool_calls)


def split_tokens(text: str) -> list[str]:
    """Cut text into stream tokens; joining them gives the text back (minus trailing space)."""
    return re.findall(r"\s*\S+", text)


def generated_tokens(count: int) -> list[str]:
    words = [_VOCABULARY[i % len(_VOCABULARY)] for i in range(count)]
    return [word if i == 0 else f" {word}" for i, word in enumerate(words)]


def validate_request(body: Any) -> None:
    """Raise `InvalidRequest` for what OpenAI rejects: no model, no or malformed messages."""
    if not isinstance(body, dict):
        raise InvalidRequest("We could not parse the JSON body of your request: expected a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidRequest("you must provide a model parameter", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise InvalidRequest(
                f"Invalid value for 'messages[{index}].role': expected one of {', '.join(sorted(ROLES))}",
                param=f"messages[{index}].role",
            )


def _content_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _directive(text: str) -> dict[str, Any]:
    match = _DIRECTIVE.search(text)
    if match is None:
        return {}
    script: dict[str, Any] = {}
    for pair in match.group(1).split():
        key, _, value = pair.partition("=")
        if key == "tool":
            script.setdefault("tool_calls", []).append({"name": value, "arguments": {}})
        elif key in ("tokens",):
            script[key] = int(value) if value.isdigit() else value
        elif key in ("pace_ms", "first_token_ms"):
            try:
                script[key] = float(value)
            except ValueError:
                script[key] = value
        else:
            script[key] = value
    return script


def _number(script: Mapping[str, Any], key: str, default: float) -> float:
    value = script.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise InvalidRequest(f"stub.{key} must be a number >= 0, got {value!r}", param=f"stub.{key}")
    return float(value)


def _tool_calls(raw: Any, seed: str) -> tuple[ToolCall, ...]:
    if not isinstance(raw, list):
        raise InvalidRequest("stub.tool_calls must be a list of {name, arguments}", param="stub.tool_calls")
    calls = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise InvalidRequest(f"stub.tool_calls[{index}] needs a name", param=f"stub.tool_calls[{index}]")
        arguments = item.get("arguments", {})
        text = arguments if isinstance(arguments, str) else json.dumps(arguments, separators=(",", ":"))
        calls.append(ToolCall(f"call_{seed[:12]}{index}", item["name"], text))
    return tuple(calls)


def plan_reply(body: Mapping[str, Any], *, pace_ms: float = 0.0, first_token_ms: float = 0.0) -> ReplyScript:
    """The reply to a (valid) chat completion request; defaults come from the stub's settings.

    Raises:
        InvalidRequest: the request or its ``stub`` script is malformed.
    """
    validate_request(body)
    messages: list[Mapping[str, Any]] = body["messages"]
    last_user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    user_text = _content_text(last_user) if last_user else ""
    stub = body.get("stub", {})
    if not isinstance(stub, dict):
        raise InvalidRequest("stub must be an object", param="stub")
    unknown = sorted(set(stub) - _SCRIPT_KEYS)
    if unknown:
        raise InvalidRequest(f"unknown stub key {unknown[0]!r} (known: {', '.join(sorted(_SCRIPT_KEYS))})", "stub")
    script = {**_directive(user_text), **stub}
    seed = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    answered_tool = messages[-1].get("role") == "tool"
    calls = () if answered_tool else _tool_calls(script.get("tool_calls", []), seed)
    if "text" in script:
        if not isinstance(script["text"], str):
            raise InvalidRequest("stub.text must be a string", param="stub.text")
        tokens = split_tokens(script["text"])
    elif "tokens" in script:
        count = script["tokens"]
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidRequest(f"stub.tokens must be an integer >= 0, got {count!r}", param="stub.tokens")
        tokens = generated_tokens(count)
    elif answered_tool:
        tokens = split_tokens(f"Tool result: {_content_text(messages[-1])}")
    else:
        tokens = split_tokens(f"Echo: {_DIRECTIVE.sub('', user_text).strip()}")
    if calls:
        tokens = []
    finish = script.get("finish_reason", "tool_calls" if calls else "stop")
    if finish not in FINISH_REASONS:
        raise InvalidRequest(f"stub.finish_reason must be one of {sorted(FINISH_REASONS)}", "stub.finish_reason")
    prompt_tokens = sum(len(_content_text(m).split()) for m in messages)
    return ReplyScript(
        tokens=tuple(tokens),
        tool_calls=calls,
        finish_reason=finish,
        pace_ms=_number(script, "pace_ms", pace_ms),
        first_token_ms=_number(script, "first_token_ms", first_token_ms),
        prompt_tokens=prompt_tokens,
    )
