"""DL/T 645-2007: the golden vectors of STANDARDS.md §7, a frame per data format worked out
by hand (BCD digits, lowest byte first, +0x33, checksum), error replies, and fuzzing."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import dlt645
from protocols.errors import DeviceReplyError, FrameError

ADDRESS = "123456789012"


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def test_standards_golden_vectors() -> None:
    # STANDARDS.md §7, meter 123456789012
    assert dlt645.encode_read(ADDRESS, 0x00010000) == h(
        "FE FE FE FE 68 12 90 78 56 34 12 68 11 04 33 33 34 33 68 16")
    assert dlt645.encode_read_reply(ADDRESS, 0x00010000, 12345.67, preamble=False) == h(
        "68 12 90 78 56 34 12 68 91 08 33 33 34 33 9A 78 56 34 88 16")
    assert dlt645.encode_read_address() == h("FE FE FE FE 68 AA AA AA AA AA AA 68 13 00 DF 16")
    frame = dlt645.parse_frame(h("68 12 90 78 56 34 12 68 91 08 33 33 34 33 9A 78 56 34 88 16"))
    assert dlt645.decode_read_reply(frame, address=ADDRESS, di=0x00010000) == 12345.67


# (DI, reply frame, value in the semantic unit)
REPLIES = [
    # 220.1 V: XXX.X → 2201 → 01 22 → +33 → 34 55
    (0x02010100, "68 12 90 78 56 34 12 68 91 06 33 34 34 35 34 55 76 16", 220.1),
    # −1.234 A: XXX.XXX → 001234 → 34 12 00, sign bit → 34 12 80 → 67 45 B3
    (0x02020100, "68 12 90 78 56 34 12 68 91 07 33 34 35 35 67 45 B3 4E 16", -1.234),
    # 1.5 kW: XX.XXXX → 015000 → 00 50 01 → 33 83 34; the point is in W
    (0x02030000, "68 12 90 78 56 34 12 68 91 07 33 33 36 35 33 83 34 D9 16", 1500.0),
    # power factor 0.956: X.XXX → 0956 → 56 09 → 89 3C
    (0x02060000, "68 12 90 78 56 34 12 68 91 06 33 33 39 35 89 3C B6 16", 0.956),
    # 49.98 Hz, DI 02800002 sent 02 00 80 02
    (0x02800002, "68 12 90 78 56 34 12 68 91 06 35 33 B3 35 CB 7C B4 16", 49.98),
]


@pytest.mark.parametrize(("di", "wire", "value"), REPLIES)
def test_reply_golden(di: int, wire: str, value: float) -> None:
    frame = dlt645.parse_frame(h(wire))
    assert dlt645.decode_read_reply(frame, address=ADDRESS, di=di) == pytest.approx(value)
    assert dlt645.encode_read_reply(ADDRESS, di, value, preamble=False) == h(wire)


def test_error_reply() -> None:
    wire = h("68 12 90 78 56 34 12 68 D1 01 35 8D 16")  # D1: error reply to 11, ERR = 02
    assert dlt645.encode_error_reply(ADDRESS, 0x11, 0x02, preamble=False) == wire
    with pytest.raises(DeviceReplyError, match="no requested data") as info:
        dlt645.decode_read_reply(dlt645.parse_frame(wire), address=ADDRESS, di=0x00010000)
    assert info.value.code == 0x02


def test_address_discovery_and_time_sync() -> None:
    reply = h("68 12 90 78 56 34 12 68 93 06 45 C3 AB 89 67 45 07 16")
    assert dlt645.encode_address_reply(ADDRESS, preamble=False) == reply
    assert dlt645.decode_address_reply(dlt645.parse_frame(reply)) == ADDRESS
    moment = dt.datetime(2026, 3, 2, 10, 0, 0)
    assert dlt645.encode_time_sync(moment, preamble=False) == h(
        "68 99 99 99 99 99 99 68 08 06 33 33 43 35 36 59 E1 16")


def test_scanning_skips_preamble_and_garbage() -> None:
    reply = h("68 12 90 78 56 34 12 68 91 08 33 33 34 33 9A 78 56 34 88 16")
    frame, used = dlt645.scan_frame(b"\x00\xfe\xfe" + reply + b"\xfe")
    assert frame is not None
    assert used == 3 + len(reply)
    assert dlt645.scan_frame(b"\xfe\xfe\xfe")[0] is None
    assert dlt645.scan_frame(reply[:12]) == (None, 0)  # incomplete: wait for more


@pytest.mark.parametrize(("wire", "text"), [
    ("68 12 90 78 56 34 12 68 91 08 33 33 34 33 9A 78 56 34 89 16", "checksum"),
    ("68 12 90 78 56 34 12 68 91 08 33 33 34 33 9A 78 56 34 88 17", "end byte"),
    ("68 12 90 78 56 34 12 69 91 08 33 33 34 33 9A 78 56 34 88 16", "second start byte"),
])
def test_broken_frames(wire: str, text: str) -> None:
    with pytest.raises(FrameError, match=text):
        dlt645.parse_frame(h(wire))


def test_answers_that_are_not_ours() -> None:
    frame = dlt645.parse_frame(dlt645.encode_read_reply("000000000001", 0x00010000, 1.0))
    with pytest.raises(FrameError, match="answer from 000000000001"):
        dlt645.decode_read_reply(frame, address=ADDRESS, di=0x00010000)
    frame = dlt645.parse_frame(dlt645.encode_read_reply(ADDRESS, 0x02010100, 220.0))
    with pytest.raises(FrameError, match="expected 00010000"):
        dlt645.decode_read_reply(frame, address=ADDRESS, di=0x00010000)
    frame = dlt645.parse_frame(dlt645.encode_read(ADDRESS, 0x00010000))
    with pytest.raises(FrameError, match="not a read reply"):
        dlt645.decode_read_reply(frame, address=ADDRESS, di=0x00010000)


def test_non_bcd_data_is_a_frame_error() -> None:
    # FF FF FF FF (after −0x33) is how some meters say "no value"
    raw = dlt645.encode_frame(ADDRESS, 0x91, h("00 00 01 00 FF FF FF FF"), preamble=False)
    with pytest.raises(FrameError, match="not BCD"):
        dlt645.decode_read_reply(dlt645.parse_frame(raw), address=ADDRESS, di=0x00010000)


def test_bad_addresses() -> None:
    for bad in ("12345678901", "12345678901X", ""):
        with pytest.raises(ValueError, match="12 digits"):
            dlt645.address_bytes(bad)


@given(st.binary(max_size=300))
def test_scanner_raises_only_frame_errors(data: bytes) -> None:
    try:
        frame, used = dlt645.scan_frame(data)
        if frame is not None:
            assert 12 <= used <= len(data)
            dlt645.decode_read_reply(frame, address=frame.address, di=0x00010000)
    except FrameError:
        pass


@given(st.sampled_from(sorted(dlt645.DATA_ITEMS)), st.integers(0, 10**6))
def test_values_round_trip(di: int, raw: int) -> None:
    item = dlt645.DATA_ITEMS[di]
    limit = 10 ** (2 * item.size - (1 if item.signed else 0)) - 1
    value = min(raw, limit) / 10**item.decimals * item.scale
    frame = dlt645.parse_frame(dlt645.encode_read_reply(ADDRESS, di, value))
    assert dlt645.decode_read_reply(frame, address=ADDRESS, di=di) == pytest.approx(value)
