"""Simulated Modbus devices built from the same register maps the edge reads.

Every device answers from a model evaluated at `clock.now()` at the moment of the request,
encoded with `RegisterMap.encode_value` — the exact inverse of what the edge decodes — so
simulator and driver cannot silently disagree about addresses, scales or word order.

- `ProfileMeter`: any electricity or water meter map (SDM120/630, DDSU666, ADL400, the
  generic water meter): a load profile, its exact integral as the cumulative register,
  plausible voltages, currents, power factor and frequency.
- `AcUnit`: an air conditioner that accepts on/off, mode, setpoint and fan writes and moves
  the room temperature towards the setpoint (first-order, time constant `tau_s`), or back
  towards `ambient_c` when off — computed in closed form from the last change, so it is
  deterministic on a `VirtualClock`.
- `VrfGateway`: many `AcUnit`s behind one Modbus address (a map with `units:`).
- `PirSensor`: occupancy as a discrete input and illuminance, both settable by tests.
- `MeterSlave`: the scenario's existing `SimulatedMeter` behind the same interface.

Fault hooks on every device: `silent` (no answer at all), `exception_code` (answer every
request with it), `missing_points` (exception 02 for reads touching those registers),
`garble` (the answer's bytes are corrupted on the wire), `delay_s` (a slow device or
bridge). `ModbusDeviceServer` serves devices on Modbus TCP or RTU-over-TCP
framing through pymodbus, and keeps a bounded log of what was asked in which order.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass
from typing import Protocol

from protocols.errors import WriteRejectedError
from protocols.registermap import PointSpec, PointValue, RegisterMap, Table
from simulators.errors import IllegalAddressError, IllegalValueError
from simulators.meters import MODBUS_EXCEPTION_CODES, SimulatedMeter, TimeSource
from simulators.profile import LoadProfile, unit_noise


class ModbusSlave(Protocol):
    """What a Modbus server needs of a simulated device."""

    device_id: int
    silent: bool
    exception_code: int | None
    garble: bool
    delay_s: float

    def read(self, table: Table, address: int, count: int) -> list[int]:
        """Registers, or bits as 0/1; `IllegalAddressError` where nothing is mapped."""
        ...

    def write(self, table: Table, address: int, values: list[int]) -> None:
        """`IllegalAddressError` / `IllegalValueError` when refused."""
        ...


@dataclass(frozen=True, slots=True)
class Served:
    """One request a device answered (or refused), for tests to check order and counts."""

    t: float
    device_id: int
    op: str  # "read" | "write"
    table: Table
    address: int
    count: int


class FaultHooks:
    """The fault switches every simulated device has."""

    def __init__(self) -> None:
        self.silent = False
        self.garble = False
        self.delay_s = 0.0
        self._exception_code: int | None = None
        # Points this meter model lacks: any read touching their registers answers
        # exception 02 (illegal data address), like a variant without that register.
        self.missing_points: set[str] = set()

    @property
    def exception_code(self) -> int | None:
        return self._exception_code

    @exception_code.setter
    def exception_code(self, code: int | None) -> None:
        if code is not None and code not in MODBUS_EXCEPTION_CODES:
            raise ValueError(f"exception_code must be one of {sorted(MODBUS_EXCEPTION_CODES)}")
        self._exception_code = code


class MapDevice(FaultHooks):
    """A device whose registers are its register map applied to `values_at(now)`."""

    def __init__(self, *, name: str, register_map: RegisterMap, device_id: int,
                 clock: TimeSource, log_size: int = 1000) -> None:
        super().__init__()
        if not 1 <= device_id <= 247:
            raise ValueError(f"{name}: device_id must be 1–247, got {device_id}")
        self.name = name
        self.register_map = register_map
        self.device_id = device_id
        self.clock = clock
        self.log: collections.deque[Served] = collections.deque(maxlen=log_size)

    def values_at(self, t: float) -> dict[str, PointValue]:
        raise NotImplementedError

    def apply(self, point: str, value: PointValue, t: float) -> None:
        raise IllegalValueError(point, "read-only")

    def _specs(self, table: Table) -> list[PointSpec]:
        return [p for p in self.register_map.points if p.table is table]

    def read(self, table: Table, address: int, count: int) -> list[int]:
        t = self.clock.now()
        self.log.append(Served(t, self.device_id, "read", table, address, count))
        end = address + count
        specs = [p for p in self._specs(table) if p.address < end and address < p.address + p.count]
        if not specs:
            raise IllegalAddressError(table.value, address, count,
                                      f"no point of {self.register_map.model} there")
        lacking = [p.name for p in specs if p.name in self.missing_points]
        if lacking:
            raise IllegalAddressError(table.value, address, count,
                                      f"this {self.register_map.model} lacks {lacking[0]}")
        values = self.values_at(t)
        regs: dict[int, int] = {}
        for spec in specs:
            encoded = self.register_map.encode_value(spec, values[spec.name])
            regs.update(zip(range(spec.address, spec.address + spec.count), encoded, strict=True))
        return [regs.get(a, 0) for a in range(address, end)]

    def write(self, table: Table, address: int, values: list[int]) -> None:
        t = self.clock.now()
        self.log.append(Served(t, self.device_id, "write", table, address, len(values)))
        spec = next((p for p in self._specs(table) if p.address == address), None)
        if spec is None or spec.count != len(values):
            raise IllegalAddressError(table.value, address, len(values),
                                      "writes must cover exactly one point")
        if spec.write is None:
            raise IllegalValueError(spec.name, "read-only")
        try:
            value = self.register_map.decode_value(spec, values)
            checked = self.register_map.check_write(spec, value)
        except WriteRejectedError as exc:
            raise IllegalValueError(spec.name, exc.reason) from None
        except Exception as exc:  # DecodeError: not a value of this point
            raise IllegalValueError(spec.name, str(exc)) from None
        self.apply(spec.name, checked, t)


class ProfileMeter(MapDevice):
    """An electricity or water meter of any map, driven by a load profile."""

    def __init__(self, *, name: str, register_map: RegisterMap, device_id: int,
                 clock: TimeSource, profile: LoadProfile, start: float, initial: float = 0.0
                 ) -> None:
        super().__init__(name=name, register_map=register_map, device_id=device_id,
                         clock=clock)
        self.profile = profile
        self.start = float(start)
        self.initial = float(initial)
        names = {p.name for p in register_map.points}
        self.cumulative = "water_m3" if "water_m3" in names else "energy_import_kwh"
        if self.cumulative not in names:
            raise ValueError(f"{name}: map {register_map.model} has no cumulative point")
        self.phases = sum(1 for n in names if n.startswith("voltage_l"))

    def consumed(self, t0: float, t1: float) -> float:
        return self.profile.integral(t0, t1)

    def cumulative_at(self, t: float) -> float:
        if t >= self.start:
            return self.initial + self.profile.integral(self.start, t)
        return self.initial - self.profile.integral(t, self.start)

    def values_at(self, t: float) -> dict[str, PointValue]:
        minute = math.floor(t / 60)
        seed = self.profile.params.seed
        inst = self.profile.value_at(t)
        voltage = 225.0 + 5.0 * unit_noise(seed, minute, 1)
        pf = 0.95 + 0.02 * unit_noise(seed, minute, 2)
        current = inst / (voltage * pf * max(1, self.phases))
        out: dict[str, PointValue] = {
            self.cumulative: self.cumulative_at(t), "energy_export_kwh": 0.0,
            "power_w": inst, "flow_m3h": inst, "power_factor": pf,
            "frequency_hz": 50.0 + 0.02 * unit_noise(seed, minute, 3),
            "voltage_v": voltage, "current_a": current,
        }
        for phase in (1, 2, 3):
            out[f"voltage_l{phase}_v"] = voltage + phase * 0.5
            out[f"current_l{phase}_a"] = current
            out[f"power_l{phase}_w"] = inst / max(1, self.phases)
        out["energy_total_kwh"] = out[self.cumulative]  # import + export, export stays 0
        return {p.name: out[p.name] for p in self.register_map.points}


@dataclass
class _AcState:
    on: bool = False
    mode: str = "cool"
    setpoint_c: float = 26.0
    fan_speed: str = "auto"
    fault: bool = False
    anchor_t: float = 0.0
    anchor_temp: float = 28.0


class AcUnit:
    """The thermal model of one indoor unit (used alone or inside a `VrfGateway`)."""

    def __init__(self, *, start: float, ambient_c: float = 30.0, room_c: float | None = None,
                 tau_on_s: float = 1200.0, tau_off_s: float = 3600.0) -> None:
        self.ambient_c = ambient_c
        self.tau_on_s = tau_on_s
        self.tau_off_s = tau_off_s
        self.state = _AcState(anchor_t=start,
                              anchor_temp=ambient_c if room_c is None else room_c)

    def _target(self) -> tuple[float, float]:
        s = self.state
        if not s.on or s.mode == "fan":
            return self.ambient_c, self.tau_off_s
        if s.mode == "heat":
            return max(s.setpoint_c, self.ambient_c), self.tau_on_s
        if s.mode in ("cool", "dry"):
            return min(s.setpoint_c, self.ambient_c), self.tau_on_s
        return s.setpoint_c, self.tau_on_s  # auto

    def room_temp(self, t: float) -> float:
        target, tau = self._target()
        elapsed = max(0.0, t - self.state.anchor_t)
        return target + (self.state.anchor_temp - target) * math.exp(-elapsed / tau)

    def values(self, t: float) -> dict[str, PointValue]:
        s = self.state
        return {"on": s.on, "mode": s.mode, "setpoint_c": s.setpoint_c,
                "fan_speed": s.fan_speed, "room_temp_c": round(self.room_temp(t), 1),
                "fault": s.fault, "fault_code": 0}

    def set(self, point: str, value: PointValue, t: float) -> None:
        # Re-anchor the curve at the current temperature before the target changes.
        self.state.anchor_temp = self.room_temp(t)
        self.state.anchor_t = t
        if point == "on" and isinstance(value, bool):
            self.state.on = value
        elif point == "mode" and isinstance(value, str):
            self.state.mode = value
        elif point == "setpoint_c" and isinstance(value, float | int):
            self.state.setpoint_c = float(value)
        elif point == "fan_speed" and isinstance(value, str):
            self.state.fan_speed = value
        else:
            raise IllegalValueError(point, f"cannot set {value!r}")


class AcController(MapDevice):
    """One Modbus AC controller with one indoor unit (`ac-controller-modbus`)."""

    def __init__(self, *, name: str, register_map: RegisterMap, device_id: int,
                 clock: TimeSource, unit: AcUnit) -> None:
        super().__init__(name=name, register_map=register_map, device_id=device_id,
                         clock=clock)
        self.unit = unit

    def values_at(self, t: float) -> dict[str, PointValue]:
        values = self.unit.values(t)
        return {p.name: values[p.name] for p in self.register_map.points}

    def apply(self, point: str, value: PointValue, t: float) -> None:
        self.unit.set(point, value, t)


class VrfGateway(FaultHooks):
    """Indoor units behind one Modbus address; unit i at `address + i × stride`."""

    def __init__(self, *, name: str, register_map: RegisterMap, device_id: int,
                 clock: TimeSource, units: dict[int, AcUnit]) -> None:
        super().__init__()
        if register_map.units is None:
            raise ValueError(f"{name}: map {register_map.model} has no unit blocks")
        self.name = name
        self.device_id = device_id
        self.clock = clock
        self.layout = register_map.units
        self.units = units
        self.log: collections.deque[Served] = collections.deque(maxlen=1000)
        self._views = {i: AcController(name=f"{name}/{i}",
                                       register_map=register_map.for_unit(i),
                                       device_id=device_id, clock=clock, unit=unit)
                       for i, unit in units.items()}

    def read(self, table: Table, address: int, count: int) -> list[int]:
        self.log.append(Served(self.clock.now(), self.device_id, "read", table, address, count))
        out = [0] * count
        touched = False
        for view in self._views.values():
            try:
                part = view.read(table, address, count)
            except IllegalAddressError:
                continue
            touched = True
            specs = view._specs(table)
            for spec in specs:
                for a in range(spec.address, spec.address + spec.count):
                    if address <= a < address + count:
                        out[a - address] = part[a - address]
        if not touched:
            raise IllegalAddressError(table.value, address, count, "no configured unit there")
        return out

    def write(self, table: Table, address: int, values: list[int]) -> None:
        self.log.append(Served(self.clock.now(), self.device_id, "write", table, address,
                               len(values)))
        unit = address // self.layout.stride
        view = self._views.get(unit)
        if view is None:
            raise IllegalAddressError(table.value, address, len(values), f"no unit {unit}")
        view.write(table, address, values)


class PirSensor(MapDevice):
    """Occupancy and illuminance, set by the test or scenario."""

    def __init__(self, *, name: str, register_map: RegisterMap, device_id: int,
                 clock: TimeSource, occupied: bool = False, illuminance_lx: float = 300.0
                 ) -> None:
        super().__init__(name=name, register_map=register_map, device_id=device_id,
                         clock=clock)
        self.occupied = occupied
        self.illuminance_lx = illuminance_lx

    def values_at(self, t: float) -> dict[str, PointValue]:
        values: dict[str, PointValue] = {"occupied": self.occupied,
                                         "illuminance_lx": float(round(self.illuminance_lx))}
        return {p.name: values[p.name] for p in self.register_map.points}


class MeterSlave:
    """The scenario's `SimulatedMeter` (demo school) behind the `ModbusSlave` interface; its
    own fault hooks (`silent`, `exception_code`) stay the meter's."""

    def __init__(self, meter: SimulatedMeter) -> None:
        self.meter = meter
        self.device_id = meter.device_id
        self.garble = False
        self.delay_s = 0.0

    @property
    def silent(self) -> bool:
        return self.meter.silent

    @property
    def exception_code(self) -> int | None:
        return self.meter.exception_code

    def read(self, table: Table, address: int, count: int) -> list[int]:
        return self.meter.registers(table, address, count)

    def write(self, table: Table, address: int, values: list[int]) -> None:
        raise IllegalAddressError(table.value, address, len(values), "meters are read-only")
