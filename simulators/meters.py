"""Simulated meters: a load profile behind a real register map.

A `SimulatedMeter` is the ground truth of one metering point. Its cumulative register
(`energy_import_kwh`, `water_m3`) at time t is `initial + profile.integral(start, t)`, so
the consumption between any two instants is known to float64 precision (`consumed`), and
what the edge reads differs from it only by the register's own resolution (float32 for the
Eastron SDM120, whole litres for the generic water meter). Registers are produced with the
same `RegisterMap.encode` whose inverse the edge decodes with, so a simulator and a driver
cannot silently disagree about addresses, scales or word order.

The meter computes everything from the time it is asked about and keeps no running state
other than a bounded log of the reads it served (for tests to compare what the central
stored with what was actually on the wire). Fault hooks (`silent`, `exception_code`) are
plain attributes that the Modbus server consults on every request.
"""

from __future__ import annotations

import collections
import enum
import math
from dataclasses import dataclass
from typing import Protocol

from protocols.registermap import PointSpec, RegisterMap, Table
from simulators.errors import IllegalAddressError
from simulators.profile import LoadProfile, unit_noise


class TimeSource(Protocol):
    """All a meter needs of a `protocols.clock.Clock`: every Clock is one."""

    def now(self) -> float: ...


CUMULATIVE_TO_INSTANTANEOUS = {"energy_import_kwh": "power_w", "water_m3": "flow_m3h"}
"""Which instantaneous point is the derivative of which cumulative point."""

SUPPORTED_POINTS = frozenset(
    {
        "energy_import_kwh",
        "energy_export_kwh",
        "power_w",
        "voltage_v",
        "current_a",
        "power_factor",
        "frequency_hz",
        "water_m3",
        "flow_m3h",
    }
)

MODBUS_EXCEPTION_CODES = frozenset({1, 2, 3, 4, 5, 6, 8, 10, 11})
MAX_READ_REGISTERS = 125  # Modbus limit for FC03/FC04

_SALT_VOLTAGE = 1
_SALT_POWER_FACTOR = 2
_SALT_FREQUENCY = 3


class UnmappedRegisters(enum.StrEnum):
    """How a meter answers a read that spans registers between its points."""

    ZERO = "zero"  # reserved registers read as 0 (Eastron and most meters)
    REJECT = "reject"  # exception 2 unless every register belongs to a point


@dataclass(frozen=True, slots=True)
class ServedRead:
    """One register read the meter answered; `cumulative` is None if it did not cover it."""

    t: float
    table: Table
    address: int
    count: int
    cumulative: float | None  # as the client decodes it, i.e. after register quantisation


