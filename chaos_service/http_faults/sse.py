"""Server-Sent Events without I/O: an incremental splitter, a parser and serializers.

`SseSplitter` cuts a byte stream into raw blocks, each ending with the blank line that
ends it, whatever the chunking: lines may end with ``\\n``, ``\\r\\n`` or ``\\r``. Blocks
are kept byte for byte (joined, they give the input back), so a proxy can pass an
upstream's events on unchanged. A block is an *event* when it has a ``data`` field
(`is_event`): that is what an EventSource dispatches; comment-only blocks (``: ping``)
and blocks with only ``event:``/``id:``/``retry:`` fields are not.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_LINE_END = re.compile(rb"\r\n?|\n")
_CR = 0x0D
_LF = 0x0A

#: The keep-alive comment sent while a stream is stalled.
KEEPALIVE = b": keep-alive\n\n"


class SseSplitter:
    """Incremental event splitter: feed bytes, get complete blocks back."""

    __slots__ = ("_buffer", "_scan", "_skip_lf")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._scan = 0  # where the unterminated line starts
        self._skip_lf = False  # the input so far ends with CR: a leading LF completes it

    @property
    def pending(self) -> int:
        """Bytes held back: the start of an event whose end has not arrived yet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return the blocks they complete, in order."""
        if not data:
            return []
        buffer = self._buffer
        buffer += data
        scan = self._scan
        if self._skip_lf:
            self._skip_lf = False
            if data[0] == _LF:
                scan += 1
        blocks: list[bytes] = []
        block_start = 0
        end = len(buffer)
        while True:
            match = _LINE_END.search(buffer, scan)
            if match is None:
                break
            line_start, scan = scan, match.end()
            if scan == end and buffer[scan - 1] == _CR:
                self._skip_lf = True
            if match.start() == line_start:  # an empty line ends the block
                blocks.append(bytes(buffer[block_start:scan]))
                block_start = scan
        if block_start:
            del buffer[:block_start]
        self._scan = scan - block_start
        return blocks

    def take_pending(self) -> bytes:
        """Hand back what is held (e.g. at end of stream, or an oversized event) and forget it."""
        data = bytes(self._buffer)
        self._buffer.clear()
        self._scan = 0
        return data


def is_event(block: bytes) -> bool:
    """Whether a block has a ``data`` field, i.e. an EventSource would dispatch it."""
    if b"data" not in block:
        return False
    # a "data" line is "data" alone or "data:..." (0x3A is the colon)
    return any(line.startswith(b"data") and (len(line) == 4 or line[4] == 0x3A) for line in block.splitlines())


@dataclass(frozen=True, slots=True)
class SseEvent:
    """A parsed block: ``data`` is None when the block has no data field (no event)."""

    data: str | None = None
    event: str | None = None
    id: str | None = None
    retry: int | None = None
    comments: tuple[str, ...] = ()


def parse_event(block: bytes) -> SseEvent:
    """Parse one block as the SSE specification does (invalid UTF-8 replaced)."""
    data: list[str] = []
    fields: dict[str, str] = {}
    comments: list[str] = []
    for raw_line in block.splitlines():  # bytes: CR, LF and CRLF only, as the specification says
        if not raw_line:
            continue
        line = raw_line.decode("utf-8", "replace")
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if not name:
            comments.append(value)
        elif name == "data":
            data.append(value)
        elif name in ("event", "id") or (name == "retry" and value.isdigit()):
            fields[name] = value
    return SseEvent(
        data="\n".join(data) if data else None,
        event=fields.get("event"),
        id=fields.get("id"),
        retry=int(fields["retry"]) if "retry" in fields else None,
        comments=tuple(comments),
    )


def format_event(data: str, event: str | None = None, id: str | None = None) -> bytes:
    """One event in wire format, ``\\n`` line ends, ending with its blank line."""
    lines = []
    if event is not None:
        lines.append(f"event: {event}")
    if id is not None:
        lines.append(f"id: {id}")
    lines.extend(f"data: {line}" for line in data.split("\n"))
    return ("\n".join(lines) + "\n\n").encode()


def format_comment(text: str) -> bytes:
    """A comment block (``: text``), which clients ignore: the usual keep-alive."""
    return "".join(f": {line}\n" for line in text.split("\n")).encode() + b"\n"


def error_event(message: str, type: str = "server_error", code: str | None = None) -> bytes:
    """An OpenAI-style in-stream error event: ``data: {"error": {...}}``."""
    error = {"message": message, "type": type, "param": None, "code": code}
    return format_event(json.dumps({"error": error}))
