"""A simulated summer week (15–21 June 2026, with the Dragon Boat Festival on Friday) of one
classroom in accelerated time: a Modbus AC controller and PIR, three Tasmota plugs on a real
Mosquitto (a PC, a printer on standby, a protected fridge), and simulated people who set
22 °C and leave everything on. Run once with rules and once without:

- every violation is corrected within one tick (no violation seen at two inspections in a
  row; every 22 °C fiddle and every evening departure answered by an audited write);
- a central override (AC on, Wednesday 16:00–20:00) is honoured until it expires, also
  across an agent restart at 18:00, and the rules apply at the first tick after;
- the protected fridge is never switched;
- the after-hours energy with rules on is reported as a ratio to the same week without;
- the rules-on run's audit writes give the savings per rule (central/savings.py), and a
  replay of the rules-off run's recorded samples with the same rules (`greenguard rules
  replay`, simulators/rules_replay.py) estimates the energy the rules avoided within the
  margin docs/savings.md states of the measured difference (off − on).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from central.institution import InstitutionConfig, parse_institution
from central.period import Period
from central.profile import load_profile
from central.reader import TenantReader
from central.savings import savings_for
from central.store import Store
from edge.agent import EdgeAgent
from edge.config import parse_edge_config
from protocols.clock import VirtualClock
from protocols.registermap import PointValue, load_register_map
from protocols.wire import Batch, Command, Event, Record, Sample, StreamId, record_from_dict
from protocols.workcalendar import WorkingCalendar
from simulators.modbus_bus import ModbusDeviceServer
from simulators.modbus_devices import AcController, AcUnit, MapDevice, PirSensor
from simulators.mqtt_devices import SimulatedTasmotaPlug
from simulators.occupants import EnergyLedger, Habits, Occupants, ac_power_w, ratio
from simulators.rules_replay import parse_pack, replay_async
from tests.conftest import Broker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TZ = ZoneInfo("Asia/Shanghai")
POLL = 600.0  # AC and PIR
PLUG_POLL = 1800.0  # plugs answer over MQTT, the slowest part of the simulated week
OFFSET = 5.0


def at(day: int, hour: int, minute: int = 0) -> float:
    return datetime(2026, 6, day, hour, minute, tzinfo=TZ).timestamp()


START, END = at(15, 0), at(22, 0)
OVERRIDE_FROM, OVERRIDE_TO = at(17, 16), at(17, 20)  # Wednesday evening event
RESTART = at(17, 18)
LATE_DAY = datetime(2026, 6, 16).date()  # Tuesday: someone works until 19:00
END_OF_DAY, WARNING = (17, 30), 10 * 60
CALENDAR = WorkingCalendar()


def working(t: float) -> bool:
    local = datetime.fromtimestamp(t, TZ)
    return CALENDAR.is_working_day(local.date()) and \
        (8, 0) <= (local.hour, local.minute) < END_OF_DAY


def after_hours_for(t: float) -> float:
    """Seconds since the end of the last working period (ground truth for the inspector)."""
    local = datetime.fromtimestamp(t, TZ)
    day = local.date()
    for back in range(10):
        d = day - timedelta(days=back)
        end = datetime(d.year, d.month, d.day, *END_OF_DAY, tzinfo=TZ)
        if CALENDAR.is_working_day(d) and end.timestamp() <= t:
            return t - end.timestamp()
    return 1e9


class AcCircuitMeter(MapDevice):
    """An SDM120 on the AC's circuit: its power now and the energy integrated so far (by an
    `EnergyLedger` of the AC alone), so the central has the AC's measured load."""

    def __init__(self, clock: VirtualClock, ac: AcUnit, energy: EnergyLedger) -> None:
        super().__init__(name="ac-meter", register_map=load_register_map("eastron-sdm120"),
                         device_id=30, clock=clock)
        self.ac = ac
        self.energy = energy

    def values_at(self, t: float) -> dict[str, PointValue]:
        power = ac_power_w(self.ac)
        values: dict[str, PointValue] = {
            "voltage_v": 230.0, "current_a": power / 230.0, "power_w": power,
            "power_factor": 1.0, "frequency_hz": 50.0,
            "energy_import_kwh": self.energy.working_kwh + self.energy.after_hours_kwh,
            "energy_export_kwh": 0.0}
        return {p.name: values[p.name] for p in self.register_map.points}


