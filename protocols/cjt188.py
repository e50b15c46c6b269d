"""CJ/T 188-2004 (户用计量仪表数据传输技术条件): read cumulative flow and status bits of
water, heat and gas meters, as pure functions. 🟡 (STANDARDS.md §7: brief).

Frame layout (no +0x33 offset, unlike DL/T 645)::

    [FE …] 68 T A0 … A6 C L DI0 DI1 SER D… CS 16

- T: meter type, 10H cold water, 11H hot water, 20H heat, 30H gas;
- address: 14 BCD digits, lowest byte first;
- C: 01H read data, 03H read address; replies set bit 7 (81H), error replies bit 6 (C1H);
- DI = 901F (current metering data), transmitted `90 1F`. Some meters expect and echo it
  byte-swapped (`1F 90`): `di_swapped=True` is the per-device workaround, and replies are
  accepted in either order;
- CS: sum from 68 to the last data byte, mod 256.

The 901F reply carries L = 22 bytes: DI, SER, cumulative flow (4 BCD bytes, XXXXXX.XX,
lowest first) and its unit code, the flow at the settlement date and its unit, the meter's
clock (7 BCD bytes), and two status bytes ST: bits 0–1 valve (00 open, 01 closed, 11
fault), bit 2 battery low; the rest are vendor-defined.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocols import frame68
from protocols.bcd import bcd_to_int, int_to_bcd
from protocols.errors import DeviceReplyError, FrameError

PROTOCOL = "cjt188"
PREAMBLE = b"\xfe\xfe\xfe"
BROADCAST = "AAAAAAAAAAAAAA"
DI_METERING = 0x901F
DI_ADDRESS = 0x810A


class MeterType(enum.IntEnum):
    COLD_WATER = 0x10
    HOT_WATER = 0x11
    HEAT = 0x20
    GAS = 0x30


class Control(enum.IntEnum):
    READ_DATA = 0x01
    READ_ADDRESS = 0x03


REPLY = 0x80
ERROR = 0x40

UNITS: dict[int, tuple[str, float, float]] = {
    # code: (unit of the semantic point, multiplier, divisor)
    0x29: ("m3", 1.0, 1000.0),  # litres
    0x2C: ("m3", 1.0, 1.0),
    0x02: ("kWh", 1.0, 1000.0),  # Wh
    0x05: ("kWh", 1.0, 1.0),
    0x08: ("kWh", 1000.0, 1.0),  # MWh
    0x0E: ("GJ", 1.0, 1000.0),  # MJ
    0x11: ("GJ", 1.0, 1.0),
}


@dataclass(frozen=True, slots=True)
class Frame:
    meter_type: int
    address: str
    control: int
    data: bytes

    @property
    def is_reply(self) -> bool:
        return bool(self.control & REPLY)

    @property
    def is_error(self) -> bool:
        return bool(self.control & ERROR)


@dataclass(frozen=True, slots=True)
class MeterStatus:
    valve_open: bool
    valve_fault: bool
    battery_low: bool
    raw: int


@dataclass(frozen=True, slots=True)
class MeteringData:
    """The 901F reply: cumulative flow in `unit` (m3 for water meters) and status."""

    cumulative: float
    unit: str
    settlement: float
    status: MeterStatus


def _check_address(address: str) -> str:
    text = address.upper()
    if len(text) != 14 or not all(c in "0123456789A" for c in text):
        raise ValueError(f"a CJ/T 188 address is 14 digits, got {address!r}")
    return text


def address_bytes(address: str) -> bytes:
    return bytes.fromhex(_check_address(address))[::-1]


def encode_frame(meter_type: int, address: str, control: int, data: bytes, *,
                 preamble: bool = True) -> bytes:
    body = bytes([0x68, meter_type]) + address_bytes(address) + bytes([control, len(data)]) + data
    return frame68.close(body, PREAMBLE if preamble else b"")


def _frame(raw: bytes) -> Frame:
    return Frame(raw[1], raw[2:9][::-1].hex().upper(), raw[9], raw[11:-2])


def scan_frame(buffer: bytes) -> tuple[Frame | None, int]:
    """Like `dlt645.scan_frame`: (frame, consumed) or (None, droppable leading bytes)."""
    raw, used = frame68.scan(buffer, protocol=PROTOCOL, length_at=10)
    return (None, used) if raw is None else (_frame(raw), used)


def parse_frame(raw: bytes) -> Frame:
    return _frame(frame68.whole(raw, protocol=PROTOCOL, length_at=10))


def _di(di: int, swapped: bool) -> bytes:
    raw = di.to_bytes(2, "big")
    return raw[::-1] if swapped else raw


def encode_read(address: str, *, meter_type: int = MeterType.COLD_WATER, ser: int = 0,
                di_swapped: bool = False, preamble: bool = True) -> bytes:
    return encode_frame(meter_type, address, Control.READ_DATA,
                        _di(DI_METERING, di_swapped) + bytes([ser & 0xFF]), preamble=preamble)


def encode_read_address(*, meter_type: int = 0xAA, preamble: bool = True) -> bytes:
    return encode_frame(meter_type, BROADCAST, Control.READ_ADDRESS,
                        _di(DI_ADDRESS, False) + b"\x00", preamble=preamble)


def decode_status(raw: bytes) -> MeterStatus:
    st = raw[0]
    valve = st & 0x03
    return MeterStatus(valve_open=valve == 0, valve_fault=valve == 0x03,
                       battery_low=bool(st & 0x04), raw=int.from_bytes(raw, "little"))


def _quantity(raw: bytes) -> tuple[float, str]:
    code = raw[4]
    if code not in UNITS:
        raise FrameError(PROTOCOL, f"unknown unit code 0x{code:02X}")
    unit, multiplier, divisor = UNITS[code]
    return bcd_to_int(raw[:4], protocol=PROTOCOL) * multiplier / (100 * divisor), unit


def decode_read_reply(frame: Frame, *, address: str, ser: int | None = None) -> MeteringData:
    if frame.address != _check_address(address):
        raise FrameError(PROTOCOL, f"answer from {frame.address}, expected {address}")
    if not frame.is_reply or frame.control & 0x3F != Control.READ_DATA:
        raise FrameError(PROTOCOL, f"control 0x{frame.control:02X} is not a read reply")
    if frame.is_error:
        st = frame.data[-2:] if len(frame.data) >= 2 else b"\x00\x00"
        code = int.from_bytes(st, "little")
        raise DeviceReplyError(PROTOCOL, code, f"error reply, status 0x{code:04X}")
    data = frame.data
    if data[:2] not in (_di(DI_METERING, False), _di(DI_METERING, True)):
        raise FrameError(PROTOCOL, f"answer for DI {data[:2].hex().upper()}, expected 901F")
    if ser is not None and data[2] != ser & 0xFF:
        raise FrameError(PROTOCOL, f"answer to SER {data[2]}, expected {ser & 0xFF}")
    if len(data) != 22:
        raise FrameError(PROTOCOL, f"901F answer of {len(data)} bytes, expected 22")
    cumulative, unit = _quantity(data[3:8])
    settlement, unit2 = _quantity(data[8:13])
    if unit2 != unit:
        raise FrameError(PROTOCOL, f"units differ: {unit} and {unit2}")
    return MeteringData(cumulative, unit, settlement, decode_status(data[20:22]))


def encode_read_reply(address: str, *, cumulative_m3: float, settlement_m3: float = 0.0,
                      meter_type: int = MeterType.COLD_WATER, ser: int = 0,
                      valve_open: bool = True, battery_low: bool = False,
                      clock: bytes = b"\x00" * 7, di_swapped: bool = False,
                      preamble: bool = True) -> bytes:
    """A water meter's 901F answer in m³ (unit code 2C), for simulators and tests."""
    st0 = (0 if valve_open else 1) | (0x04 if battery_low else 0)
    data = (_di(DI_METERING, di_swapped) + bytes([ser & 0xFF])
            + int_to_bcd(round(cumulative_m3 * 100), 4) + b"\x2c"
            + int_to_bcd(round(settlement_m3 * 100), 4) + b"\x2c"
            + clock + bytes([st0, 0]))
    return encode_frame(meter_type, address, REPLY | Control.READ_DATA, data, preamble=preamble)


