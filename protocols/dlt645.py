"""DL/T 645-2007 (多功能电能表通信协议): frames, reads, address discovery, error replies.

Our own codec rather than the `dlt645` package from PyPI: the protocol needs about 200
lines of pure functions, which we can golden-test byte for byte against the vectors in
STANDARDS.md §7 and fuzz; the package is a single-author project that pulls in loguru and
does its own serial I/O, while the edge needs a sans-I/O codec it can drive over any link
(RS-485, a transparent serial server, the simulator's TCP port) under its own bus lock,
gap and timeouts. See docs/devices/dlt645.md.

Frame layout::

    [FE FE FE FE] 68 A0 … A5 68 C L D0 … D(L-1) CS 16

- address: 12 BCD digits, lowest byte first (meter 123456789012 → `12 90 78 56 34 12`);
- C: bit 7 set in replies, bit 6 set in error replies, bit 5 "more frames follow";
  function 11 read data, 13 read address, 08 broadcast time sync;
- every data byte is sent +0x33 (and the receiver subtracts it);
- CS: sum of every byte from the first 68 to the end of data, mod 256.

Values are BCD, lowest byte first; current, power and power factor carry their sign in the
top bit of the highest byte.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from decimal import Decimal

from protocols import frame68
from protocols.bcd import bcd_to_int, int_to_bcd
from protocols.errors import DeviceReplyError, FrameError

PROTOCOL = "dlt645"
PREAMBLE = b"\xfe\xfe\xfe\xfe"
BROADCAST_READ_ADDRESS = "AAAAAAAAAAAA"
BROADCAST_TIME_SYNC = "999999999999"
MAX_DATA = 200  # the standard's limit for L


class Control(enum.IntEnum):
    BROADCAST_TIME = 0x08
    READ_DATA = 0x11
    READ_FOLLOWING = 0x12
    READ_ADDRESS = 0x13
    WRITE_DATA = 0x14


REPLY = 0x80
ERROR = 0x40
FOLLOWS = 0x20

ERROR_BITS = {
    0x01: "other error",
    0x02: "no requested data",
    0x04: "password wrong or not authorised",
    0x08: "communication rate cannot be changed",
    0x10: "year time zones exceeded",
    0x20: "daily time periods exceeded",
    0x40: "tariffs exceeded",
}


@dataclass(frozen=True, slots=True)
class DataItem:
    """One data identifier of the standard's data table and its format."""

    di: int
    point: str  # the semantic point name the edge sends
    unit: str
    size: int  # bytes
    decimals: int
    signed: bool = False
    scale: float = 1.0  # applied after decoding (kW → W)
    cumulative: bool = False


DATA_ITEMS: dict[int, DataItem] = {
    item.di: item
    for item in (
        DataItem(0x00000000, "energy_total_kwh", "kWh", 4, 2, cumulative=True),
        DataItem(0x00010000, "energy_import_kwh", "kWh", 4, 2, cumulative=True),
        DataItem(0x00020000, "energy_export_kwh", "kWh", 4, 2, cumulative=True),
        DataItem(0x02010100, "voltage_l1_v", "V", 2, 1),
        DataItem(0x02010200, "voltage_l2_v", "V", 2, 1),
        DataItem(0x02010300, "voltage_l3_v", "V", 2, 1),
        DataItem(0x02020100, "current_l1_a", "A", 3, 3, signed=True),
        DataItem(0x02020200, "current_l2_a", "A", 3, 3, signed=True),
        DataItem(0x02020300, "current_l3_a", "A", 3, 3, signed=True),
        DataItem(0x02030000, "power_w", "W", 3, 4, signed=True, scale=1000.0),
        DataItem(0x02060000, "power_factor", "1", 2, 3, signed=True),
        DataItem(0x02800002, "frequency_hz", "Hz", 2, 2),
    )
}
ITEMS_BY_POINT = {item.point: item for item in DATA_ITEMS.values()}


# -- addresses and BCD ----------------------------------------------------------------


def _check_address(address: str) -> str:
    text = address.upper()
    if len(text) != 12 or not all(c in "0123456789A" for c in text):
        raise ValueError(f"a DL/T 645 address is 12 digits, got {address!r}")
    return text


def address_bytes(address: str) -> bytes:
    """`123456789012` → `12 90 78 56 34 12` (BCD, lowest byte first)."""
    text = _check_address(address)
    return bytes.fromhex(text)[::-1]


def address_text(raw: bytes) -> str:
    return raw[::-1].hex().upper()


# -- frames ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    address: str
    control: int
    data: bytes  # with 0x33 already subtracted

    @property
    def is_reply(self) -> bool:
        return bool(self.control & REPLY)

    @property
    def is_error(self) -> bool:
        return bool(self.control & ERROR)

    @property
    def function(self) -> int:
        return self.control & 0x1F


def encode_frame(address: str, control: int, data: bytes = b"", *,
                 preamble: bool = True) -> bytes:
    if len(data) > MAX_DATA:
        raise ValueError(f"data of {len(data)} bytes exceeds {MAX_DATA}")
    body = (b"\x68" + address_bytes(address) + b"\x68" + bytes([control, len(data)])
            + bytes((b + 0x33) & 0xFF for b in data))
    return frame68.close(body, PREAMBLE if preamble else b"")


def _check_second_start(header: bytes) -> None:
    if header[7] != 0x68:
        raise FrameError(PROTOCOL, "second start byte 68 missing", header)


def _frame(raw: bytes) -> Frame:
    data = bytes((b - 0x33) & 0xFF for b in raw[10:-2])
    return Frame(address_text(raw[1:7]), raw[8], data)


