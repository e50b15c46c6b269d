"""Modbus devices described by a register map: meters, water meters, PIR sensors, AC
controllers and the indoor units of a VRF gateway — over Modbus TCP, RTU over TCP or RTU
on a local serial port (whatever hub the device's bus has).

Reads are planned as pure functions (`protocols.registermap.plan_reads`). Devices that
share one Modbus address on one bus — the indoor units of a VRF gateway — are planned
*together*: the scheduler announces every device due in a slot (`prepare`), the first
`read` of the slot fetches the union in as few requests as the planning limits allow, and
the other units take their share from it. A timeout or garbled frame fails the whole
gateway for that slot, since the link, not the unit, is at fault.

Exceptions are sorted by what they blame. 01/02/03 (illegal function, address, value) blame
the request: the points of a refused multi-point request are read one by one from then on
(in the same poll, so the good values are kept), a point whose register is refused alone
is marked bad (`point.bad_value`) and left out for `DROP_RETRY_POLLS` polls, then tried
again. Only if no register of a device answered does the device fail (a wrong unit id or
map). Other exceptions (04 device failure, 06 busy, 0A/0B gateway) fail the unit alone.

Writes are absolute, checked against the map's allowlist before any I/O, and read back
within the same bus session, so no poll can slip in between.
"""

from __future__ import annotations

import collections
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from edge.drivers.base import (
    Actuator,
    DeviceConfig,
    PointInfo,
    Priority,
    Reading,
    Strict,
    WriteResult,
    same_value,
)
from edge.drivers.hubs import ModbusHub
from edge.errors import DeviceError, DeviceFaultError
from protocols.clock import Clock
from protocols.errors import DecodeError, RegisterMapError
from protocols.registermap import (
    DataType,
    PointSpec,
    PointValue,
    ReadRequest,
    RegisterMap,
    Table,
    load_register_map,
    plan_reads,
)

POINT_EXCEPTIONS = frozenset({1, 2, 3})
"""Modbus exceptions about the request (illegal function, address, value): the register is
at fault, not the device, so the point is marked bad and the rest of the poll is kept."""
DROP_RETRY_POLLS = 60
"""Polls a point whose register was refused is left out before it is tried again."""


@functools.lru_cache(maxsize=64)
def _load(model: str, mtime: float | None) -> RegisterMap:
    return load_register_map(model)


def register_map(model: str) -> RegisterMap:
    """Maps are immutable data: 100 meters of one model load the file once (a map file
    given by path is reloaded when it changes)."""
    path = Path(model)
    mtime = path.stat().st_mtime if path.suffix in (".yaml", ".yml") and path.exists() else None
    return _load(model, mtime)


class ReadPlanning(Strict):
    """Limits for grouping registers into requests (Telegraf's request.go)."""

    max_span: int | None = Field(None, ge=1, le=2000,
                                 description="registers (bits) per request; default: the "
                                             "Modbus limit (125 registers, 2000 bits)")
    max_gap: int = Field(16, ge=0, le=125, description="unmapped registers read to merge")


class Workarounds(Strict):
    """Device quirks, named (Telegraf's `workarounds` block)."""

    one_request_per_point: bool = Field(
        False, description="for devices that refuse reads spanning unmapped registers")


