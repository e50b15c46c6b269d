"""Simulated meters: ground truth, register encoding, read log, fault hooks."""

from __future__ import annotations

import datetime as dt
import struct

import pytest

from protocols.registermap import RegisterMap, Table, load_register_map, shortest_float32
from simulators.errors import IllegalAddressError
from simulators.meters import SimulatedMeter, UnmappedRegisters
from simulators.profile import FlowProfile, PowerProfile, ProfileParams, local_day_start

START = local_day_start(dt.date(2026, 3, 2))  # a Monday
SDM120 = load_register_map("eastron-sdm120")
WATER = load_register_map("generic-water-modbus")


class FixedClock:
    """A clock that only moves when the test says so."""

    def __init__(self, now: float) -> None:
        self.t = now

    def now(self) -> float:
        return self.t

    @property
    def synced(self) -> bool:
        return True

    async def sleep_until(self, when: float) -> None:
        self.t = max(self.t, when)


def float32(value: float) -> float:
    """The value as a float32 register carries it, in its shortest decimal (as decoded)."""
    return float(shortest_float32(struct.unpack(">f", struct.pack(">f", value))[0]))


def electricity(clock: FixedClock, **kwargs: object) -> SimulatedMeter:
    return SimulatedMeter(
        meter_id="teaching-elec",
        register_map=SDM120,
        profile=PowerProfile(ProfileParams(base=4_000.0, peak=60_000.0, seed=1)),
        clock=clock,
        start=START,
        initial=12_345.6,
        device_id=1,
        **kwargs,  # type: ignore[arg-type]
    )


def water(clock: FixedClock) -> SimulatedMeter:
    return SimulatedMeter(
        meter_id="teaching-water",
        register_map=WATER,
        profile=FlowProfile(ProfileParams(base=0.2, peak=8.0, seed=2)),
        clock=clock,
        start=START,
        initial=2_345.678,
        device_id=2,
    )


def decode(register_map: RegisterMap, name: str, registers: list[int]) -> float:
    return register_map.decode(register_map.point(name), registers)


def test_cumulative_is_initial_plus_exact_integral() -> None:
    clock = FixedClock(START)
    meter = electricity(clock)
    t = START + 10.5 * 3600 + 17.25
    assert meter.cumulative_at(START) == 12_345.6
    assert meter.cumulative_at(t) == 12_345.6 + meter.consumed(START, t)
    assert meter.consumed(START, t) == meter.profile.integral(START, t)
    assert meter.values_at(t)["energy_import_kwh"] == meter.cumulative_at(t)
    # Before the start the reading is consistent too (the meter ran before the simulation).
    assert meter.cumulative_at(START - 600) == pytest.approx(
        12_345.6 - meter.consumed(START - 600, START), rel=1e-15
    )


def test_electricity_values_cover_the_map_and_are_plausible() -> None:
    clock = FixedClock(START + 10 * 3600)
    values = electricity(clock).values_at(clock.now())
    assert set(values) == {p.name for p in SDM120.points}
    assert 220.0 <= values["voltage_v"] <= 230.0
    assert 0.93 <= values["power_factor"] <= 0.97
    assert values["frequency_hz"] == pytest.approx(50.0, abs=0.02)
    assert values["current_a"] == pytest.approx(
        values["power_w"] / (values["voltage_v"] * values["power_factor"])
    )
    assert values["power_w"] == pytest.approx(60_000.0, rel=0.1)
    assert values["energy_export_kwh"] == 0.0


def test_water_values_cover_the_map() -> None:
    clock = FixedClock(START + 10 * 3600)
    meter = water(clock)
    values = meter.values_at(clock.now())
    assert set(values) == {"water_m3", "flow_m3h"}
    assert values["flow_m3h"] == meter.profile.value_at(clock.now())


def test_registers_decode_to_the_truth_at_register_resolution() -> None:
    clock = FixedClock(START + 9 * 3600 + 12.5)
    elec, wat = electricity(clock), water(clock)
    truth = elec.cumulative_at(clock.now())
    served = decode(SDM120, "energy_import_kwh", elec.registers(Table.INPUT, 0x48, 2))
    assert served == float32(truth)
    truth_m3 = wat.cumulative_at(clock.now())
    served_m3 = decode(WATER, "water_m3", wat.registers(Table.HOLDING, 0, 2))
    assert served_m3 == pytest.approx(round(truth_m3 * 1000) / 1000, abs=1e-9)
    flow = decode(WATER, "flow_m3h", wat.registers(Table.HOLDING, 2, 1))
    assert flow == pytest.approx(wat.profile.value_at(clock.now()), abs=0.005 + 1e-9)


