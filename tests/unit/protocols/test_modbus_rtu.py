"""Modbus RTU framing: golden frames, answer checks, and fuzzing of the parsers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import modbus_rtu as rtu
from protocols.errors import DeviceReplyError, FrameError


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# (request, frame) — the first is the textbook example of the Modbus over serial line spec
REQUESTS = [
    (rtu.read_request(rtu.Function.READ_HOLDING_REGISTERS, 0x0000, 10), 1,
     "01 03 00 00 00 0A C5 CD"),
    (rtu.read_request(rtu.Function.READ_INPUT_REGISTERS, 0x0048, 2), 1,
     "01 04 00 48 00 02 F1 DD"),
    (rtu.read_request(rtu.Function.READ_COILS, 0x0013, 0x25), 0x11,
     "11 01 00 13 00 25 0E 84"),
    (rtu.write_request(coil=True, address=0x00AC, values=[True]), 0x11,
     "11 05 00 AC FF 00 4E 8B"),
    (rtu.write_request(coil=False, address=0x0001, values=[0x0003]), 0x11,
     "11 06 00 01 00 03 9A 9B"),
    (rtu.write_request(coil=False, address=0x0001, values=[0x000A, 0x0102]), 0x11,
     "11 10 00 01 00 02 04 00 0A 01 02 C6 F0"),
]


@pytest.mark.parametrize(("request_", "unit", "wire"), REQUESTS)
def test_request_frames(request_: rtu.Request, unit: int, wire: str) -> None:
    assert rtu.frame(unit, request_.pdu()) == h(wire)
    parsed_unit, parsed = rtu.parse_request(h(wire))
    assert parsed_unit == unit
    assert (parsed.function, parsed.address, parsed.count) == (
        request_.function, request_.address, request_.count)
    assert rtu.request_length(h(wire)) == len(h(wire))


def test_crc_of_the_spec_example() -> None:
    assert rtu.crc16(h("01 03 00 00 00 0A")) == 0xCDC5  # sent C5 CD, low byte first


def test_crcs_agree_with_pymodbus() -> None:
    """An independent implementation checks every CRC in this file's tables."""
    from pymodbus.framer.rtu import FramerRTU

    for wire in [w for *_, w in REQUESTS] + [w for _, w, *_ in ANSWERS]:
        adu = h(wire)
        assert FramerRTU.compute_CRC(adu[:-2]).to_bytes(2, "big") == adu[-2:], wire


ANSWERS = [
    # read holding 0x006B+3 → 0x022B 0x0000 0x0064 (spec example)
    (rtu.read_request(rtu.Function.READ_HOLDING_REGISTERS, 0x006B, 3),
     "11 03 06 02 2B 00 00 00 64 C8 BA", (0x022B, 0x0000, 0x0064), ()),
    # read coils 20–56 of unit 17 (spec example): CD 6B B2 0E 1B
    (rtu.read_request(rtu.Function.READ_COILS, 0x0013, 0x25),
     "11 01 05 CD 6B B2 0E 1B 45 E6", (),
     tuple(bool(0x1B0EB26BCD >> i & 1) for i in range(37))),
]


@pytest.mark.parametrize(("request_", "wire", "registers", "bits"), ANSWERS)
def test_answers(request_: rtu.Request, wire: str, registers: tuple[int, ...],
                 bits: tuple[bool, ...]) -> None:
    adu = h(wire)
    assert rtu.response_length(adu[:3], request_) == len(adu)
    response = rtu.parse_response(adu, request_, unit=0x11)
    assert (response.registers, response.bits) == (registers, bits)


def test_exception_answer() -> None:
    request = rtu.read_request(rtu.Function.READ_INPUT_REGISTERS, 0, 2)
    adu = rtu.exception_response(1, 4, 2)
    assert adu == h("01 84 02 C2 C1")
    assert rtu.response_length(adu[:2], request) == 5
    with pytest.raises(DeviceReplyError) as info:
        rtu.parse_response(adu, request, unit=1)
    assert info.value.code == 2
    assert "illegal data address" in str(info.value)


@pytest.mark.parametrize(("wire", "text"), [
    ("11 03 06 02 2B 00 00 00 64 C8 BB", "CRC mismatch"),
    ("12 03 06 02 2B 00 00 00 64 04 AB", "answer from unit 18"),
    ("11 04 06 02 2B 00 00 00 64 04 BC", "answer to function 4"),
    ("11 03 04 02 2B 00 00 BB AC", "4 bytes for 3 registers"),
    ("11 03", "too short"),
])
def test_answers_that_are_not_the_answer(wire: str, text: str) -> None:
    adu = h(wire)
    adu = adu[:-2] + rtu.crc16(adu[:-2]).to_bytes(2, "little") if "CRC" not in text and len(
        adu) > 4 else adu
    request = rtu.read_request(rtu.Function.READ_HOLDING_REGISTERS, 0x006B, 3)
    with pytest.raises(FrameError, match=text):
        rtu.parse_response(adu, request, unit=0x11)


def test_write_answers_echo_the_request() -> None:
    request = rtu.write_request(coil=False, address=1, values=[260])
    assert rtu.parse_response(rtu.write_response(1, request), request, unit=1).registers == ()
    other = rtu.write_request(coil=False, address=1, values=[250])
    with pytest.raises(FrameError, match="echo"):
        rtu.parse_response(rtu.write_response(1, other), request, unit=1)


def test_request_limits() -> None:
    with pytest.raises(ValueError, match="1–125"):
        rtu.read_request(rtu.Function.READ_HOLDING_REGISTERS, 0, 126)
    with pytest.raises(ValueError, match="outside"):
        rtu.read_request(rtu.Function.READ_COILS, 65535, 2)
    with pytest.raises(ValueError, match="not a register value"):
        rtu.write_request(coil=False, address=0, values=[70000])


@given(st.binary(max_size=300))
def test_answer_parser_raises_only_frame_errors(data: bytes) -> None:
    request = rtu.read_request(rtu.Function.READ_HOLDING_REGISTERS, 0, 3)
    try:
        rtu.response_length(data, request)
        rtu.parse_response(data, request, unit=data[0] if data else 1)
    except FrameError:
        pass


@given(st.integers(1, 247), st.integers(0, 65400), st.lists(st.integers(0, 0xFFFF),
                                                          min_size=1, max_size=100))
def test_read_answer_round_trip(unit: int, address: int, values: list[int]) -> None:
    request = rtu.read_request(rtu.Function.READ_INPUT_REGISTERS, address, len(values))
    adu = rtu.read_response(unit, request, values)
    assert rtu.parse_response(adu, request, unit=unit).registers == tuple(values)
