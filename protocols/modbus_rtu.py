"""Modbus RTU framing and the PDUs the edge uses, as pure functions.

RTU is what RS-485 meters speak on the wire, and what a *transparent* serial-to-Ethernet
server forwards byte for byte ("RTU over TCP"). An ADU is `unit | PDU | CRC16` (CRC low
byte first); frames are delimited on the line only by silence (3.5 character times), so a
reader must know from the first bytes how long the answer will be — `response_length` —
instead of waiting for a timeout. Modbus TCP (MBAP framing) is left to pymodbus.

Golden vectors: `tests/unit/protocols/test_modbus_rtu.py` (the classic
`01 03 00 00 00 0A C5 CD` read request among them).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from protocols.errors import DeviceReplyError, FrameError

PROTOCOL = "modbus-rtu"


class Function(enum.IntEnum):
    READ_COILS = 0x01
    READ_DISCRETE_INPUTS = 0x02
    READ_HOLDING_REGISTERS = 0x03
    READ_INPUT_REGISTERS = 0x04
    WRITE_SINGLE_COIL = 0x05
    WRITE_SINGLE_REGISTER = 0x06
    WRITE_MULTIPLE_COILS = 0x0F
    WRITE_MULTIPLE_REGISTERS = 0x10


EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}

_READS = (Function.READ_COILS, Function.READ_DISCRETE_INPUTS,
          Function.READ_HOLDING_REGISTERS, Function.READ_INPUT_REGISTERS)
_BIT_READS = (Function.READ_COILS, Function.READ_DISCRETE_INPUTS)


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc


def frame(unit: int, pdu: bytes) -> bytes:
    """The RTU ADU: unit id, PDU, CRC low byte first."""
    if not 0 <= unit <= 247:
        raise ValueError(f"unit id must be 0–247, got {unit!r}")
    body = bytes([unit]) + pdu
    return body + crc16(body).to_bytes(2, "little")


@dataclass(frozen=True, slots=True)
class Request:
    """One request PDU; `values` only for writes (registers as ints, coils as bools)."""

    function: Function
    address: int
    count: int = 1
    values: tuple[int, ...] = ()

    def pdu(self) -> bytes:
        f = self.function
        head = bytes([f]) + self.address.to_bytes(2, "big")
        if f in _READS:
            return head + self.count.to_bytes(2, "big")
        if f is Function.WRITE_SINGLE_COIL:
            return head + (b"\xff\x00" if self.values[0] else b"\x00\x00")
        if f is Function.WRITE_SINGLE_REGISTER:
            return head + self.values[0].to_bytes(2, "big")
        if f is Function.WRITE_MULTIPLE_REGISTERS:
            data = b"".join(v.to_bytes(2, "big") for v in self.values)
            return head + len(self.values).to_bytes(2, "big") + bytes([len(data)]) + data
        packed = bytearray((len(self.values) + 7) // 8)  # WRITE_MULTIPLE_COILS
        for i, bit in enumerate(self.values):
            if bit:
                packed[i // 8] |= 1 << (i % 8)
        return head + len(self.values).to_bytes(2, "big") + bytes([len(packed)]) + packed


def read_request(function: Function, address: int, count: int) -> Request:
    if function not in _READS:
        raise ValueError(f"{function!r} is not a read")
    limit = 2000 if function in _BIT_READS else 125
    if not 1 <= count <= limit:
        raise ValueError(f"count must be 1–{limit}, got {count}")
    if address < 0 or address + count > 0x10000:
        raise ValueError(f"address {address}+{count} is outside 0–65535")
    return Request(function, address, count)


def write_request(*, coil: bool, address: int, values: list[int] | list[bool]) -> Request:
    """FC05/FC06 for one value, FC15/FC16 for several."""
    if not values:
        raise ValueError("nothing to write")
    if coil:
        fn = Function.WRITE_SINGLE_COIL if len(values) == 1 else Function.WRITE_MULTIPLE_COILS
        return Request(fn, address, len(values), tuple(int(bool(v)) for v in values))
    for v in values:
        if type(v) is not int or not 0 <= v <= 0xFFFF:
            raise ValueError(f"not a register value: {v!r}")
    fn = Function.WRITE_SINGLE_REGISTER if len(values) == 1 else Function.WRITE_MULTIPLE_REGISTERS
    return Request(fn, address, len(values), tuple(int(v) for v in values))


# -- responses (client side) --------------------------------------------------------


def response_length(buffer: bytes, request: Request) -> int | None:
    """Bytes the complete answer to `request` will have, or None if more are needed to
    tell. Only the first three bytes are looked at."""
    if len(buffer) < 2:
        return None
    if buffer[1] == request.function | 0x80:
        return 5
    if request.function in _READS:
        return None if len(buffer) < 3 else 5 + buffer[2]
    return 8  # writes echo address and value/quantity


@dataclass(frozen=True, slots=True)
class Response:
    unit: int
    function: Function
    registers: tuple[int, ...] = ()
    bits: tuple[bool, ...] = ()


def parse_response(adu: bytes, request: Request, *, unit: int) -> Response:
    """Check one complete answer against the request it answers.

    Raises `FrameError` for anything that is not the answer (CRC, another unit or function,
    wrong byte count: garbage or a device answering out of turn) and `DeviceReplyError`
    for a Modbus exception response.
    """
    if len(adu) < 5:
        raise FrameError(PROTOCOL, f"frame of {len(adu)} bytes is too short", adu)
    if crc16(adu[:-2]).to_bytes(2, "little") != adu[-2:]:
        raise FrameError(PROTOCOL, "CRC mismatch", adu)
    if adu[0] != unit:
        raise FrameError(PROTOCOL, f"answer from unit {adu[0]}, expected {unit}", adu)
    fn = adu[1]
    if fn == request.function | 0x80:
        code = adu[2]
        raise DeviceReplyError(PROTOCOL, code, f"exception {code} "
                               f"({EXCEPTION_NAMES.get(code, 'unknown')})")
    if fn != request.function:
        raise FrameError(PROTOCOL, f"answer to function {fn}, expected {request.function}", adu)
    body = adu[2:-2]
    if request.function in _READS:
        n = body[0]
        data = body[1:]
        if len(data) != n:
            raise FrameError(PROTOCOL, f"byte count {n} but {len(data)} data bytes", adu)
        if request.function in _BIT_READS:
            if n != (request.count + 7) // 8:
                raise FrameError(PROTOCOL, f"{n} bytes for {request.count} bits", adu)
            bits = tuple(bool(data[i // 8] >> (i % 8) & 1) for i in range(request.count))
            return Response(unit, request.function, bits=bits)
        if n != 2 * request.count:
            raise FrameError(PROTOCOL, f"{n} bytes for {request.count} registers", adu)
        regs = struct.unpack(f">{request.count}H", data)
        return Response(unit, request.function, registers=regs)
    if body != request.pdu()[1:5]:
        raise FrameError(PROTOCOL, "write echo does not match the request", adu)
    return Response(unit, request.function)


# -- requests (server side, for simulators) ---------------------------------------------


def request_length(buffer: bytes) -> int | None:
    """Bytes of the complete request starting at buffer[0], or None if unknown yet."""
    if len(buffer) < 2:
        return None
    fn = buffer[1]
    if fn in (Function.WRITE_MULTIPLE_COILS, Function.WRITE_MULTIPLE_REGISTERS):
        return None if len(buffer) < 7 else 9 + buffer[6]
    return 8


def parse_request(adu: bytes) -> tuple[int, Request]:
    """(unit, request) of one complete request ADU; `FrameError` on anything else."""
    if len(adu) < 8 or crc16(adu[:-2]).to_bytes(2, "little") != adu[-2:]:
        raise FrameError(PROTOCOL, "bad request frame", adu)
    unit, fn = adu[0], adu[1]
    try:
        function = Function(fn)
    except ValueError:
        raise DeviceReplyError(PROTOCOL, 1, f"illegal function {fn}") from None
    address = int.from_bytes(adu[2:4], "big")
    word = int.from_bytes(adu[4:6], "big")
    if function in _READS:
        return unit, Request(function, address, word)
    if function is Function.WRITE_SINGLE_COIL:
        return unit, Request(function, address, 1, (1 if word == 0xFF00 else 0,))
    if function is Function.WRITE_SINGLE_REGISTER:
        return unit, Request(function, address, 1, (word,))
    data = adu[7:-2]
    if function is Function.WRITE_MULTIPLE_REGISTERS:
        values = tuple(int.from_bytes(data[i : i + 2], "big") for i in range(0, 2 * word, 2))
    else:
        values = tuple(data[i // 8] >> (i % 8) & 1 for i in range(word))
    return unit, Request(function, address, word, values)


def exception_response(unit: int, function: int, code: int) -> bytes:
    return frame(unit, bytes([function | 0x80, code]))


def read_response(unit: int, request: Request, values: list[int] | list[bool]) -> bytes:
    """The answer to a read: registers as ints, or bits as bools."""
    if request.function in _BIT_READS:
        packed = bytearray((len(values) + 7) // 8)
        for i, bit in enumerate(values):
            if bit:
                packed[i // 8] |= 1 << (i % 8)
        data = bytes(packed)
    else:
        data = b"".join(int(v).to_bytes(2, "big") for v in values)
    return frame(unit, bytes([request.function, len(data)]) + data)


def write_response(unit: int, request: Request) -> bytes:
    return frame(unit, request.pdu()[:5])