def test_registers_follow_the_clock() -> None:
    clock = FixedClock(START + 9 * 3600)
    meter = electricity(clock)
    before = decode(SDM120, "energy_import_kwh", meter.registers(Table.INPUT, 0x48, 2))
    clock.t += 3600
    after = decode(SDM120, "energy_import_kwh", meter.registers(Table.INPUT, 0x48, 2))
    assert after - before == pytest.approx(meter.consumed(clock.t - 3600, clock.t), abs=2e-3)
    # An explicit time wins over the clock.
    assert meter.registers(Table.INPUT, 0x48, 2, START) == SDM120.encode(
        SDM120.point("energy_import_kwh"), 12_345.6
    )


def test_read_spanning_holes_fills_zeros_and_places_points() -> None:
    clock = FixedClock(START + 11 * 3600)
    meter = electricity(clock)
    regs = meter.registers(Table.INPUT, 0x0000, 0x20)
    values = meter.values_at(clock.now())
    assert decode(SDM120, "voltage_v", regs[0:2]) == float32(values["voltage_v"])
    assert decode(SDM120, "power_w", regs[0x0C:0x0E]) == float32(values["power_w"])
    assert decode(SDM120, "power_factor", regs[0x1E:0x20]) == float32(values["power_factor"])
    assert regs[2:6] == [0, 0, 0, 0]


def test_reject_policy_refuses_reads_spanning_holes() -> None:
    meter = electricity(FixedClock(START), unmapped_registers=UnmappedRegisters.REJECT)
    with pytest.raises(IllegalAddressError, match="no point defines"):
        meter.registers(Table.INPUT, 0x0000, 0x08)
    assert len(meter.registers(Table.INPUT, 0x0046, 6)) == 6  # f, import, export: contiguous


@pytest.mark.parametrize(
    ("table", "address", "count", "message"),
    [
        (Table.INPUT, 0x0002, 2, "no point"),  # entirely inside a hole
        (Table.INPUT, 0x0100, 2, "no point"),  # beyond the map
        (Table.INPUT, 0x004A, 4, "outside"),  # runs past the last point
        (Table.HOLDING, 0x0048, 2, "no point"),  # wrong table (FC03 on an input-register meter)
        (Table.INPUT, 0x0048, 0, "count"),
        (Table.INPUT, 0x0000, 126, "count"),
    ],
)
def test_illegal_reads_are_refused(table: Table, address: int, count: int, message: str) -> None:
    meter = electricity(FixedClock(START))
    with pytest.raises(IllegalAddressError, match=message) as info:
        meter.registers(table, address, count)
    assert (info.value.table, info.value.address, info.value.count) == (table.value, address, count)
    assert meter.reads == 0


def test_read_log_is_bounded_and_counts_every_read() -> None:
    clock = FixedClock(START + 8 * 3600)
    meter = electricity(clock, read_log_size=3)
    for _ in range(5):
        meter.registers(Table.INPUT, 0x48, 2)
        clock.t += 60
    meter.registers(Table.INPUT, 0x0C, 2)
    assert meter.reads == 6
    assert len(meter.read_log) == 3
    last = meter.read_log[-1]
    assert (last.address, last.count, last.cumulative) == (0x0C, 2, None)
    served = meter.read_log[-2]
    assert served.cumulative == float32(meter.cumulative_at(served.t))


def test_partial_read_of_a_float_point() -> None:
    meter = electricity(FixedClock(START))
    whole = meter.registers(Table.INPUT, 0x48, 2)
    assert meter.registers(Table.INPUT, 0x49, 1) == whole[1:]


def test_fault_hooks_are_validated() -> None:
    meter = electricity(FixedClock(START))
    assert not meter.silent
    assert meter.exception_code is None
    meter.exception_code = 4
    assert meter.exception_code == 4
    with pytest.raises(ValueError, match="exception_code"):
        meter.exception_code = 9


def test_profile_units_must_match_the_map() -> None:
    with pytest.raises(ValueError, match="m3"):
        SimulatedMeter(
            meter_id="wrong",
            register_map=SDM120,
            profile=FlowProfile(ProfileParams(base=0.1, peak=1.0)),
            clock=FixedClock(START),
            start=START,
        )


@pytest.mark.parametrize("device_id", [0, 248])
def test_device_id_range(device_id: int) -> None:
    with pytest.raises(ValueError, match="device_id"):
        SimulatedMeter(
            meter_id="x",
            register_map=WATER,
            profile=FlowProfile(ProfileParams(base=0.1, peak=1.0)),
            clock=FixedClock(START),
            start=START,
            device_id=device_id,
        )