class ModbusConfig(DeviceConfig):
    """A Modbus device described by a register map."""

    driver: Literal["modbus", "modbus_tcp"] = "modbus"
    host: str | None = Field(None, description="shorthand for a Modbus TCP bus of its own "
                                               "(the `modbus_tcp` form); otherwise use `bus`")
    port: int = Field(502, ge=1, le=65535)
    device_id: int = Field(1, ge=0, le=247, description="Modbus unit id on the bus")
    model: str = Field(description="register map: a built-in name or a path to a YAML file")
    unit: int | None = Field(None, ge=0, description="indoor unit index on a VRF gateway map")
    planning: ReadPlanning = ReadPlanning()
    workarounds: Workarounds = Workarounds()
    revert: dict[str, float | bool | str] = Field(
        default_factory=dict, description="values `revert` writes, instead of the map's "
                                          "defaults")

    kind_transports = frozenset({"modbus_tcp", "serial_over_tcp", "serial"})

    @model_validator(mode="after")
    def _placement(self) -> ModbusConfig:
        if self.host is None and self.bus is None:
            raise ValueError("needs `bus` (or `host` for a Modbus TCP device of its own)")
        if self.host is not None and self.bus is not None:
            raise ValueError("give either `bus` or `host`, not both")
        return self

    def register_map(self) -> RegisterMap:
        rmap = register_map(self.model)
        if rmap.units is not None:
            if self.unit is None:
                raise RegisterMapError(rmap.model, "unit",
                                       f"model {rmap.model!r} has {rmap.units.count} unit "
                                       "blocks: set `unit`")
            return rmap.for_unit(self.unit)
        if self.unit is not None:
            raise RegisterMapError(rmap.model, "unit", "this model has no unit blocks")
        return rmap

    def available_points(self) -> dict[str, PointInfo]:
        return {p.name: PointInfo(p.name, p.unit, p.cumulative, p.writable)
                for p in self.register_map().points}

    def check_points(self) -> list[str]:
        problems = super().check_points()
        rmap = self.register_map()
        names = {p.name for p in self.selected_points()}
        for point, value in self.revert.items():
            if point not in names:
                problems.append(f"revert: {point!r} is not a polled point of this device")
                continue
            try:
                rmap.check_write(rmap.point(point), value)
            except RegisterMapError as exc:
                problems.append(f"revert.{point}: {exc.reason}")
        return problems

    def footprint(self) -> list[tuple[Table, int, int]]:
        """(table, first, end) of every register/bit the device's points occupy."""
        return [(p.table, p.address, p.address + p.count)
                for p in self.register_map().points
                if self.points is None or p.name in self.points]


@dataclass(frozen=True, slots=True)
class BoundPoint:
    """A point of one device, placed for planning (satisfies `registermap.Addressed`)."""

    device: str
    spec: PointSpec

    @property
    def table(self) -> Table:
        return self.spec.table

    @property
    def address(self) -> int:
        return self.spec.address

    @property
    def count(self) -> int:
        return self.spec.count