class SimulatedMeter:
    """One simulated Modbus meter; see the module docstring."""

    def __init__(
        self,
        *,
        meter_id: str,
        register_map: RegisterMap,
        profile: LoadProfile,
        clock: TimeSource,
        start: float,
        initial: float = 0.0,
        initial_export: float = 0.0,
        device_id: int = 1,
        unmapped_registers: UnmappedRegisters = UnmappedRegisters.ZERO,
        read_log_size: int = 1000,
    ) -> None:
        if not 1 <= device_id <= 247:
            raise ValueError(f"meter {meter_id!r}: device_id must be 1–247, got {device_id!r}")
        if not (math.isfinite(initial) and initial >= 0):
            raise ValueError(f"meter {meter_id!r}: initial must be >= 0, got {initial!r}")
        if read_log_size < 1:
            raise ValueError(f"meter {meter_id!r}: read_log_size must be >= 1")
        unknown = sorted({p.name for p in register_map.points} - SUPPORTED_POINTS)
        if unknown:
            raise ValueError(
                f"meter {meter_id!r}: register map {register_map.model!r} has points the "
                f"simulator cannot model: {', '.join(unknown)}"
            )
        names = {p.name for p in register_map.points}
        pairs = [(c, i) for c, i in CUMULATIVE_TO_INSTANTANEOUS.items() if c in names]
        if len(pairs) != 1 or pairs[0][1] not in names:
            raise ValueError(
                f"meter {meter_id!r}: register map {register_map.model!r} needs exactly one of "
                f"{sorted(CUMULATIVE_TO_INSTANTANEOUS.items())} (cumulative, instantaneous)"
            )
        self.cumulative_point: PointSpec = register_map.point(pairs[0][0])
        self.instantaneous_point: PointSpec = register_map.point(pairs[0][1])
        for spec, unit in (
            (self.cumulative_point, profile.total_unit),
            (self.instantaneous_point, profile.unit),
        ):
            if spec.unit != unit:
                raise ValueError(
                    f"meter {meter_id!r}: point {spec.name!r} is in {spec.unit} but the "
                    f"profile {type(profile).__name__} gives {unit}"
                )
        self.meter_id = meter_id
        self.register_map = register_map
        self.profile = profile
        self.clock = clock
        self.start = float(start)
        self.initial = float(initial)
        self.initial_export = float(initial_export)
        self.device_id = device_id
        self.unmapped_registers = unmapped_registers
        self.silent = False
        self._exception_code: int | None = None
        self.reads = 0
        self.read_log: collections.deque[ServedRead] = collections.deque(maxlen=read_log_size)
        self._seed = profile.params.seed

    def __repr__(self) -> str:
        return (
            f"SimulatedMeter({self.meter_id!r}, model={self.register_map.model!r}, "
            f"device_id={self.device_id})"
        )

    # -- faults -------------------------------------------------------------------

    @property
    def exception_code(self) -> int | None:
        """When set, every request to this meter is answered with this Modbus exception."""
        return self._exception_code

    @exception_code.setter
    def exception_code(self, code: int | None) -> None:
        if code is not None and code not in MODBUS_EXCEPTION_CODES:
            raise ValueError(
                f"exception_code must be one of {sorted(MODBUS_EXCEPTION_CODES)}, got {code!r}"
            )
        self._exception_code = code

    # -- ground truth -------------------------------------------------------------

    def consumed(self, t0: float, t1: float) -> float:
        """Exact consumption (kWh or m³) between two POSIX times, t0 <= t1."""
        return self.profile.integral(t0, t1)

    def cumulative_at(self, t: float) -> float:
        """The true cumulative reading at `t` (before register quantisation)."""
        if t >= self.start:
            return self.initial + self.profile.integral(self.start, t)
        return self.initial - self.profile.integral(t, self.start)

    def values_at(self, t: float) -> dict[str, float]:
        """Every point of the register map at time `t`, in engineering units."""
        minute = math.floor(t / 60.0)
        inst = self.profile.value_at(t)
        computed: dict[str, float] = {
            self.cumulative_point.name: self.cumulative_at(t),
            self.instantaneous_point.name: inst,
        }
        names = {p.name for p in self.register_map.points}
        if names & {"voltage_v", "current_a", "power_factor", "frequency_hz"}:
            # Plausible grid values that change once a minute, like the load does.
            voltage = 225.0 + 5.0 * unit_noise(self._seed, minute, _SALT_VOLTAGE)
            power_factor = 0.95 + 0.02 * unit_noise(self._seed, minute, _SALT_POWER_FACTOR)
            computed["voltage_v"] = voltage
            computed["power_factor"] = power_factor
            computed["current_a"] = inst / (voltage * power_factor)  # P = U·I·cos φ
            computed["frequency_hz"] = 50.0 + 0.02 * unit_noise(self._seed, minute, _SALT_FREQUENCY)
        computed["energy_export_kwh"] = self.initial_export
        return {p.name: computed[p.name] for p in self.register_map.points}

    # -- wire ---------------------------------------------------------------------

    def registers(
        self, table: Table, address: int, count: int, t: float | None = None
    ) -> list[int]:
        """Raw registers `address .. address+count-1` of `table` at `t` (default: now).

        A read must touch at least one point of the map and stay within the span of the
        table's points; holes between points read as 0 (`UnmappedRegisters.ZERO`, what the
        edge's read planner relies on when it merges nearby points) or are refused
        (`UnmappedRegisters.REJECT`, a meter that needs one request per point). A read may
        cover part of a multi-register point.
        """
        if not 1 <= count <= MAX_READ_REGISTERS:
            raise IllegalAddressError(
                table.value, address, count, f"count must be 1–{MAX_READ_REGISTERS}"
            )
        end = address + count
        in_table = [p for p in self.register_map.points if p.table is table]
        specs = [p for p in in_table if p.address < end and address < p.address + p.count]
        if not specs:
            raise IllegalAddressError(
                table.value, address, count, f"no point of {self.register_map.model} there"
            )
        span_start = min(p.address for p in in_table)
        span_end = max(p.address + p.count for p in in_table)
        if address < span_start or end > span_end:
            raise IllegalAddressError(
                table.value, address, count, f"outside {self.register_map.model}'s registers"
            )
        if self.unmapped_registers is UnmappedRegisters.REJECT:
            covered = sum(min(end, p.address + p.count) - max(address, p.address) for p in specs)
            if covered != count:
                raise IllegalAddressError(
                    table.value, address, count, "spans registers that no point defines"
                )
        when = self.clock.now() if t is None else t
        values = self.values_at(when)
        regs: dict[int, int] = {}
        served: float | None = None
        for spec in specs:
            encoded = self.register_map.encode(spec, values[spec.name])
            regs.update(zip(range(spec.address, spec.address + spec.count), encoded, strict=True))
            if spec is self.cumulative_point:
                served = self.register_map.decode(spec, encoded)
        self.reads += 1
        self.read_log.append(ServedRead(when, table, address, count, served))
        return [regs.get(a, 0) for a in range(address, end)]
