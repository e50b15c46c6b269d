"""`greenguard edge probe --config edge.yaml`: read every configured point once.

One request per point (not the agent's grouped plan), so an error is pinned to the point
that caused it. A device that does not answer twice in a row is not asked for its
remaining points (each would cost a full timeout). Push devices (MQTT plugs and sensors)
are listed, not probed: they publish when they like.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

from edge.commission.wire import (
    Capture,
    WiredBus,
    describe,
    hexbytes,
    hexregs,
    open_hub,
    read_range,
    timed,
    transact,
)
from edge.config import EdgeConfig, ModbusTcpBus, SerialBus, SerialOverTcpBus
from edge.drivers.base import DeviceConfig
from edge.drivers.cjt188 import METER_TYPES, Cjt188Config
from edge.drivers.cjt188 import reply_scanner as cjt188_scanner
from edge.drivers.dlt645 import Dlt645Config
from edge.drivers.dlt645 import reply_scanner as dlt645_scanner
from edge.drivers.hubs import ModbusHub, StreamHub
from edge.drivers.modbus import ModbusConfig
from edge.errors import DeviceError, DeviceTimeoutError
from protocols import cjt188, dlt645
from protocols.errors import DecodeError, DeviceReplyError, FrameError, RegisterMapError
from protocols.registermap import PointValue, RegisterMap

GIVE_UP_AFTER_TIMEOUTS = 2


@dataclass(frozen=True, slots=True)
class PointResult:
    point: str
    request: str  # what was asked: "input 0x0048+2", "DI 00010000"
    raw: str  # registers or frame as received, "" when nothing came
    value: PointValue | None
    unit: str
    ms: float | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass(slots=True)
class DeviceResult:
    device: str
    title: str
    points: list[PointResult]
    warnings: list[str]


def map_warnings(device: str, rmap: RegisterMap) -> list[str]:
    """Warnings about a map that is not checked against the vendor's manual."""
    if rmap.all_unverified:
        return [f"{device}: every field of model {rmap.model!r} is verified: false — check "
                "each address, type and scale against the installed meter's manual before "
                "trusting its values (docs/register-maps.md)"]
    unverified = [p.name for p in rmap.points if not p.verified]
    if unverified:
        return [f"{device}: model {rmap.model!r}: {', '.join(unverified)} verified: false"]
    return []


def unverified_map_warnings(config: EdgeConfig) -> list[str]:
    """`edge --check` warns on devices whose map is entirely unverified (ADL400)."""
    out: list[str] = []
    for dev in config.devices:
        if isinstance(dev, ModbusConfig):
            rmap = dev.register_map()
            if rmap.all_unverified:
                out.extend(map_warnings(dev.id, rmap))
    return out