class UnitGroup:
    """The devices behind one Modbus address of one bus, read together each slot."""

    def __init__(self, hub: ModbusHub, unit_id: int, planning: ReadPlanning,
                 workarounds: Workarounds) -> None:
        self.hub = hub
        self.unit_id = unit_id
        self.max_count = planning.max_span
        self.max_gap = -1 if workarounds.one_request_per_point else planning.max_gap
        self.members: dict[str, ModbusDriver] = {}
        self._slot: float | None = None
        self._pending: dict[str, frozenset[str]] = {}
        self._results: dict[str, Reading | DeviceError] = {}
        self._plans: dict[tuple[tuple[str, frozenset[str]], ...],
                          list[ReadRequest[BoundPoint]]] = {}
        self.requests = 0  # Modbus requests issued, for the grouping benchmark
        # Learned from exceptions 01/02/03: points read alone, and points left out for a
        # while because their register alone was refused ((device, point) → reason, polls).
        self.alone: set[tuple[str, str]] = set()
        self.dropped: dict[tuple[str, str], tuple[str, int]] = {}

    def plan(self, wanted: dict[str, frozenset[str]]) -> list[ReadRequest[BoundPoint]]:
        """Requests for the given points of the given members (cached: slots repeat).

        Points that answered a point-level exception are planned in requests of their own
        (`alone`), so one missing register cannot refuse its neighbours' read again."""
        key = tuple(sorted(wanted.items()))
        plan = self._plans.get(key)
        if plan is None:
            bound = [BoundPoint(dev, self.members[dev].specs[name])
                     for dev, names in wanted.items() for name in names]
            shared = [bp for bp in bound if (bp.device, bp.spec.name) not in self.alone]
            single = [bp for bp in bound if (bp.device, bp.spec.name) in self.alone]
            plan = plan_reads(shared, max_count=self.max_count, max_gap=self.max_gap)
            plan += plan_reads(single, max_count=self.max_count, max_gap=-1)
            if len(self._plans) >= 64:  # bounded: per-point intervals give few combinations
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def prepare(self, device: str, slot: float, points: frozenset[str]) -> None:
        if slot != self._slot:
            self._slot, self._pending, self._results = slot, {}, {}
        self._pending[device] = points

    async def read(self, device: str, points: frozenset[str], slot: float) -> Reading:
        if slot != self._slot or device not in self._pending:
            self.prepare(device, slot, points)
            self._results.pop(device, None)
        if device not in self._results:
            await self._read_pending()
        result = self._results.pop(device)
        self._pending.pop(device, None)
        if isinstance(result, DeviceError):
            raise result
        return result

    def _skip_dropped(self, todo: dict[str, frozenset[str]],
                      readings: dict[str, Reading]) -> dict[str, frozenset[str]]:
        """Leave out points whose register the device refused alone; each is tried again
        after `DROP_RETRY_POLLS` polls (a meter may gain the register after a firmware
        update or a configuration change)."""
        wanted: dict[str, frozenset[str]] = {}
        for dev, names in todo.items():
            keep = set(names)
            for name in names:
                entry = self.dropped.get((dev, name))
                if entry is None:
                    continue
                reason, left = entry
                if left <= 0:
                    del self.dropped[(dev, name)]
                    continue
                self.dropped[(dev, name)] = (reason, left - 1)
                readings[dev].bad[name] = reason
                keep.discard(name)
            if keep:
                wanted[dev] = frozenset(keep)
        return wanted

    async def _read_pending(self) -> None:
        todo = {dev: pts for dev, pts in self._pending.items() if dev not in self._results}
        readings = {dev: Reading() for dev in todo}
        failed: dict[str, DeviceError] = {}
        timeout_s = min(self.members[dev].timeout_s for dev in todo)
        first = next(iter(todo))
        wanted = self._skip_dropped(todo, readings)
        queue = collections.deque(self.plan(wanted) if wanted else [])
        refused: dict[str, DeviceFaultError] = {}  # a point-level exception, per device
        while queue:
            request = queue.popleft()
            owners = {bp.device for bp in request.points}
            if owners <= failed.keys():
                continue
            label = first if len(todo) == 1 else next(iter(sorted(owners)))
            try:
                async with self.hub.session(Priority.POLL, device=label):
                    self.requests += 1
                    raw = await self.hub.modbus_read(request.table, request.address,
                                                     request.count, unit=self.unit_id,
                                                     device=label, timeout_s=timeout_s)
            except DeviceFaultError as exc:
                if exc.code not in POINT_EXCEPTIONS:  # the device, not the register
                    for dev in owners:
                        failed.setdefault(dev, DeviceFaultError(dev, exc.reason, exc.code))
                    continue
                if len(request.points) > 1:
                    # Learn: read these points one by one from now on, starting now.
                    self.alone.update((bp.device, bp.spec.name) for bp in request.points)
                    self._plans.clear()
                    queue.extendleft(reversed(plan_reads(request.points, max_gap=-1)))
                    continue
                bp = request.points[0]
                reason = f"{exc.reason} (register {bp.spec.address:#06x})"
                readings[bp.device].bad[bp.spec.name] = reason
                self.dropped[(bp.device, bp.spec.name)] = (reason, DROP_RETRY_POLLS)
                refused.setdefault(bp.device, DeviceFaultError(bp.device, exc.reason, exc.code))
                continue
            except DeviceError as exc:
                # The link failed, not one unit: every device not completely read fails.
                unread = {bp.device for r in [request, *queue] for bp in r.points}
                for dev in unread:
                    failed.setdefault(dev, type(exc)(dev, exc.reason))
                break
            for bp in request.points:
                offset = bp.address - request.address
                member = self.members[bp.device]
                try:
                    value = member.register_map.decode_value(
                        bp.spec, raw[offset : offset + bp.count])
                except DecodeError as exc:
                    readings[bp.device].bad[bp.spec.name] = exc.reason
                else:
                    readings[bp.device].values[bp.spec.name] = value
        for dev, fault in refused.items():
            if dev not in failed and not readings[dev].values:
                # Not one register answered: a wrong map or unit id, not a missing register.
                # The device fails as a whole, and nothing is remembered against its points.
                failed[dev] = fault
                for key in [k for k in self.dropped if k[0] == dev]:
                    del self.dropped[key]
                self.alone = {k for k in self.alone if k[0] != dev}
                self._plans.clear()
        for dev in todo:
            self._results[dev] = failed.get(dev) or readings[dev]


