"""Relayed data frames are byte for byte what websockets would write, and parse back."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from chaos_service.ws_faults.framing import data_frame

# lengths around the 7-bit / 16-bit / 64-bit length encodings
payloads = st.one_of(
    st.binary(max_size=300),
    st.integers(65_530, 65_540).map(lambda n: b"p" * n),
)


def parse(raw: bytes, mask: bool) -> Frame:
    reader = StreamReader()
    reader.feed_data(raw)
    parser = Frame.parse(reader.read_exact, mask=mask)
    try:
        next(parser)
    except StopIteration as done:
        frame: Frame = done.value
        return frame
    raise AssertionError("incomplete frame")


@given(payloads, st.booleans())
def test_unmasked_frames_match_websockets(data: bytes, text: bool) -> None:
    opcode = Opcode.TEXT if text else Opcode.BINARY
    assert data_frame(data, text, mask=False) == Frame(opcode, data).serialize(mask=False)


@given(payloads, st.booleans())
def test_masked_frames_parse_back(data: bytes, text: bool) -> None:
    frame = parse(data_frame(data, text, mask=True), mask=True)
    assert (frame.opcode, frame.fin, frame.data) == (Opcode.TEXT if text else Opcode.BINARY, True, data)


def test_each_masked_frame_gets_its_own_key() -> None:
    assert data_frame(b"same", True, mask=True)[2:6] != data_frame(b"same", True, mask=True)[2:6]