def _value_text(value: PointValue | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


def format_results(results: Iterable[DeviceResult]) -> list[str]:
    lines: list[str] = []
    for dev in results:
        lines.append(dev.title)
        width = max((len(p.point) for p in dev.points), default=0)
        req_w = max((len(p.request) for p in dev.points), default=0)
        raw_w = min(max((len(p.raw) for p in dev.points), default=0), 48)
        for p in dev.points:
            value = _value_text(p.value) + (f" {p.unit}" if p.value is not None and p.unit
                                            else "")
            ms = "" if p.ms is None else f"{p.ms:7.1f} ms"
            raw = p.raw or "-"
            lines.append(f"  {p.point:<{width}}  {p.request:<{req_w}}  {raw:<{raw_w}}  "
                         f"{value:<16} {ms}  {p.error}".rstrip())
    return lines


async def _modbus(dev: ModbusConfig, hub: ModbusHub, timeout_s: float) -> list[PointResult]:
    rmap = dev.register_map()
    names = [p.name for p in dev.selected_points()]
    out: list[PointResult] = []
    timeouts = 0
    for name in names:
        spec = rmap.point(name)
        request = f"{spec.table.value} 0x{spec.address:04X}+{spec.count}"
        if timeouts >= GIVE_UP_AFTER_TIMEOUTS:
            out.append(PointResult(name, request, "", None, spec.unit, None,
                                   "skipped: the device did not answer"))
            continue
        raw, t = await timed(functools.partial(
            read_range, hub, spec.table, spec.address, spec.count, unit=dev.device_id,
            timeout_s=timeout_s, device=dev.id))
        if t.error is not None or raw is None:
            timeouts = timeouts + 1 if isinstance(t.error, DeviceTimeoutError) else 0
            reason = t.error.reason if t.error else "no answer"
            if timeouts == GIVE_UP_AFTER_TIMEOUTS and not any(p.ok for p in out):
                reason += (f" (nothing answers at unit {dev.device_id}: wrong unit id? "
                           "`greenguard edge scan modbus` lists the units that answer)")
            out.append(PointResult(name, request, "", None, spec.unit, t.ms, reason))
            continue
        timeouts = 0
        try:
            value: PointValue | None = rmap.decode_value(spec, raw)
            error = ""
        except DecodeError as exc:
            value, error = None, f"does not decode: {exc.reason}"
        out.append(PointResult(name, request, hexregs(raw), value, spec.unit, t.ms, error))
    return out


async def _dlt645(dev: Dlt645Config, hub: StreamHub, timeout_s: float) -> list[PointResult]:
    out: list[PointResult] = []
    address = dev.address
    if address == "auto":
        capture = Capture()
        frame, t = await timed(functools.partial(
            transact, hub, dlt645.encode_read_address(preamble=dev.preamble),
            capture.wrap(dlt645_scanner(dlt645.Control.READ_ADDRESS)), device=dev.id,
            timeout_s=timeout_s, what="read address"))
        if frame is None:
            reason = t.error.reason if t.error else "no answer"
            return [PointResult("address", "read address AAAAAAAAAAAA", "", None, "", t.ms,
                                reason)]
        address = dlt645.decode_address_reply(frame)
        out.append(PointResult("address", "read address AAAAAAAAAAAA", hexbytes(capture.raw),
                               address, "", t.ms))
    timeouts = 0
    for info in dev.selected_points():
        item = dlt645.ITEMS_BY_POINT[info.name]
        request = f"DI {item.di:08X}"
        if timeouts >= GIVE_UP_AFTER_TIMEOUTS:
            out.append(PointResult(info.name, request, "", None, info.unit, None,
                                   "skipped: the meter did not answer"))
            continue
        capture = Capture()
        frame, t = await timed(functools.partial(
            transact, hub, dlt645.encode_read(address, item.di, preamble=dev.preamble),
            capture.wrap(dlt645_scanner(dlt645.Control.READ_DATA)), device=dev.id,
            timeout_s=timeout_s, what=f"read DI {item.di:08X}"))
        if frame is None:
            timeouts = timeouts + 1 if isinstance(t.error, DeviceTimeoutError) else 0
            reason = t.error.reason if t.error else "no answer"
            if isinstance(t.error, DeviceTimeoutError) and dev.address != "auto":
                reason += f" (is {address} the address printed on the meter? `greenguard " \
                          "edge scan dlt645` reads it when the meter is alone on the bus)"
            out.append(PointResult(info.name, request, "", None, info.unit, t.ms, reason))
            continue
        timeouts = 0
        try:
            value: PointValue | None = dlt645.decode_read_reply(frame, address=address,
                                                                di=item.di)
            error = ""
        except (DeviceReplyError, FrameError) as exc:
            value, error = None, str(getattr(exc, "reason", exc))
        out.append(PointResult(info.name, request, hexbytes(capture.raw), value, info.unit,
                               t.ms, error))
    return out


async def _cjt188(dev: Cjt188Config, hub: StreamHub, timeout_s: float) -> list[PointResult]:
    capture = Capture()
    request = cjt188.encode_read(dev.address, meter_type=METER_TYPES[dev.meter_type], ser=1,
                                 di_swapped=dev.di_swapped, preamble=dev.preamble)
    frame, t = await timed(functools.partial(
        transact, hub, request, capture.wrap(cjt188_scanner()), device=dev.id,
        timeout_s=timeout_s, what="read 901F"))
    points = list(dev.selected_points())
    if frame is None:
        reason = t.error.reason if t.error else "no answer"
        return [PointResult(p.name, "DI 901F", "", None, p.unit, t.ms, reason) for p in points]
    try:
        data = cjt188.decode_read_reply(frame, address=dev.address, ser=1)
    except (DeviceReplyError, FrameError) as exc:
        reason = str(getattr(exc, "reason", exc))
        return [PointResult(p.name, "DI 901F", hexbytes(capture.raw), None, p.unit, t.ms,
                            reason) for p in points]
    values: dict[str, PointValue] = {"water_m3": data.cumulative,
                                     "valve_open": data.status.valve_open,
                                     "battery_low": data.status.battery_low}
    out = []
    for i, p in enumerate(points):
        error = f"meter reports {data.unit}, not m3" if p.name == "water_m3" and \
            data.unit != "m3" else ""
        out.append(PointResult(p.name, "DI 901F", hexbytes(capture.raw) if i == 0 else
                               "(same answer)", None if error else values[p.name], p.unit,
                               t.ms if i == 0 else None, error))
    return out


def _title(dev: DeviceConfig, bus: WiredBus) -> str:
    if isinstance(dev, ModbusConfig):
        what = f"modbus {dev.model}, unit {dev.device_id}"
    elif isinstance(dev, Dlt645Config):
        what = f"dlt645 address {dev.address}"
    else:
        assert isinstance(dev, Cjt188Config)
        what = f"cjt188 address {dev.address}"
    return f"{dev.id}  {what} on bus {bus.id} {describe(bus)}"


async def probe(config: EdgeConfig, *, devices: list[str] | None = None) -> list[DeviceResult]:
    """Read every point of every wired device (or of `devices`) once."""
    hubs: dict[str, ModbusHub] = {}
    results: list[DeviceResult] = []
    try:
        for dev in config.devices:
            if devices and dev.id not in devices:
                continue
            bus = config.bus_of(dev)
            if not isinstance(bus, ModbusTcpBus | SerialOverTcpBus | SerialBus):
                results.append(DeviceResult(dev.id, f"{dev.id}  {dev.model_name} on bus "
                                            f"{bus.id}: push device (MQTT), not probed", [],
                                            []))
                continue
            timeout_s = config.effective_timeout(dev)
            hub = hubs.get(bus.id)
            if hub is None:
                hub = hubs[bus.id] = open_hub(bus, timeout_s=timeout_s)
            warnings: list[str] = []
            try:
                if isinstance(dev, ModbusConfig):
                    warnings = map_warnings(dev.id, dev.register_map())
                    points = await _modbus(dev, hub, timeout_s)
                elif isinstance(dev, Dlt645Config):
                    assert isinstance(hub, StreamHub)
                    points = await _dlt645(dev, hub, timeout_s)
                elif isinstance(dev, Cjt188Config):
                    assert isinstance(hub, StreamHub)
                    points = await _cjt188(dev, hub, timeout_s)
                else:
                    points = []
            except (DeviceError, RegisterMapError) as exc:
                points = [PointResult("-", "-", "", None, "", None, str(exc))]
            results.append(DeviceResult(dev.id, _title(dev, bus), points, warnings))
    finally:
        for hub in hubs.values():
            hub.close()
    return results
