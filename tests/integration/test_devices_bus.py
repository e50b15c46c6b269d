"""The bus scheduler against real simulators on loopback: a silent device on a shared bus,
writes ahead of queued polls with read-back, the allowlist, revert, and read grouping.

Bounds are stated in poll slots and request counts, never in wall-clock time."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest

from edge.agent import EdgeAgent
from edge.config import parse_edge_config
from edge.poller import backoff_s
from protocols.clock import VirtualClock
from protocols.errors import WriteRejectedError
from protocols.registermap import load_register_map
from simulators.modbus_bus import ModbusDeviceServer, Request
from simulators.modbus_devices import AcController, AcUnit, ProfileMeter, VrfGateway
from tests.integration.devsim import (
    START,
    advance,
    events,
    outbox_records,
    polling,
    power,
    samples,
    slot_ms,
)

pytestmark = pytest.mark.integration

SDM120 = load_register_map("eastron-sdm120")
FRAMING = {"modbus_tcp": "tcp", "serial_over_tcp": "rtu"}


def meters(clock: VirtualClock, n: int, *, delay_s: float = 0.0) -> list[ProfileMeter]:
    out = []
    for i in range(1, n + 1):
        meter = ProfileMeter(name=f"m{i}", register_map=SDM120, device_id=i, clock=clock,
                             profile=power(i), start=START, initial=100.0 * i)
        meter.delay_s = delay_s
        out.append(meter)
    return out


def edge(port: int, transport: str, devices: list[dict[str, Any]], *,
         timeout_s: float = 0.2) -> dict[str, Any]:
    return {"edge_id": "edge-bus", "site": "school",
            "buses": [{"id": "gw", "transport": transport, "host": "127.0.0.1", "port": port,
                       "timeout_s": timeout_s, "frame_gap_s": 0.001}],
            "devices": devices}


def meter_devices(n: int) -> list[dict[str, Any]]:
    return [{"id": f"m{i}", "driver": "modbus", "bus": "gw", "device_id": i,
             "model": "eastron-sdm120"} for i in range(1, n + 1)]


def by_slot(requests: list[Request]) -> dict[int, list[Request]]:
    out: dict[int, list[Request]] = {}
    for r in requests:
        out.setdefault(round((r.t - START) / 60), []).append(r)
    return out


@pytest.mark.parametrize("transport", ["modbus_tcp", "serial_over_tcp"])
async def test_a_silent_device_does_not_hold_up_the_others(transport: str,
                                                           tmp_path: Path) -> None:
    """Meter m2 goes silent in slot 2 and answers again from slot 7.

    Bound: healthy devices are read in every slot, at the slot's instant; a failing device
    costs one request timeout per attempt, and only in the slot where it first fails does
    that timeout come before a healthy device's read (m3, polled after m2 in config order).
    In later slots its retry comes after every healthy device. It is reported offline once
    and online once.
    """
    clock = VirtualClock(START)
    sims = meters(clock, 4)
    silent_slots = range(2, 7)
    async with ModbusDeviceServer(sims, framing=FRAMING[transport], clock=clock) as server:
        agent = EdgeAgent.create(parse_edge_config(edge(server.port, transport,
                                                        meter_devices(4))),
                                 clock=clock, base_dir=tmp_path)
        async with polling(agent):
            for k in range(12):
                sims[1].silent = k in silent_slots
                await advance(clock, START + 60 * k)
            records = outbox_records(agent)
            stats = agent.poll_stats

    # Retries follow the backoff: failed in 2, 3, 5 (waits 1, 2, 4 slots), answered in 9.
    attempts = [2]
    while attempts[-1] in silent_slots:
        failures = len(attempts)
        attempts.append(attempts[-1] + math.ceil(backoff_s(failures, 60, 600) / 60))
    assert attempts == [2, 3, 5, 9]
    slots = by_slot(list(server.requests))
    assert sorted(slots) == list(range(12))
    m2_slots = sorted(k for k, reqs in slots.items() if any(r.device_id == 2 for r in reqs))
    assert m2_slots == [0, 1, *attempts, 10, 11]
    for k in attempts[:-1]:
        ids = [r.device_id for r in slots[k]]
        assert ids.count(2) == 1  # one timed-out request per attempt, the rest skipped
        if k != attempts[0]:
            assert ids[-1] == 2  # a known-failing device is retried after the healthy ones
    first = [r.device_id for r in slots[attempts[0]]]
    assert first.index(2) < first.index(3)  # the one slot where m3 waited for m2's timeout
    # Healthy devices: every slot, 2 requests each (SDM120 plan), at the slot's instant.
    for k, reqs in slots.items():
        for device_id in (1, 3, 4):
            assert [r.device_id for r in reqs].count(device_id) == 2, (k, device_id)
        assert {r.t for r in reqs} == {START + 60 * k}
    for device in ("m1", "m3", "m4"):
        assert {s.ts for s in samples(records, device)} == {
            slot_ms(START + 60 * k) for k in range(12)}
    # m2: nothing stored while silent, and no bad value ever.
    assert {s.ts for s in samples(records, "m2")} == {
        slot_ms(START + 60 * k) for k in (0, 1, 9, 10, 11)}
    offline = events(records, "device.offline")
    online = events(records, "device.online")
    assert [(e.device, e.ts) for e in offline] == [("m2", slot_ms(START + 120))]
    assert [(e.device, e.ts) for e in online] == [("m2", slot_ms(START + 540))]
    assert (stats.failures, stats.offline_events, stats.online_events) == (3, 1, 1)
    assert stats.skipped_backoff == 4  # slots 4, 6, 7 and 8
    assert stats.bad_values == 0


async def test_a_write_goes_ahead_of_queued_polls_and_is_read_back(tmp_path: Path) -> None:
    """Four slow meters (30 ms per answer) and an AC controller on one RTU line. A setpoint
    write issued while the slot's first poll is on the wire is the next frame on the line,
    followed by its read-back; the polls queued behind it wait."""
    clock = VirtualClock(START)
    sims = meters(clock, 4)
    unit = AcUnit(start=START, ambient_c=30.0)
    unit.set("on", True, START)
    ac = AcController(name="ac", register_map=load_register_map("ac-controller-modbus"),
                      device_id=10, clock=clock, unit=unit)
    devices = [*meter_devices(4), {"id": "ac-301", "driver": "modbus", "bus": "gw",
                                   "device_id": 10, "model": "ac-controller-modbus"}]
    async with ModbusDeviceServer([*sims, ac], framing="rtu", clock=clock) as server:
        agent = EdgeAgent.create(parse_edge_config(edge(server.port, "serial_over_tcp",
                                                        devices, timeout_s=0.5)),
                                 clock=clock, base_dir=tmp_path)
        async with polling(agent):
            await advance(clock, START)
            for meter in sims:
                meter.delay_s = 0.03
            before = len(server.requests)
            slot = asyncio.create_task(advance(clock, START + 60))
            async with asyncio.timeout(5):
                while len(server.requests) == before:
                    await asyncio.sleep(0.001)
            result = await agent.write("ac-301", "setpoint_c", 24.0)
            await slot
            later = [(r.device_id, r.function, r.address) for r in list(server.requests)[before:]]
            for meter in sims:
                meter.delay_s = 0.0
            await advance(clock, START + 30 * 60)
            records = outbox_records(agent)

    # m1's first read was on the wire; then the write (FC06 to register 1) and its read-back
    # (FC03 of register 1), before m1's second request and the other meters' polls.
    assert later[0] == (1, 4, 0x0000)
    assert later[1:3] == [(10, 6, 0x0001), (10, 3, 0x0001)]
    assert later[3] == (1, 4, 0x0046)
    # The rest of the slot: the meters' other 7 requests, then the AC's 4 (one per table).
    assert len(later) == 3 + 7 + 4
    assert [d for d, _, _ in later[3:10]] == [1, 2, 2, 3, 3, 4, 4]
    assert (result.ok, result.requested, result.read_back) == (True, 24.0, 24.0)
    assert unit.state.setpoint_c == 24.0
    audit = events(records, "actuator.write", "ac-301")
    assert [(e.data["point"], e.data["value"], e.data["read_back"], e.data["ok"])
            for e in audit] == [("setpoint_c", 24.0, 24.0, True)]
    # The AC polled after the write reports the new setpoint; the room cools towards it.
    setpoints = [s.value for s in samples(records, "ac-301", "setpoint_c")]
    assert setpoints[0] == 26.0
    assert setpoints[1:] == [24.0] * (len(setpoints) - 1)
    temps = [s.value for s in samples(records, "ac-301", "room_temp_c")
             if s.ts >= slot_ms(START + 60)]
    assert temps == sorted(temps, reverse=True)
    assert temps[-1] < temps[0]
    assert all(isinstance(t, float) and t > 24.0 for t in temps)


async def test_writes_outside_the_allowlist_never_reach_the_bus(tmp_path: Path) -> None:
    clock = VirtualClock(START)
    ac = AcController(name="ac", register_map=load_register_map("ac-controller-modbus"),
                      device_id=10, clock=clock, unit=AcUnit(start=START))
    meter = meters(clock, 1)
    devices = [*meter_devices(1), {"id": "ac-301", "driver": "modbus", "bus": "gw",
                                   "device_id": 10, "model": "ac-controller-modbus"}]
    async with ModbusDeviceServer([*meter, ac], framing="tcp", clock=clock) as server:
        agent = EdgeAgent.create(parse_edge_config(edge(server.port, "modbus_tcp", devices)),
                                 clock=clock, base_dir=tmp_path)
        async with polling(agent):
            bad: list[tuple[str, str, object]] = [
                ("ac-301", "setpoint_c", 5), ("ac-301", "setpoint_c", 40.0),
                ("ac-301", "setpoint_c", float("nan")), ("ac-301", "setpoint_c", "26"),
                ("ac-301", "setpoint_c", True), ("ac-301", "mode", "turbo"),
                ("ac-301", "on", 1), ("ac-301", "room_temp_c", 20.0),
                ("m1", "power_w", 0.0)]
            for device, point, value in bad:
                with pytest.raises(WriteRejectedError):
                    await agent.write(device, point, value)
            assert not [r for r in server.requests if r.is_write]
            await agent.write("ac-301", "on", True)
            await agent.write("ac-301", "mode", "heat")
            reverted = await agent.revert("ac-301")
            records = outbox_records(agent)
    assert len(events(records, "actuator.write_rejected")) == len(bad)
    assert [(r.point, r.requested, r.ok) for r in reverted] == [
        ("on", False, True), ("mode", "auto", True), ("setpoint_c", 26.0, True),
        ("fan_speed", "auto", True)]
    assert (ac.unit.state.on, ac.unit.state.mode) == (False, "auto")
    assert agent.poll_stats.writes_rejected == len(bad)
    assert agent.poll_stats.writes == 6


@pytest.mark.parametrize(("workaround", "per_slot"), [(False, 1), (True, 8 * 6)])
async def test_vrf_units_behind_one_address_are_read_together(
        tmp_path: Path, workaround: bool, per_slot: int) -> None:
    """Eight indoor units × 6 registers: one 64-register read per slot, or one request per
    point with the `one_request_per_point` workaround."""
    clock = VirtualClock(START)
    units = {i: AcUnit(start=START) for i in range(8)}
    vrf = VrfGateway(name="vrf", register_map=load_register_map("vrf-gateway-modbus"),
                     device_id=7, clock=clock, units=units)
    devices = [{"id": f"vrf-{i}", "driver": "modbus", "bus": "gw", "device_id": 7,
                "model": "vrf-gateway-modbus", "unit": i,
                "workarounds": {"one_request_per_point": workaround}} for i in range(8)]
    async with ModbusDeviceServer([vrf], framing="rtu", clock=clock) as server:
        agent = EdgeAgent.create(parse_edge_config(edge(server.port, "serial_over_tcp",
                                                        devices)),
                                 clock=clock, base_dir=tmp_path)
        async with polling(agent):
            await advance(clock, START + 120)
            result = await agent.write("vrf-5", "setpoint_c", 27.5)
            await advance(clock, START + 180)
            records = outbox_records(agent)
    reads = [r for r in server.requests if not r.is_write and r.t < START + 180]
    assert len(reads) == 3 * per_slot + 1  # three slots, plus the write's read-back
    assert result.ok
    assert units[5].state.setpoint_c == 27.5
    assert [s.value for s in samples(records, "vrf-5", "setpoint_c")][-1] == 27.5
    assert {s.value for s in samples(records, "vrf-4", "setpoint_c")} == {26.0}
    for i in range(8):
        assert len(samples(records, f"vrf-{i}")) == 4 * 6 + (1 if i == 5 else 0)
