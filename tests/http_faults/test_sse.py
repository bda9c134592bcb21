from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from chaos_service.http_faults.sse import (
    KEEPALIVE,
    SseEvent,
    SseSplitter,
    error_event,
    format_comment,
    format_event,
    is_event,
    parse_event,
)


def split_all(chunks: list[bytes]) -> tuple[list[bytes], bytes]:
    splitter = SseSplitter()
    blocks = [block for chunk in chunks for block in splitter.feed(chunk)]
    return blocks, splitter.take_pending()


def events_of(blocks: list[bytes]) -> list[SseEvent]:
    return [parse_event(block) for block in blocks if is_event(block)]


def test_splits_on_blank_lines_keeping_the_bytes() -> None:
    stream = b'data: {"a": 1}\n\ndata: [DONE]\n\n'
    assert split_all([stream]) == ([b'data: {"a": 1}\n\n', b"data: [DONE]\n\n"], b"")


def test_every_line_ending_ends_lines() -> None:
    for eol in (b"\n", b"\r\n", b"\r"):
        stream = b"event: x" + eol + b"data: a" + eol + b"data: b" + eol + eol + b"data: c" + eol + eol
        blocks, rest = split_all([stream])
        assert b"".join(blocks) == stream and rest == b""
        assert events_of(blocks) == [SseEvent(data="a\nb", event="x"), SseEvent(data="c")]


def test_a_partial_event_waits_for_its_end_and_is_handed_back_at_eof() -> None:
    splitter = SseSplitter()
    assert splitter.feed(b"data: par") == []
    assert splitter.feed(b"tial\n") == []
    assert splitter.pending == len(b"data: partial\n")
    assert splitter.feed(b"\ndata: tail") == [b"data: partial\n\n"]
    assert splitter.take_pending() == b"data: tail"
    assert splitter.pending == 0


def test_a_crlf_split_between_cr_and_lf_is_one_line_end() -> None:
    blocks, rest = split_all([b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n"])
    assert b"".join(blocks) + rest == b"data: a\r\n\r\ndata: b\r\n\r\n"
    assert events_of(blocks) == [SseEvent(data="a"), SseEvent(data="b")]


def test_comments_and_field_only_blocks_are_not_events() -> None:
    assert not is_event(KEEPALIVE)
    assert not is_event(b": ping\nevent: x\nid: 3\n\n")
    assert not is_event(b"database: 1\n\n")  # a field called "database", not data
    assert is_event(b"data\n\n")  # an empty data field still dispatches
    assert is_event(b": c\ndata:x\n\n")


def test_parse_follows_the_specification() -> None:
    block = b": hello\nevent: delta\nid: 7\nretry: 1500\nretry: soon\ndata:no space\ndata:  two spaces\nbogus\n\n"
    assert parse_event(block) == SseEvent(
        data="no space\n two spaces", event="delta", id="7", retry=1500, comments=("hello",)
    )
    assert parse_event(b"data\n\n").data == ""
    assert parse_event("data: a\u2028b\x85c\n\n".encode()).data == "a\u2028b\x85c"  # not line ends in SSE


def test_serializers_produce_parseable_blocks() -> None:
    assert format_event("a\nb", event="e", id="1") == b"event: e\nid: 1\ndata: a\ndata: b\n\n"
    assert parse_event(format_event("a\nb")) == SseEvent(data="a\nb")
    assert format_comment("keep-alive") == KEEPALIVE
    assert error_event("boom") == (
        b'data: {"error": {"message": "boom", "type": "server_error", "param": null, "code": null}}\n\n'
    )


_lines = st.lists(
    st.one_of(
        st.text(st.characters(blacklist_characters="\r\n", codec="utf-8"), max_size=12).map(lambda t: f"data: {t}"),
        st.sampled_from(["event: delta", "id: 1", ": comment", "retry: 10", "data", "", ""]),
    ),
    max_size=12,
)


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    lines = draw(_lines)
    return (eol.join(lines) + eol * draw(st.integers(0, 2))).encode()


@st.composite
def chunkings(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    stream = draw(streams())
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    bounds = [0, *cuts, len(stream)]
    return stream, [stream[a:b] for a, b in itertools.pairwise(bounds)]


@given(chunkings())
def test_any_chunking_gives_the_same_events_and_loses_no_byte(case: tuple[bytes, list[bytes]]) -> None:
    stream, chunks = case
    whole_blocks, whole_rest = split_all([stream])
    blocks, rest = split_all(chunks)
    assert b"".join(blocks) + rest == stream
    assert events_of(blocks) == events_of(whole_blocks)
    assert rest.strip(b"\r\n") == whole_rest.strip(b"\r\n")


@given(chunkings())
def test_one_byte_at_a_time_gives_the_same_events(case: tuple[bytes, list[bytes]]) -> None:
    stream, _ = case
    blocks, rest = split_all([stream[i : i + 1] for i in range(len(stream))])
    assert b"".join(blocks) + rest == stream
    assert events_of(blocks) == events_of(split_all([stream])[0])