def encode_error_reply(address: str, *, meter_type: int = MeterType.COLD_WATER, ser: int = 0,
                       status: int = 0x0001, preamble: bool = True) -> bytes:
    data = bytes([ser & 0xFF]) + status.to_bytes(2, "little")
    return encode_frame(meter_type, address, REPLY | ERROR | Control.READ_DATA, data,
                        preamble=preamble)


def encode_address_reply(address: str, *, meter_type: int = MeterType.COLD_WATER, ser: int = 0,
                         preamble: bool = True) -> bytes:
    """A meter's answer to the read-address broadcast (control 83H, DI 810A): the address
    is the frame's own address field. For simulators and tests."""
    return encode_frame(meter_type, address, REPLY | Control.READ_ADDRESS,
                        _di(DI_ADDRESS, False) + bytes([ser & 0xFF]), preamble=preamble)


def decode_address_reply(frame: Frame) -> tuple[str, int]:
    """(address, meter type) from the answer to `encode_read_address`."""
    if not frame.is_reply or frame.control & 0x3F != Control.READ_ADDRESS:
        raise FrameError(PROTOCOL, f"control 0x{frame.control:02X} is not a read-address reply")
    if frame.is_error:
        raise DeviceReplyError(PROTOCOL, frame.control, "error reply to read address")
    if frame.data[:2] not in (_di(DI_ADDRESS, False), _di(DI_ADDRESS, True)):
        raise FrameError(PROTOCOL, f"answer for DI {frame.data[:2].hex().upper()}, "
                                   "expected 810A")
    return frame.address, frame.meter_type