class ModbusDriver(Actuator[ModbusConfig, ModbusHub]):
    kind = "modbus"

    def __init__(self, config: ModbusConfig, hub: ModbusHub, clock: Clock) -> None:
        super().__init__(config, hub, clock)
        self.register_map = config.register_map()
        self.specs: dict[str, PointSpec] = {
            p.name: self.register_map.point(p.name) for p in self.points}
        self.group = UnitGroup(hub, config.device_id, config.planning, config.workarounds)
        self.group.members[self.id] = self

    def prepare(self, slot: float, points: frozenset[str]) -> None:
        self.group.prepare(self.id, slot, points)

    async def read(self, points: frozenset[str], slot: float) -> Reading:
        return await self.group.read(self.id, points, slot)

    def check_write(self, point: str, value: object) -> PointValue:
        spec = self.specs.get(point)
        if spec is None:
            raise RegisterMapError(self.register_map.model, point,
                                   f"is not a point of device {self.id!r}")
        return self.register_map.check_write(spec, value)

    async def write(self, point: str, value: PointValue) -> WriteResult:
        spec = self.specs[point]
        registers = self.register_map.encode_value(spec, value)
        async with self.hub.session(Priority.WRITE, device=self.id):
            await self.hub.modbus_write(spec.table, spec.address, registers,
                                        unit=self.config.device_id, device=self.id,
                                        timeout_s=self.timeout_s)
            raw = await self.hub.modbus_read(spec.table, spec.address, spec.count,
                                             unit=self.config.device_id, device=self.id,
                                             timeout_s=self.timeout_s)
        try:
            back: PointValue | None = self.register_map.decode_value(spec, raw)
        except DecodeError:
            back = None
        numeric = spec.type is not DataType.BOOL and spec.values is None
        ok = same_value(value, back, resolution=abs(spec.scale) if numeric and
                        spec.type is not DataType.FLOAT32 else 0.0)
        return WriteResult(self.id, point, value, back, ok)

    def revert_values(self) -> dict[str, PointValue]:
        out: dict[str, PointValue] = {}
        for name, spec in self.specs.items():
            if spec.write is not None and spec.write.default is not None:
                out[name] = spec.write.default
        out.update(self.config.revert)
        return out


def group_units(drivers: list[ModbusDriver]) -> None:
    """Make devices at the same Modbus address of the same hub share one `UnitGroup`."""
    groups: dict[tuple[int, int, tuple[int | None, int], bool], UnitGroup] = {}
    for driver in drivers:
        cfg = driver.config
        key = (id(driver.hub), cfg.device_id, (cfg.planning.max_span, cfg.planning.max_gap),
               cfg.workarounds.one_request_per_point)
        group = groups.get(key)
        if group is None:
            groups[key] = driver.group
            continue
        group.members[driver.id] = driver
        driver.group = group