@dataclass
class Room:
    clock: VirtualClock
    ac: AcUnit
    ac_ctrl: AcController
    pir: PirSensor
    ac_meter: AcCircuitMeter
    ac_energy: EnergyLedger
    pc: SimulatedTasmotaPlug
    printer: SimulatedTasmotaPlug
    fridge: SimulatedTasmotaPlug
    people: Occupants
    ledger: EnergyLedger
    violations: list[tuple[float, str]] = field(default_factory=list)
    persisting: list[tuple[float, str]] = field(default_factory=list)
    inspections: int = 0


def build_room(clock: VirtualClock) -> Room:
    ac = AcUnit(start=START, ambient_c=32.0)
    ac_ctrl = AcController(name="ac", register_map=load_register_map("ac-controller-modbus"),
                           device_id=10, clock=clock, unit=ac)
    pir = PirSensor(name="pir", register_map=load_register_map("pir-modbus"), device_id=20,
                    clock=clock, occupied=False)
    pc = SimulatedTasmotaPlug(topic="pc_301", clock=clock, load_w=80.0, on=False,
                              tele_period_s=None)
    printer = SimulatedTasmotaPlug(topic="printer_301", clock=clock, load_w=4.0, on=False,
                                   tele_period_s=None)
    fridge = SimulatedTasmotaPlug(topic="fridge_301", clock=clock, load_w=60.0, on=True,
                                  tele_period_s=None)
    people = Occupants(clock, CALENDAR, TZ, ac, pir, [pc, printer],
                       Habits(late_days=frozenset({LATE_DAY})))

    def power() -> float:
        return ac_power_w(ac) + sum(p.load_w for p in (pc, printer, fridge) if p.on)

    ledger = EnergyLedger(clock, power, working)
    ac_energy = EnergyLedger(clock, lambda: ac_power_w(ac), working, step_s=600.0)
    return Room(clock, ac, ac_ctrl, pir, AcCircuitMeter(clock, ac, ac_energy), ac_energy,
                pc, printer, fridge, people, ledger)


def config(modbus_port: int, broker: Broker, *, rules: bool) -> dict[str, Any]:
    poll = {"poll_interval_s": POLL, "zone": "301"}
    plug = {"poll_interval_s": PLUG_POLL, "zone": "301"}
    raw: dict[str, Any] = {
        "edge_id": "edge-week", "site": "school", "interval_s": 900,
        "buses": [{"id": "gw", "transport": "modbus_tcp", "host": "127.0.0.1",
                   "port": modbus_port, "timeout_s": 0.5},
                  {"id": "lan", "transport": "mqtt", "host": broker.host,
                   "port": broker.port, "timeout_s": 1.0}],
        "devices": [
            {"id": "ac-301", "driver": "modbus", "bus": "gw", "device_id": 10,
             "model": "ac-controller-modbus", **poll},
            {"id": "pir-301", "driver": "modbus", "bus": "gw", "device_id": 20,
             "model": "pir-modbus", **poll},
            {"id": "ac-meter-301", "driver": "modbus", "bus": "gw", "device_id": 30,
             "model": "eastron-sdm120", **poll},
            {"id": "plug-pc", "driver": "tasmota", "bus": "lan", "topic": "pc_301", **plug},
            {"id": "plug-printer", "driver": "tasmota", "bus": "lan", "topic": "printer_301",
             **plug},
            {"id": "plug-fridge", "driver": "tasmota", "bus": "lan", "topic": "fridge_301",
             **plug},
        ],
        "calendar": {"working_hours": "08:00-17:30"},
    }
    if rules:
        raw["rules"] = {
            "tick_s": POLL, "tick_offset_s": OFFSET, "min_on_s": 600, "min_off_s": 600,
            "protected": ["plug-fridge"],
            "rules": [
                {"id": "ac-26", "type": "setpoint_limits"},
                {"id": "after-hours", "type": "after_hours_off", "warning_min": 10,
                 "exempt": ["plug-printer"]},
                {"id": "vacancy", "type": "vacancy_off", "after_min": 20},
                {"id": "standby", "type": "standby_cut", "devices": ["plug-printer"],
                 "below_w": 10, "for_min": 30},
            ]}
    return raw


