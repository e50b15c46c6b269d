"""`greenguard edge read`: one register range, or one DL/T 645 data identifier.

To build a register map from a vendor table, or to check one: the registers are printed
raw and decoded as every type in every byte and word order, so the engineer sees which
reading is plausible (a voltage of 230.1 as float32 ABCD, not 1.5e-39 as CDAB).
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

from edge.commission.wire import Capture, hexbytes, hexregs, read_range, timed, transact
from edge.drivers.dlt645 import reply_scanner as dlt645_scanner
from edge.drivers.hubs import ModbusHub, StreamHub
from edge.errors import DeviceError
from protocols import dlt645
from protocols.errors import DecodeError, DeviceReplyError, FrameError
from protocols.registermap import DataType, PointValue, Table, parse_register_map

ORDERS = ("big", "little")
TYPES_BY_WIDTH = {1: (DataType.UINT16, DataType.INT16),
                  2: (DataType.UINT32, DataType.INT32, DataType.FLOAT32)}


@dataclass(frozen=True, slots=True)
class Decoding:
    type: DataType
    byte_order: str
    word_order: str
    value: PointValue | None
    error: str = ""

    @property
    def label(self) -> str:
        if self.type in (DataType.UINT16, DataType.INT16):
            return f"{self.type.value} byte_order={self.byte_order}"
        return (f"{self.type.value} byte_order={self.byte_order} "
                f"word_order={self.word_order}")


def decodings(registers: list[int], *, types: list[DataType] | None = None,
              scale: float = 1.0) -> list[Decoding]:
    """Every way the first one or two registers can be read (pure)."""
    out: list[Decoding] = []
    for width, candidates in TYPES_BY_WIDTH.items():
        if len(registers) < width:
            continue
        for dtype in candidates:
            if types is not None and dtype not in types:
                continue
            words = ("big",) if width == 1 else ORDERS
            for byte_order, word_order in itertools.product(ORDERS, words):
                rmap = parse_register_map({
                    "model": "read", "byte_order": byte_order, "word_order": word_order,
                    "points": [{"name": "x", "unit": "", "table": "holding", "address": 0,
                                "type": dtype.value, "scale": scale}]})
                try:
                    value: PointValue | None = rmap.decode_value(rmap.points[0],
                                                                 registers[:width])
                    error = ""
                except DecodeError as exc:
                    value, error = None, exc.reason
                out.append(Decoding(dtype, byte_order, word_order, value, error))
    return out


async def read_registers(hub: ModbusHub, *, unit: int, table: Table, address: int,
                         count: int, timeout_s: float) -> tuple[list[int] | None, float,
                                                                DeviceError | None]:
    raw, t = await timed(functools.partial(read_range, hub, table, address, count, unit=unit,
                                           timeout_s=timeout_s, device=f"unit {unit}"))
    return raw, t.ms, t.error


def format_registers(table: Table, address: int, registers: list[int], ms: float,
                     rows: list[Decoding]) -> list[str]:
    lines = [f"{table.value} 0x{address:04X}+{len(registers)}: [{hexregs(registers)}] "
             f"in {ms:.1f} ms"]
    if not table.is_bits:
        for row in rows:
            shown = "-" if row.value is None else (
                f"{row.value:.10g}" if isinstance(row.value, float) else str(row.value))
            lines.append(f"  {row.label:<44} {shown}{'  (' + row.error + ')' if row.error else ''}")
    return lines


@dataclass(frozen=True, slots=True)
class DiReading:
    address: str
    di: int
    request: bytes
    reply: bytes
    ms: float
    value: float | None
    data: bytes  # the reply's data after the DI (0x33 removed), for unknown DIs
    error: str = ""


async def read_di(hub: StreamHub, *, address: str, di: int, preamble: bool,
                  timeout_s: float) -> DiReading:
    """One DL/T 645-2007 read (11H) of `di` from `address` (`auto`: the read-address
    broadcast first; only with one meter on the bus)."""
    if address == "auto":
        frame, t = await timed(functools.partial(
            transact, hub, dlt645.encode_read_address(preamble=preamble),
            dlt645_scanner(dlt645.Control.READ_ADDRESS), device="dlt645",
            timeout_s=timeout_s, what="read address"))
        if frame is None:
            return DiReading("auto", di, b"", b"", t.ms, None, b"",
                             t.error.reason if t.error else "no answer")
        address = dlt645.decode_address_reply(frame)
    request = dlt645.encode_read(address, di, preamble=preamble)
    capture = Capture()
    frame, t = await timed(functools.partial(
        transact, hub, request, capture.wrap(dlt645_scanner(dlt645.Control.READ_DATA)),
        device=address, timeout_s=timeout_s, what=f"read DI {di:08X}"))
    if frame is None:
        return DiReading(address, di, request, b"", t.ms, None, b"",
                         t.error.reason if t.error else "no answer")
    item = dlt645.DATA_ITEMS.get(di)
    value: float | None = None
    error = ""
    try:
        if item is not None:
            value = dlt645.decode_read_reply(frame, address=address, di=di)
        elif frame.is_error:
            dlt645.decode_read_reply(frame, address=address, di=di)  # raises the error reply
    except (DeviceReplyError, FrameError) as exc:
        error = str(getattr(exc, "reason", exc))
    return DiReading(address, di, request, capture.raw, t.ms, value, frame.data[4:], error)


def format_di(reading: DiReading) -> list[str]:
    item = dlt645.DATA_ITEMS.get(reading.di)
    lines = [f"meter {reading.address}  DI {reading.di:08X}"
             + (f" ({item.point}, {item.unit})" if item else " (not in the built-in table)"),
             f"  request  {hexbytes(reading.request) or '-'}",
             f"  reply    {hexbytes(reading.reply) or '-'}  ({reading.ms:.1f} ms)"]
    if reading.error:
        lines.append(f"  error    {reading.error}")
        if not reading.reply and reading.address != "auto":
            lines.append(f"  hint     is {reading.address} the address on the meter's "
                         "nameplate? `greenguard edge scan dlt645` reads it when the meter "
                         "is alone on the line")
    elif item is not None and reading.value is not None:
        lines.append(f"  value    {reading.value:.10g} {item.unit}")
    else:
        lines.append(f"  data     {hexbytes(reading.data[::-1])} (BCD, most significant "
                     "byte first)")
    return lines