def scan_frame(buffer: bytes) -> tuple[Frame | None, int]:
    """Find the first complete frame in `buffer`: (frame, bytes consumed) or (None, n)
    where n bytes of leading garbage/preamble can be dropped and more bytes are needed.

    A frame whose checksum or end byte is wrong raises `FrameError` (the caller drops the
    buffer: on a half-duplex bus nothing after a broken frame can be trusted).
    """
    raw, used = frame68.scan(buffer, protocol=PROTOCOL, length_at=9,
                             check_header=_check_second_start)
    return (None, used) if raw is None else (_frame(raw), used)


def parse_frame(raw: bytes) -> Frame:
    return _frame(frame68.whole(raw, protocol=PROTOCOL, length_at=9,
                                check_header=_check_second_start))


# -- requests -------------------------------------------------------------------------


def di_bytes(di: int) -> bytes:
    """DI3 DI2 DI1 DI0 = 00 01 00 00 is sent DI0 first: `00 00 01 00`."""
    return di.to_bytes(4, "little")


def encode_read(address: str, di: int, *, preamble: bool = True) -> bytes:
    return encode_frame(address, Control.READ_DATA, di_bytes(di), preamble=preamble)


def encode_read_address(*, preamble: bool = True) -> bytes:
    """Address discovery: only sensible with exactly one meter on the bus."""
    return encode_frame(BROADCAST_READ_ADDRESS, Control.READ_ADDRESS, preamble=preamble)


def encode_time_sync(moment: dt.datetime, *, preamble: bool = True) -> bytes:
    """Broadcast time sync (no reply): ss mm hh DD MM YY in local meter time."""
    fields = (moment.second, moment.minute, moment.hour, moment.day, moment.month,
              moment.year % 100)
    return encode_frame(BROADCAST_TIME_SYNC, Control.BROADCAST_TIME,
                        b"".join(int_to_bcd(f, 1) for f in fields), preamble=preamble)


# -- replies --------------------------------------------------------------------------


def _raise_if_error(frame: Frame) -> None:
    if frame.is_error:
        code = frame.data[0] if frame.data else 0
        names = [name for bit, name in ERROR_BITS.items() if code & bit] or ["unknown"]
        raise DeviceReplyError(PROTOCOL, code, f"error reply 0x{code:02X} ({', '.join(names)})")


def decode_value(item: DataItem, raw: bytes) -> float:
    if len(raw) != item.size:
        raise FrameError(PROTOCOL, f"{item.point}: {len(raw)} bytes, expected {item.size}")
    negative = False
    if item.signed:
        negative = bool(raw[-1] & 0x80)
        raw = raw[:-1] + bytes([raw[-1] & 0x7F])
    # In decimal: kW with 4 decimals × 1000 gives 2727.8 W, not 2727.7999999999997.
    number = Decimal(bcd_to_int(raw, protocol=PROTOCOL)).scaleb(-item.decimals)
    return float((-number if negative else number) * Decimal(repr(item.scale)))


def encode_value(item: DataItem, value: float) -> bytes:
    number = value / item.scale
    negative = number < 0
    if negative and not item.signed:
        raise ValueError(f"{item.point} cannot be negative")
    raw = bytearray(int_to_bcd(round(abs(number) * 10**item.decimals), item.size))
    if item.signed:
        if raw[-1] & 0x80:
            raise ValueError(f"{value} does not fit {item.point}")
        if negative:
            raw[-1] |= 0x80
    return bytes(raw)


def decode_read_reply(frame: Frame, *, address: str, di: int) -> float:
    """The value of `di` from the meter's answer; checks it is the answer we asked for."""
    if frame.address != _check_address(address):
        raise FrameError(PROTOCOL, f"answer from {frame.address}, expected {address}")
    if not frame.is_reply or frame.function != Control.READ_DATA:
        raise FrameError(PROTOCOL, f"control 0x{frame.control:02X} is not a read reply")
    _raise_if_error(frame)
    if frame.data[:4] != di_bytes(di):
        raise FrameError(PROTOCOL, f"answer for DI {frame.data[:4][::-1].hex().upper()}, "
                         f"expected {di:08X}")
    item = DATA_ITEMS.get(di)
    if item is None:
        raise FrameError(PROTOCOL, f"DI {di:08X} has no known format")
    return decode_value(item, frame.data[4:])


def decode_address_reply(frame: Frame) -> str:
    if not frame.is_reply or frame.function != Control.READ_ADDRESS:
        raise FrameError(PROTOCOL, f"control 0x{frame.control:02X} is not an address reply")
    _raise_if_error(frame)
    if len(frame.data) != 6:
        raise FrameError(PROTOCOL, f"address reply of {len(frame.data)} bytes")
    found = address_text(frame.data)
    if found != frame.address:
        raise FrameError(PROTOCOL, f"address {found} in data, {frame.address} in header")
    return found


def encode_read_reply(address: str, di: int, value: float, *, preamble: bool = True) -> bytes:
    item = DATA_ITEMS[di]
    return encode_frame(address, REPLY | Control.READ_DATA,
                        di_bytes(di) + encode_value(item, value), preamble=preamble)


def encode_address_reply(address: str, *, preamble: bool = True) -> bytes:
    return encode_frame(address, REPLY | Control.READ_ADDRESS, address_bytes(address),
                        preamble=preamble)


def encode_error_reply(address: str, function: int, code: int, *,
                       preamble: bool = True) -> bytes:
    return encode_frame(address, REPLY | ERROR | function, bytes([code]), preamble=preamble)