@contextlib.asynccontextmanager
async def running(agent: EdgeAgent) -> AsyncIterator[EdgeAgent]:
    """Hubs, bus schedulers and the rules tick; no uplink (records stay in the outbox)."""
    tasks = [asyncio.create_task(hub.run(), name=f"hub {hub.name}")
             for hub in agent.hubs if hasattr(hub, "run")]
    tasks += [asyncio.create_task(s.run(), name=f"poll {s.name}") for s in agent.schedulers]
    if agent.rules is not None:
        tasks.append(asyncio.create_task(agent.rules.run(), name="rules"))
    try:
        async with asyncio.timeout(10):
            await agent.wait_started()
        yield agent
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for hub in agent.hubs:
            hub.close()
        if agent.rules is not None:
            agent.rules.store.close()
        for _ in range(3):
            await asyncio.sleep(0)


async def advance(clock: VirtualClock, until: float) -> None:
    await clock.run(until=until)
    await clock.settled()


def override_active(t: float) -> bool:
    return OVERRIDE_FROM <= t < OVERRIDE_TO


async def inspect(room: Room, start: float, end: float) -> None:
    """Ground truth after every tick: which violations exist now; none may survive to the
    next inspection (one tick later)."""
    clock = room.clock
    clock.register()
    previous: set[str] = set()
    try:
        t = start + OFFSET + 1
        while t < end:
            await clock.sleep_until(t)
            room.inspections += 1
            now: set[str] = set()
            s = room.ac.state
            if s.on and s.mode == "cool" and s.setpoint_c < 26:
                now.add("ac setpoint below 26 °C")
            after = after_hours_for(t)
            empty = not room.pir.occupied
            if not working(t) and after >= WARNING and empty:
                if s.on and not override_active(t):
                    now.add("ac on after hours")
                if room.pc.on:
                    now.add("pc on after hours")
            if room.printer.on and not working(t) and after >= 30 * 60 + PLUG_POLL:
                now.add("printer on standby after hours")
            if not room.fridge.on:
                now.add("protected fridge switched off")
            room.violations += [(t, v) for v in now]
            room.persisting += [(t, v) for v in now & previous]
            previous = now
            t += POLL
    finally:
        clock.unregister()


def records(path: Path) -> list[Record]:
    from edge.outbox import Outbox

    box = Outbox(path, edge_id="edge-week")
    try:
        return [record_from_dict(json.loads(r.body)) for r in box.read_after(0, 10_000_000)]
    finally:
        box.close()


def events(recs: list[Record], name: str, device: str | None = None) -> list[Event]:
    return [r for r in recs if isinstance(r, Event) and r.name == name
            and (device is None or r.device == device)]


async def recorder(room: Room, start: float, end: float) -> list[Record]:
    """What an agent without rules sends: each device's points at its aligned poll slots
    (the same point names and times as the edge's poller; the rules-on run goes through the
    real edge). Recorded in-process so the week without rules stays a second of CPU."""
    clock, out = room.clock, list[Record]()
    clock.register()
    try:
        t = start
        while t < end:
            await clock.sleep_until(t)
            ms = round(t * 1000)
            devices: list[tuple[str, dict[str, PointValue]]] = [
                ("ac-301", room.ac_ctrl.values_at(t)), ("pir-301", room.pir.values_at(t)),
                ("ac-meter-301", room.ac_meter.values_at(t))]
            if t % PLUG_POLL == 0:
                devices += [(d, {"on": p.on, "power_w": p.load_w if p.on else 0.0})
                            for d, p in (("plug-pc", room.pc), ("plug-printer", room.printer),
                                         ("plug-fridge", room.fridge))]
            for device, values in devices:
                for point, value in values.items():
                    out.append(Sample(len(out) + 1, ms, device, point, value, ""))
            t += POLL
    finally:
        clock.unregister()
    return out


async def week_without_rules() -> tuple[Room, list[Record]]:
    """The same week with no rules: nothing but the people changes a device (an agent
    without rules only polls), so the simulation alone is the ground truth; `recorder`
    gives the central the samples such an agent would have sent."""
    clock = VirtualClock(START)
    room = build_room(clock)
    side = [asyncio.create_task(room.people.run(START, END), name="people"),
            asyncio.create_task(room.ledger.run(START, END), name="ledger"),
            asyncio.create_task(room.ac_energy.run(START, END), name="ac energy")]
    recording = asyncio.create_task(recorder(room, START, END), name="recorder")
    await advance(clock, END)
    await asyncio.gather(*side)
    return room, await recording


