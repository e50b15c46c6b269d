"""`greenguard edge scan`: who answers on a gateway or an RS-485 line.

- Modbus: one small read to every unit id in a range. An answer — data or an exception
  (01/02/03/04: the unit is there, it just has no such register) — means a unit; silence
  means none; exceptions 0A/0B are the gateway saying that nobody answered behind it. On a
  local serial port every combination of the given baud rates and parities is tried until
  one finds units (a wrong baud rate looks exactly like an empty line). Each unit found is
  matched against the built-in register maps (every point answers and decodes, and most
  are non-zero) to suggest a model.
- DL/T 645 and CJ/T 188: the read-address broadcast (AA…AA), which only a meter alone on
  its line can answer (several would collide), then one read to show it works.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from edge.commission.wire import (
    Capture,
    WiredBus,
    describe,
    hexbytes,
    open_hub,
    read_range,
    timed,
    transact,
)
from edge.drivers.cjt188 import reply_scanner as cjt188_scanner
from edge.drivers.dlt645 import reply_scanner as dlt645_scanner
from edge.drivers.hubs import ModbusHub, StreamHub
from edge.drivers.modbus import POINT_EXCEPTIONS
from edge.errors import DeviceError, DeviceFaultError, DeviceTimeoutError, GarbledFrameError
from protocols import cjt188, dlt645, modbus_rtu
from protocols.errors import DecodeError, DeviceReplyError, FrameError
from protocols.registermap import (
    RegisterMap,
    Table,
    builtin_models,
    load_register_map,
    plan_reads,
)

NOBODY_BEHIND_GATEWAY = frozenset({0x0A, 0x0B})


@dataclass(frozen=True, slots=True)
class MapMatch:
    model: str
    points: int
    nonzero: int
    refused: tuple[str, ...] = ()  # points whose register the unit refused (exception 01-03)
    unverified: bool = False  # the map is entirely `verified: false`


@dataclass(slots=True)
class UnitFound:
    unit: int
    answer: str
    ms: float
    matches: list[MapMatch] = field(default_factory=list)


@dataclass(slots=True)
class SettingResult:
    bus: WiredBus
    found: list[UnitFound] = field(default_factory=list)
    silent: int = 0
    garbled: int = 0
    error: str = ""  # the bus could not be used at all (no connection, no such port)


def _candidate_maps() -> list[RegisterMap]:
    maps = [load_register_map(name) for name in builtin_models()]
    return [m for m in maps if m.units is None]


async def _map_values(hub: ModbusHub, unit: int, rmap: RegisterMap, *,
                      timeout_s: float) -> tuple[int, list[str]] | None:
    """(non-zero values, refused points) of `rmap` on `unit`, or None if it does not fit:
    a timeout, a device-level exception, a value that does not decode, or more than half
    of the points refused."""
    nonzero = 0
    refused: list[str] = []
    queue = list(plan_reads(rmap.points))
    while queue:
        request = queue.pop(0)
        try:
            raw = await read_range(hub, request.table, request.address, request.count,
                                   unit=unit, timeout_s=timeout_s, device=f"unit {unit}")
        except DeviceFaultError as exc:
            if exc.code not in POINT_EXCEPTIONS:
                return None
            if len(request.points) > 1:  # find which register it is, as the agent does
                queue[:0] = plan_reads(request.points, max_gap=-1)
            else:
                refused.append(request.points[0].name)
            continue
        except DeviceError:
            return None
        for spec in request.points:
            offset = spec.address - request.address
            try:
                value = rmap.decode_value(spec, raw[offset : offset + spec.count])
            except DecodeError:
                return None
            nonzero += bool(value) and not isinstance(value, str)
    if len(refused) * 2 > len(rmap.points):
        return None
    return nonzero, refused


async def match_maps(hub: ModbusHub, unit: int, *, timeout_s: float,
                     maps: list[RegisterMap] | None = None) -> list[MapMatch]:
    """Built-in maps whose points this unit answers and decodes, best first: most non-zero
    values (a three-phase map on a one-phase meter reads zeros), fewest refused points."""
    out: list[MapMatch] = []
    for rmap in _candidate_maps() if maps is None else maps:
        fit = await _map_values(hub, unit, rmap, timeout_s=timeout_s)
        if fit is None or not fit[0]:
            continue
        out.append(MapMatch(rmap.model, len(rmap.points), fit[0], tuple(fit[1]),
                            rmap.all_unverified))
    out.sort(key=lambda m: (len(m.refused), -m.nonzero / m.points, -m.points, m.model))
    return out


async def scan_modbus(settings: list[WiredBus], units: list[int], *, table: Table,
                      address: int, timeout_s: float, identify: bool = True,
                      all_settings: bool = False) -> list[SettingResult]:
    """Scan `units` on each bus setting in turn; stop after the first setting that finds
    a unit unless `all_settings`."""
    results: list[SettingResult] = []
    for bus in settings:
        result = SettingResult(bus)
        results.append(result)
        hub = open_hub(bus, timeout_s=timeout_s)
        try:
            for unit in units:
                raw, t = await timed(functools.partial(
                    read_range, hub, table, address, 1, unit=unit, timeout_s=timeout_s,
                    device=f"unit {unit}"))
                if raw is not None:
                    result.found.append(UnitFound(unit, f"[{raw[0]:04X}]", t.ms))
                elif isinstance(t.error, DeviceFaultError):
                    if t.error.code in NOBODY_BEHIND_GATEWAY:
                        result.silent += 1
                    else:
                        code = t.error.code
                        name = modbus_rtu.EXCEPTION_NAMES.get(code, "unknown")
                        result.found.append(UnitFound(unit, f"exception {code} ({name})",
                                                      t.ms))
                elif isinstance(t.error, DeviceTimeoutError):
                    result.silent += 1
                elif isinstance(t.error, GarbledFrameError):
                    result.garbled += 1
                elif t.error is not None:
                    result.error = t.error.reason
                    break
            if identify:
                for found in result.found:
                    found.matches = await match_maps(hub, found.unit, timeout_s=timeout_s)
        finally:
            hub.close()
        if result.error or (result.found and not all_settings):
            break  # a port that cannot be opened fails the same at every setting
    return results


def format_modbus(results: list[SettingResult], units: list[int], *, table: Table,
                  address: int, timeout_s: float) -> list[str]:
    span = f"{units[0]}–{units[-1]}" if len(units) > 1 else str(units[0])
    lines: list[str] = []
    for r in results:
        lines.append(f"scanning units {span} on {describe(r.bus)}: read {table.value} "
                     f"0x{address:04X}+1, timeout {timeout_s:g} s")
        if r.error:
            lines.append(f"  cannot use the bus: {r.error}")
            continue
        for f in r.found:
            lines.append(f"  unit {f.unit:>3}: answers {f.answer} in {f.ms:.1f} ms")
            if f.matches:
                best, others = f.matches[0], f.matches[1:]
                lines.append(f"            looks like {best.model} ({best.nonzero} of "
                             f"{best.points} points non-zero)"
                             + (f"; also decodes as {', '.join(m.model for m in others)}"
                                if others else ""))
                if best.refused:
                    lines.append(f"            refuses {', '.join(best.refused)} (exception: "
                                 "this variant lacks the register; left out of --write-config)")
                if best.unverified:
                    lines.append(f"            warning: every field of {best.model} is "
                                 "verified: false: check it against the meter's manual")
            else:
                lines.append("            no built-in register map decodes it: "
                             "`greenguard edge read` its registers and write a map")
        found = ", ".join(str(f.unit) for f in r.found) or "none"
        extra = (f", {r.garbled} garbled answers (wrong baud rate or parity, or two "
                 "masters on the line?)" if r.garbled else "")
        lines.append(f"  found {len(r.found)} unit(s): {found}; {r.silent} silent{extra}")
    if results and not any(r.found for r in results):
        lines.append("no unit answered: check wiring (A/B swapped?), termination, the unit ids "
                     "set on the meters, and the serial settings (try more with --baudrate "
                     "and --parity)")
    return lines


@dataclass(slots=True)
class AddressFound:
    bus: WiredBus
    protocol: str  # "dlt645" | "cjt188"
    address: str | None
    ms: float
    reply: bytes = b""
    meter_type: int | None = None
    check: str = ""  # the result of one read from the found address
    error: str = ""


_BROADCAST_HELP = ("no meter answered the read-address broadcast: none on the line, other "
                   "serial settings (DL/T 645 is usually 2400 8E1, CJ/T 188 2400 8E1), or "
                   "several meters answering at once (their answers collide: connect one "
                   "at a time, or read the address printed on each meter)")


async def scan_dlt645(bus: WiredBus, *, timeout_s: float, preamble: bool = True
                      ) -> AddressFound:
    hub = open_hub(bus, timeout_s=timeout_s)
    assert isinstance(hub, StreamHub)
    capture = Capture()
    try:
        frame, t = await timed(functools.partial(
            transact, hub, dlt645.encode_read_address(preamble=preamble),
            capture.wrap(dlt645_scanner(dlt645.Control.READ_ADDRESS)), device="dlt645",
            timeout_s=timeout_s, what="read address AAAAAAAAAAAA"))
        if frame is None:
            reason = (_BROADCAST_HELP if isinstance(t.error, DeviceTimeoutError)
                      else t.error.reason if t.error else "no answer")
            return AddressFound(bus, "dlt645", None, t.ms, error=reason)
        try:
            address = dlt645.decode_address_reply(frame)
        except (DeviceReplyError, FrameError) as exc:
            return AddressFound(bus, "dlt645", None, t.ms, capture.raw,
                                error=str(getattr(exc, "reason", exc)))
        found = AddressFound(bus, "dlt645", address, t.ms, capture.raw)
        di = 0x00010000
        reply, t2 = await timed(functools.partial(
            transact, hub, dlt645.encode_read(address, di, preamble=preamble),
            dlt645_scanner(dlt645.Control.READ_DATA), device=address, timeout_s=timeout_s,
            what="read DI 00010000"))
        if reply is None:
            found.check = f"read DI 00010000: {t2.error.reason if t2.error else 'no answer'}"
        else:
            try:
                value = dlt645.decode_read_reply(reply, address=address, di=di)
                found.check = f"energy_import_kwh (DI 00010000) = {value:.10g} kWh"
            except (DeviceReplyError, FrameError) as exc:
                found.check = f"read DI 00010000: {getattr(exc, 'reason', exc)}"
        return found
    finally:
        hub.close()


async def scan_cjt188(bus: WiredBus, *, timeout_s: float, preamble: bool = True
                      ) -> AddressFound:
    hub = open_hub(bus, timeout_s=timeout_s)
    assert isinstance(hub, StreamHub)
    capture = Capture()

    def address_scanner(buffer: bytes) -> tuple[cjt188.Frame | None, int]:
        frame, used = cjt188.scan_frame(buffer)
        if frame is None or not frame.is_reply:
            return None, used
        return frame, used

    try:
        frame, t = await timed(functools.partial(
            transact, hub, cjt188.encode_read_address(preamble=preamble),
            capture.wrap(address_scanner), device="cjt188", timeout_s=timeout_s,
            what="read address AAAAAAAAAAAAAA"))
        if frame is None:
            reason = (_BROADCAST_HELP if isinstance(t.error, DeviceTimeoutError)
                      else t.error.reason if t.error else "no answer")
            return AddressFound(bus, "cjt188", None, t.ms, error=reason)
        try:
            address, meter_type = cjt188.decode_address_reply(frame)
        except (DeviceReplyError, FrameError) as exc:
            return AddressFound(bus, "cjt188", None, t.ms, capture.raw,
                                error=str(getattr(exc, "reason", exc)))
        found = AddressFound(bus, "cjt188", address, t.ms, capture.raw, meter_type)
        reply, t2 = await timed(functools.partial(
            transact, hub, cjt188.encode_read(address, meter_type=meter_type, ser=1,
                                              preamble=preamble),
            cjt188_scanner(), device=address, timeout_s=timeout_s, what="read 901F"))
        if reply is None:
            found.check = f"read 901F: {t2.error.reason if t2.error else 'no answer'}"
        else:
            try:
                data = cjt188.decode_read_reply(reply, address=address, ser=1)
                found.check = (f"water_m3 (DI 901F) = {data.cumulative:.10g} {data.unit}, valve "
                               f"{'open' if data.status.valve_open else 'closed'}")
            except (DeviceReplyError, FrameError) as exc:
                found.check = f"read 901F: {getattr(exc, 'reason', exc)}"
        return found
    finally:
        hub.close()


def format_address(found: AddressFound) -> list[str]:
    name = "DL/T 645" if found.protocol == "dlt645" else "CJ/T 188"
    lines = [f"{name} read-address broadcast on {describe(found.bus)}"]
    if found.address is None:
        lines.append(f"  {found.error}")
        return lines
    kind = ("" if found.meter_type is None
            else f" (meter type 0x{found.meter_type:02X})")
    lines.append(f"  address {found.address}{kind} in {found.ms:.1f} ms")
    lines.append(f"  reply   {hexbytes(found.reply)}")
    if found.check:
        lines.append(f"  check   {found.check}")
    return lines