async def week(tmp: Path, broker: Broker, *, rules: bool) -> tuple[Room, list[Record]]:
    clock = VirtualClock(START)
    room = build_room(clock)
    async with contextlib.AsyncExitStack() as stack:
        server = await stack.enter_async_context(
            ModbusDeviceServer([room.ac_ctrl, room.pir, room.ac_meter], framing="tcp"))
        for plug in (room.pc, room.printer, room.fridge):
            await stack.enter_async_context(plug.running(broker.host, broker.port))
        cfg = parse_edge_config(config(server.port, broker, rules=rules))
        side = [asyncio.create_task(room.people.run(START, END), name="people"),
                asyncio.create_task(room.ledger.run(START, END), name="ledger"),
                asyncio.create_task(room.ac_energy.run(START, END), name="ac energy")]
        if rules:
            side.append(asyncio.create_task(inspect(room, START, END), name="inspector"))
        try:
            agent = EdgeAgent.create(cfg, clock=clock, base_dir=tmp)
            async with running(agent):
                if rules:
                    await advance(clock, OVERRIDE_FROM)
                    agent.handle_command(Command(
                        "evening-event", "override.set", round(OVERRIDE_FROM * 1000),
                        round(OVERRIDE_TO * 1000),
                        {"device": "ac-301", "point": "on", "value": True,
                         "reason": "parents' evening"}))
                    await advance(clock, RESTART)
            if rules:  # the agent stops and starts again, with the override still on
                agent = EdgeAgent.create(cfg, clock=clock, base_dir=tmp)
                async with running(agent):
                    await advance(clock, END)
            else:
                async with running(agent):
                    await advance(clock, END)
            await asyncio.gather(*side)
        finally:
            for task in side:
                task.cancel()
            await asyncio.gather(*side, return_exceptions=True)
    return room, records(tmp / "outbox.sqlite")


async def test_simulated_week(mosquitto: Broker, tmp_path: Path) -> None:
    off, off_recs = await week_without_rules()
    on, recs = await week(tmp_path, mosquitto, rules=True)

    # Every violation corrected within one tick.
    assert on.inspections == 7 * 86_400 / POLL
    assert on.persisting == []
    audits = events(recs, "audit.write")
    fiddles = [t for t, what in on.people.done if what == "fiddle"]
    assert len(fiddles) == 12  # 4 working days × 3
    for t in fiddles:
        fixed = [e for e in audits if e.device == "ac-301" and e.data["point"] == "setpoint_c"
                 and t < e.ts / 1000 <= t + POLL + OFFSET]
        assert [e.data["after"] for e in fixed] == [26.0], datetime.fromtimestamp(t, TZ)
    leaves = [t for t, what in on.people.done if what == "leave"]
    for t in leaves:
        if override_active(t):
            continue
        for device in ("ac-301", "plug-pc"):
            switched = [e for e in audits if e.device == device and e.data["point"] == "on"
                        and t < e.ts / 1000 <= t + POLL + OFFSET]
            assert [e.data["after"] for e in switched] == [False], (device, t)

    # The override held the AC on from 16:00 to 20:00, across the restart at 18:00, and the
    # rules switched it off at the first tick after it expired.
    ac_off = [e.ts / 1000 for e in audits if e.device == "ac-301" and e.data["after"] is False]
    assert not [t for t in ac_off if OVERRIDE_FROM <= t < OVERRIDE_TO]
    assert [t for t in ac_off if OVERRIDE_TO <= t < OVERRIDE_TO + POLL] == [
        OVERRIDE_TO + OFFSET]
    [expired] = events(recs, "override.expired", "ac-301")
    assert expired.data["id"] == "evening-event"
    assert [e.data["status"] for e in events(recs, "command.result")] == ["applied"]

    # Protected: never switched, and the hold was reported.
    assert "POWER OFF" not in on.fridge.commands
    assert events(recs, "rule.held", "plug-fridge")
    assert not [e for e in audits if e.device == "plug-fridge"]
    # Someone working late on Tuesday held the after-hours switch-off.
    assert events(recs, "rule.hold", "ac-301")
    # Standby cut of the printer after hours.
    assert [e for e in audits if e.device == "plug-printer" and e.data["rule"] == "standby"]

    share = ratio(on.ledger.after_hours_kwh, off.ledger.after_hours_kwh)
    print(f"\nafter-hours energy, simulated week 2026-06-15..21: rules off "
          f"{off.ledger.after_hours_kwh:.1f} kWh, rules on {on.ledger.after_hours_kwh:.1f} kWh,"
          f" ratio {share:.3f}; working time {off.ledger.working_kwh:.1f} → "
          f"{on.ledger.working_kwh:.1f} kWh; {len(audits)} audited writes")
    assert share < 0.5
    assert on.ledger.working_kwh < off.ledger.working_kwh

    await savings_and_replay(tmp_path, mosquitto, off, off_recs, on, recs)


# The central's side of the week: the institution, and where the units' loads are measured.
INSTITUTION: dict[str, Any] = {
    "institution": {"id": "week-school", "name": "示范小学", "type": "school"},
    "buildings": [{"id": "A", "name": "教学楼", "floor_area_m2": 1000}],
    "headcount": {"staff": 20},
    "ac_units": [{"edge": "edge-week", "device": "ac-301", "building": "A", "zone": "301"}],
    "plugs": [{"edge": "edge-week", "device": d, "building": "A"}
              for d in ("plug-pc", "plug-printer", "plug-fridge")],
    "working_hours": {"start": "08:00", "end": f"{END_OF_DAY[0]:02d}:{END_OF_DAY[1]:02d}"},
    "savings": {
        "loads": [{"edge": "edge-week", "device": "ac-301", "meter": "ac-meter-301"},
                  *({"edge": "edge-week", "device": d, "zone": "301"}
                    for d in ("plug-pc", "plug-printer", "plug-fridge"))],
        "occupancy": [{"edge": "edge-week", "device": "pir-301", "zone": "301"}]},
}
MARGIN = 0.15  # docs/savings.md, "How good is the estimate"


def institution(**savings: Any) -> InstitutionConfig:
    doc = {**INSTITUTION, "savings": {**INSTITUTION["savings"], **savings}}
    return parse_institution(doc)


def central(path: Path, recs: list[Record]) -> Store:
    """The central's store with everything the edge's outbox held."""
    store = Store(path)
    after = 0
    for i in range(0, len(recs), 2000):
        chunk = tuple(recs[i:i + 2000])
        store.store_batch(Batch(StreamId("edge-week", 1), after, round(END * 1000), True,
                                chunk), "school")
        after = chunk[-1].seq
    return store


async def savings_and_replay(tmp: Path, broker: Broker, off: Room, off_recs: list[Record], on: Room,
                       on_recs: list[Record]) -> None:
    period = Period(START, END, TZ)
    profile = load_profile("national")
    # 1. The rules-on week's savings per rule, from its audit writes.
    inst = institution()
    with central(tmp / "on.sqlite", on_recs) as store:
        week_savings = savings_for(TenantReader(store, inst), inst, profile, period)
    print("estimated savings of the rules-on week (default cap "
          f"{inst.savings.max_hold_h:g} h):")
    for rule, t in sorted(week_savings.per_rule.items()):
        print(f"  {rule:<12} {t.writes:>3} writes {t.kwh:7.1f} kWh {t.kgce:6.2f} kgce")
    assert set(week_savings.per_rule) == {"ac-26", "after-hours", "vacancy", "standby"}
    for rule, t in week_savings.per_rule.items():
        assert t.without_load == 0, rule
        assert t.kwh > 0, rule
    assert week_savings.dry_run.writes == 0

    # 2. The rules-off week's recorded samples replayed with the same rules.
    measured = (off.ledger.working_kwh + off.ledger.after_hours_kwh
                - on.ledger.working_kwh - on.ledger.after_hours_kwh)
    pack = parse_pack({"rules": config(0, broker, rules=True)["rules"]})
    # The simulated people never switch anything off themselves: uncapped (the longest
    # gap, Thursday 17:40 → Monday 08:00 before the Dragon Boat Festival, is 86 h) the
    # estimate compares with the simulation; the default cap gives the conservative figure.
    uncapped, capped = institution(max_hold_h=96), institution()
    with central(tmp / "off.sqlite", off_recs) as store:
        full = await replay_async(store, uncapped, pack, START, END)
        default = await replay_async(store, capped, pack, START, END)
    estimated = full.report.total.kwh
    print(f"measured difference (off − on) {measured:.1f} kWh; replay of the rules-off "
          f"week: {len(full.writes)} writes, estimated {estimated:.1f} kWh avoided "
          f"(ratio {estimated / measured:.3f}), {default.report.total.kwh:.1f} kWh with the "
          f"default {capped.savings.max_hold_h:g} h cap; per rule "
          + ", ".join(f"{r} {t.kwh:.1f}" for r, t in sorted(full.report.per_rule.items())))
    assert full.report.total.without_load == 0
    assert abs(estimated - measured) <= MARGIN * measured
    assert default.report.total.kwh <= estimated
