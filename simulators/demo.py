"""`greenguard demo`: a simulated school metered end to end on one machine.

One process, one event loop, one TaskGroup: a broker (Mosquitto if installed, else an
embedded amqtt on 127.0.0.1; either accepts only the two users the demo generates, the edge
and the central, never an anonymous client), the scenario's meters behind a real Modbus TCP
server, one edge agent, and the central aggregator with its dashboard. Everything shares a
`VirtualClock`, so a simulated day can pass in a minute through the production code paths.
Ctrl-C cancels the TaskGroup; every component closes its sockets and subprocesses on the
way out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TextIO

import yaml

from central.auth import Authenticator, Role, generate_secret
from central.backend import open_reader, open_tokens
from central.carbon import CarbonFigures
from central.carbon_read import period_carbon
from central.compliance import ComplianceReport
from central.config import CentralSettings
from central.control import create_control_key, public_key_path
from central.cost import period_cost, tariff_book
from central.ingest import IngestStats
from central.institution import load_institution
from central.ledger import EntryKind, SqliteLedger
from central.metrics import compliance_for
from central.profile import load_profile
from central.reader import TenantReader
from central.service import run_central
from central.store import Store
from central.upload.city import load_city, read_secret, wire_settings
from central.upload.state import UploadState, upload_state_path
from central.upload.uploader import Uploader
from edge.agent import EdgeAgent
from edge.config import parse_edge_config
from edge.control import load_uplink_signer
from protocols.clock import VirtualClock
from protocols.platform.codec import PlatformCodec
from simulators.broker import demo_broker
from simulators.classrooms import Classroom, build_classrooms
from simulators.configs import EDGE_ID, edge_config, institution_config
from simulators.demo_history import history_bills
from simulators.demo_links import (
    LEAK_FROM_H,
    LEAK_HOURS,
    LEAK_M3H,
    LEAK_METER,
    LEAK_RULE,
    LeakingFlow,
    WebhookReceiver,
    city_config,
    notify_config,
)
from simulators.meters import SimulatedMeter
from simulators.modbus_bus import ModbusDeviceServer
from simulators.modbus_server import ModbusMeterServer
from simulators.platform_receiver import PlatformReceiver, ReceiverSettings
from simulators.profile import FlowProfile
from simulators.scenario import build_meters, load_scenario

BEIJING = timezone(timedelta(hours=8))
DEMO_LATE_AFTER_H = 24.0 * 400  # the uploader's late_after_h in the demo: never within a run
CENTRAL_USER = "greenguard-central"
DEMO_TARIFF = "cn-sample-general-ic"  # central/codes/tariffs: the shipped sample tariff


@dataclass(frozen=True)
class MeterResult:
    meter: str
    unit: str
    central: float  # sum of interval records stored by the central
    truth: float  # what the simulator consumed over the same span
    resolution: float  # float32 register resolution at the meter's reading


@dataclass
class DemoSummary:
    sim_start: float
    sim_end: float  # last interval boundary covered
    broker: str
    samples_polled: int
    samples_read_back: int  # one sample per completed write of the rules (its read-back)
    samples_stored: int
    intervals_stored: int
    outbox_left: int
    meters: list[MeterResult] = field(default_factory=list)
    audit_writes: int = 0  # audit.write events stored at the central (the rules' writes)
    # building -> periods the test platform accepted, and the uploader's backlog there
    uploads: dict[str, int] = field(default_factory=dict)
    upload_backlog: dict[str, int] = field(default_factory=dict)
    notifications: int = 0  # messages the demo's webhook receiver got (one per key)
    alarms_raised: int = 0  # alarm.* events with state raised stored at the central
    compliance: dict[str, object] = field(default_factory=dict)
    # The simulated span's cost as the central computes it (central/cost.py), and the
    # simulators' true consumption per hour priced by the same tariff
    cost: dict[str, object] = field(default_factory=dict)
    electricity_yuan_truth: float | None = None
    wall_seconds: float = 0.0
    carbon: dict[str, object] = field(default_factory=dict)  # CO₂ of the year to date


def _float32_ulp(value: float) -> float:
    if value <= 0:
        return 2.0**-149
    return 2.0 ** (math.floor(math.log2(value)) - 23)


def _resolution(meter: SimulatedMeter, t: float) -> float:
    spec = meter.cumulative_point
    if spec.type.value == "float32":
        return _float32_ulp(meter.cumulative_at(t)) * spec.scale
    return abs(spec.scale)


def _private(path: Path, text: str) -> None:
    """Write a file only its owner can read (mode 0600 from the start, no window)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def demo_tokens(settings: CentralSettings, workdir: Path, secret: str) -> dict[str, str]:
    """The demo's own signing secret and an admin and a viewer token, kept in the workdir
    with mode 0600 (auth.secret, tokens.json). A production central never does this: its
    first admin comes from `greenguard central bootstrap-admin`."""
    _private(workdir / "auth.secret", secret + "\n")
    store = open_tokens(settings)
    try:
        auth = Authenticator(secret, store)
        tokens = {"admin": auth.issue("demo admin", Role.ADMIN)[1],
                  "viewer": auth.issue("demo viewer", Role.VIEWER)[1]}
    finally:
        store.close()
    _private(workdir / "tokens.json", json.dumps(tokens, indent=2) + "\n")
    return tokens


def _fresh(workdir: Path) -> None:
    """Each demo run starts a new installation: new outbox epoch, empty central database."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)


async def run_demo(*, workdir: Path, scenario: str = "school", start: float | None = None,
                   sim_seconds: float | None = None, speed: float | None = 60.0,
                   http_port: int = 8080, broker: str = "auto", poll_interval_s: float = 60.0,
                   out: TextIO = sys.stdout) -> DemoSummary | None:
    """Run the demo; with `sim_seconds`, stop after that much simulated time, wait until
    the edge's outbox is drained, and return a summary. Without it, run until cancelled."""
    t_wall = time.monotonic()
    spec = load_scenario(scenario)
    if start is None:
        start = math.floor(time.time() / poll_interval_s) * poll_interval_s
    _fresh(workdir)
    clock = VirtualClock(start, speed=speed)
    meters = build_meters(spec, clock, start)
    leaking = _burst_pipe(meters, start)
    rooms = build_classrooms(spec, clock, start)
    institution_path = workdir / "institution.yaml"
    # The edge signs its uplink with its own key; the central accepts nothing else under
    # its id (institution `edge_keys`).
    edge_key = workdir / "edge-uplink.key"
    institution = {**institution_config(spec),
                   "edge_keys": {EDGE_ID: load_uplink_signer(edge_key, quiet=True).public_key},
                   # Prices, so the dashboard and the reports show cost (central/cost.py).
                   "tariff": {"use": DEMO_TARIFF}}
    institution_path.write_text(
        yaml.safe_dump(institution, allow_unicode=True, sort_keys=False), encoding="utf-8")
    # The broker takes only these two users (no anonymous client, even on loopback), and the
    # central signs every ack and command with a key the edge is configured to check.
    users = {EDGE_ID: secrets.token_urlsafe(24), CENTRAL_USER: secrets.token_urlsafe(24)}
    _private(workdir / "mqtt-central.password", users[CENTRAL_USER] + "\n")
    control_key = workdir / "central.control.key"
    create_control_key(control_key)
    central_public_key = public_key_path(control_key).read_text(encoding="ascii").strip()
    async with contextlib.AsyncExitStack() as stack:
        mqtt = await stack.enter_async_context(demo_broker(prefer=broker, users=users))
        modbus = await stack.enter_async_context(ModbusMeterServer(meters))
        ac_port = None
        if rooms:  # the AC controllers answer on a gateway of their own
            ac_gateway = await stack.enter_async_context(
                ModbusDeviceServer([r.controller for r in rooms], framing="tcp"))
            ac_port = ac_gateway.port
        edge_doc = edge_config(spec, modbus_host="127.0.0.1", modbus_port=modbus.port,
                               mqtt_host=mqtt.host, mqtt_port=mqtt.port,
                               poll_interval_s=poll_interval_s, ac_port=ac_port,
                               # amqtt speaks MQTT 3.1.1 only
                               mqtt_protocol="3.1.1" if mqtt.kind == "amqtt" else "5",
                               central_public_key=central_public_key,
                               mqtt_username=EDGE_ID, mqtt_password=users[EDGE_ID])
        edge_doc["mqtt"]["signing_key_file"] = str(edge_key)
        if leaking:  # the rule that notices the burst pipe
            edge_doc["rules"]["rules"].append(LEAK_RULE)
        _private(workdir / "edge.yaml",  # it holds the edge's MQTT password
                 yaml.safe_dump(edge_doc, allow_unicode=True, sort_keys=False))
        agent = EdgeAgent.create(parse_edge_config(edge_doc, source="edge.yaml"), clock=clock,
                                 base_dir=workdir)
        # The municipal platform (a test receiver) and the alarm webhook's receiver.
        local_day = datetime.fromtimestamp(start, BEIJING).date()
        city_path = city_config(workdir, port=0, start=local_day)
        platform = await stack.enter_async_context(PlatformReceiver(
            ReceiverSettings.from_city(city_path), workdir / "platform-received.sqlite"))
        city_path = city_config(workdir, port=platform.port, start=local_day)
        hook = await stack.enter_async_context(WebhookReceiver())
        notify_path = notify_config(workdir, institution=spec.institution.id,
                                    receiver_url=hook.url,
                                    dashboard_url=f"http://127.0.0.1:{http_port}")
        secret = generate_secret()
        settings = CentralSettings(
            institution_config=institution_path, database=workdir / "central.sqlite",
            mqtt_host=mqtt.host, mqtt_port=mqtt.port, http_port=http_port,
            auth_secret_file=workdir / "auth.secret", control_key_file=control_key,
            mqtt_username=CENTRAL_USER, mqtt_password_file=workdir / "mqtt-central.password",
            notify_config=notify_path)
        tokens = demo_tokens(settings, workdir, secret)
        history = SqliteLedger(settings.ledger_path)  # bills before metering: 同比 shows
        history.put(EntryKind.BILL, history_bills(institution, now_year=local_day.year))
        history.close()
        stats = IngestStats()
        ready = asyncio.Event()
        until = None if sim_seconds is None else start + sim_seconds
        summary: DemoSummary | None = None
        async with asyncio.TaskGroup() as tg:
            central = tg.create_task(run_central(settings, clock, ready=ready, stats=stats),
                                     name="central")
            await ready.wait()
            local = datetime.fromtimestamp(start, BEIJING).strftime("%Y-%m-%d %H:%M")
            pace = "as fast as possible" if speed is None else f"{speed:g}× real time"
            print(f"greenguard demo: {spec.institution.name} ({spec.institution.id}), "
                  f"{len(meters)} meters, {len(rooms)} AC units, "
                  f"broker {mqtt.kind} on {mqtt.host}:{mqtt.port}, "
                  f"simulated time from {local} Beijing time at {pace}", file=out)
            print(f"Dashboard: http://127.0.0.1:{http_port}/#token={tokens['viewer']}   "
                  f"(Ctrl-C to stop; admin and viewer tokens in {workdir / 'tokens.json'})",
                  file=out, flush=True)
            edge = tg.create_task(agent.run(), name="edge")
            uploader = _uploader(stack, settings, city_path, clock)
            uploading = tg.create_task(_upload(uploader, clock), name="uploader")
            if rooms:  # the people join the clock once the pollers have, not before
                await agent.wait_started()
            people = _people(tg, rooms, start=start, until=until)
            ticking = tg.create_task(clock.run(until=until), name="clock")
            if until is None:
                await asyncio.gather(central, edge, ticking, *people)
                return None
            await ticking
            await clock.settled()
            await _drained(agent, within_s=60)
            summary = _summarise(agent, settings, meters, stats, start=start, until=until,
                                 interval_s=agent.config.interval_s, broker=mqtt.kind)
            ids = {p.ids.building_id: p.building for p in uploader.plans}
            summary.uploads = dict.fromkeys(ids.values(), 0)
            for building_id, _gateway, _time, _items in platform.received():
                summary.uploads[ids.get(building_id, building_id)] += 1
            summary.upload_backlog = {s.building: s.backlog for s in uploader.status()}
            summary.notifications = len(hook.messages)
            for task in (edge, central, uploading, *people):
                task.cancel()
        summary.wall_seconds = time.monotonic() - t_wall
        return summary


def _people(tg: asyncio.TaskGroup, rooms: list[Classroom], *, start: float,
            until: float | None) -> list[asyncio.Task[None]]:
    """The simulated people of every room, acting until `until` (or for a year)."""
    end = start + 366 * 86_400 if until is None else until
    return [tg.create_task(room.people.run(start, end), name=f"people {room.spec.id}")
            for room in rooms]


def _burst_pipe(meters: list[SimulatedMeter], start: float) -> bool:
    """Give the leak meter (if the scenario has it) a burst pipe a while after the start."""
    for meter in meters:
        if meter.meter_id == LEAK_METER and isinstance(meter.profile, FlowProfile):
            t0 = start + LEAK_FROM_H * 3600
            meter.profile = LeakingFlow(meter.profile, t0, t0 + LEAK_HOURS * 3600, LEAK_M3H)
            return True
    return False


def _uploader(stack: contextlib.AsyncExitStack, settings: CentralSettings, city_path: Path,
              clock: VirtualClock) -> Uploader:
    """The platform uploader of `greenguard upload`, on the demo's store, state file (the
    one the API's 上传状态 reads) and clock."""
    institution = load_institution(settings.institution_config)
    city = load_city(city_path)
    secret = read_secret(city.encryption, str(city_path))
    store = open_reader(settings)
    stack.callback(store.close)
    state = UploadState(upload_state_path(settings.database, institution.institution.id))
    stack.callback(state.close)
    # Only periods every meter covered: the hours of the first day before the demo began
    # have no data, and the uploader would send them as zeros 24 hours after their end.
    return Uploader(TenantReader(store, institution), institution, city, secret, state, clock,
                    codec=PlatformCodec(wire_settings(city, secret)),
                    late_after_h=DEMO_LATE_AFTER_H)


async def _upload(uploader: Uploader, clock: VirtualClock) -> None:
    """The uploader's loop as one participant of the clock (time waits for its pass)."""
    clock.register()
    try:
        await uploader.run()
    finally:
        clock.unregister()


async def _drained(agent: EdgeAgent, *, within_s: float) -> None:
    """Wait until the central has acknowledged everything the edge produced."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within_s):
            while agent.outbox.acked_upto < agent.outbox.last_seq:  # noqa: ASYNC110
                await asyncio.sleep(0.05)


def demo_compliance(store: Store, settings: CentralSettings, *, now: float
                    ) -> ComplianceReport:
    """The summary's compliance: the same call, on the same store and ledger, as the
    dashboard, the API and every report (`central.metrics.compliance_for`)."""
    institution = load_institution(settings.institution_config)
    profile = load_profile(institution.institution.coefficient_profile)
    year = datetime.fromtimestamp(now, institution.institution.tz).year
    ledger = SqliteLedger(settings.ledger_path) if settings.ledger_path.exists() else None
    try:
        return compliance_for(store, institution, profile, now=now, year=year, ledger=ledger)
    finally:
        if ledger is not None:
            ledger.close()


def demo_carbon(store: Store, settings: CentralSettings, *, now: float) -> CarbonFigures:
    """The summary's CO₂ of the year to date: the same call as the dashboard's card, the
    API's `/carbon` and the reports (`central.carbon_read.period_carbon`)."""
    institution = load_institution(settings.institution_config)
    profile = load_profile(institution.institution.coefficient_profile)
    tz = institution.institution.tz
    year_start = datetime(datetime.fromtimestamp(now, tz).year, 1, 1, tzinfo=tz).timestamp()
    ledger = SqliteLedger(settings.ledger_path) if settings.ledger_path.exists() else None
    try:
        return period_carbon(store, ledger, institution, profile, start=year_start, end=now)
    finally:
        if ledger is not None:
            ledger.close()


def _summarise(agent: EdgeAgent, settings: CentralSettings, meters: list[SimulatedMeter],
               stats: IngestStats, *, start: float, until: float, interval_s: int,
               broker: str) -> DemoSummary:
    end = math.floor(until / interval_s) * interval_s
    store = Store(settings.database, readonly=True)
    try:
        counts = store.counts()
        events = store.rows("events")
        audits = sum(1 for row in events if row[4] == "audit.write")
        raised = sum(1 for row in events if str(row[4]).startswith("alarm.")
                     and json.loads(row[7]).get("state") == "raised")
        sums = store.interval_sums(int(start * 1000), int(end * 1000))
        results = []
        for meter in meters:
            key = next((k for k in sums if k.edge == EDGE_ID and k.device == meter.meter_id
                        and k.point == meter.cumulative_point.name), None)
            spec = meter.cumulative_point
            results.append(MeterResult(
                meter=meter.meter_id, unit=spec.unit,
                central=sums[key] if key is not None else 0.0,
                truth=meter.consumed(start, end),
                resolution=_resolution(meter, end)))
        report = demo_compliance(store, settings, now=end)
        cost, truth = demo_cost(store, settings, meters, start=start, end=end)
        carbon = demo_carbon(store, settings, now=end)
    finally:
        store.close()
    return DemoSummary(
        sim_start=start, sim_end=end, broker=broker,
        samples_polled=agent.poll_stats.samples, samples_read_back=agent.poll_stats.writes,
        audit_writes=audits, alarms_raised=raised, samples_stored=int(counts.get("samples", 0)),
        intervals_stored=int(counts.get("intervals", 0)),
        outbox_left=agent.outbox.stats().depth,
        meters=results, compliance=report.model_dump(mode="json"), cost=cost,
        electricity_yuan_truth=truth, carbon=carbon.model_dump(mode="json"))


def demo_cost(store: Store, settings: CentralSettings, meters: list[SimulatedMeter], *,
              start: float, end: float) -> tuple[dict[str, object], float | None]:
    """The cost of [start, end) as the API and the reports compute it, and the simulators'
    true electricity per hour priced by the same tariff (None without a tariff)."""
    institution = load_institution(settings.institution_config)
    profile = load_profile(institution.institution.coefficient_profile)
    ledger = SqliteLedger(settings.ledger_path) if settings.ledger_path.exists() else None
    try:
        cost = period_cost(store, ledger, institution, profile, start=start, end=end,
                           months=False)
    finally:
        if ledger is not None:
            ledger.close()
    book = tariff_book(institution)
    truth = None
    if book is not None:
        hours = range(int(start // 3600), int(-(-end // 3600)))
        truth = book.electricity_split(
            (max(start, h * 3600.0), min(end, (h + 1) * 3600.0),
             m.consumed(max(start, h * 3600.0), min(end, (h + 1) * 3600.0)))
            for m in meters if m.cumulative_point.unit == "kWh" for h in hours).yuan
    return cost.model_dump(mode="json"), truth


def print_summary(summary: DemoSummary, out: TextIO = sys.stdout) -> None:
    span_h = (summary.sim_end - summary.sim_start) / 3600
    print(f"\nSimulated {span_h:.1f} h in {summary.wall_seconds:.1f} s "
          f"(broker: {summary.broker})", file=out)
    print(f"Readings: {summary.samples_polled} polled and {summary.samples_read_back} read "
          f"back after writes, {summary.samples_stored} stored at the central; interval "
          f"records stored: {summary.intervals_stored}", file=out)
    print(f"Rules: {summary.audit_writes} audited writes (audit.write) stored at the central",
          file=out)
    if summary.uploads:
        accepted = ", ".join(f"{b} {n} (backlog {summary.upload_backlog.get(b, 0)})"
                             for b, n in summary.uploads.items())
        print(f"Platform upload: periods accepted by the test platform per building: "
              f"{accepted}", file=out)
    print(f"Alarms: {summary.alarms_raised} raised; notifications: {summary.notifications} "
          f"delivered to the demo's webhook receiver", file=out)
    print(f"\n{'meter':<18}{'central':>14}{'simulator':>14}{'difference':>12}  unit", file=out)
    for m in summary.meters:
        print(f"{m.meter:<18}{m.central:>14.3f}{m.truth:>14.3f}{m.central - m.truth:>12.4f}"
              f"  {m.unit}", file=out)
    cost = summary.cost
    if cost.get("configured"):
        elec: dict[str, object] = cost["electricity"]  # type: ignore[assignment]
        total = cost["total_yuan"]
        print(f"\nCost (tariff {cost['tariff_id']}): 电费 electricity "
              f"{_yuan(elec['energy_yuan'])} 元 ({_yuan(elec['yuan_per_kwh'], 4)} 元/kWh), "
              f"total {_yuan(total)} 元", file=out)
    c = summary.compliance
    print(f"\nCompliance {c['year']} (year to date, {c['profile_id']} coefficients):", file=out)
    print(f"  综合能耗 total energy   {c['energy_kgce']:.1f} kgce", file=out)
    projection: dict[str, object] = c["projection"]  # type: ignore[assignment]
    for item in c["items"]:  # type: ignore[attr-defined]
        target = item["target"]
        shown = "no target" if target is None else f"target {target:g}"
        projected = ("数据不足，暂不预测 not enough data to project"
                     if item["projected"] is None else
                     f"预计 projected {item['projected']:.3f} ({shown}) → {item['points']:g} / "
                     f"{item['max_points']:g} points")
        print(f"  {item['label_zh']:<8} {item['ytd']:.4f} {item['unit']} year to date, "
              f"{projected}", file=out)
    if c["score"] is None:
        print(f"  score: {projection['note_zh']} / {projection['note_en']}", file=out)
    else:
        print(f"  score {c['score']:g} / {c['max_score']:g}"
              f"{' (预计 provisional)' if c['provisional'] else ''}", file=out)
    print_carbon(summary.carbon, out)


def print_carbon(co2: dict[str, object], out: TextIO) -> None:
    """碳排放: the year's tCO₂ and ratios, and each emission factor used with its source."""
    if not co2:
        return

    def shown(key: str, digits: int) -> str:
        value = co2.get(key)
        return "—" if not isinstance(value, int | float) else f"{value:.{digits}f}"

    print(f"  碳排放 CO₂ {shown('t_co2', 4)} tCO₂ year to date, "
          f"{shown('kg_co2_per_m2', 4)} kgCO₂/m², {shown('kg_co2_per_person', 4)} "
          f"kgCO₂/person", file=out)
    for f in co2.get("factors", []):  # type: ignore[attr-defined]
        print(f"    factor {f['energy']} {f['kg_co2_per_unit']:g} kgCO₂/{f['unit']} "
              f"({f['region']}, from {f['valid_from']}): {f['source']}", file=out)


def _yuan(value: object, digits: int = 2) -> str:
    return f"{value:,.{digits}f}" if isinstance(value, int | float) else "—"


def _parse_start(value: str) -> float:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--start: {value!r} is not an ISO date/time such as 2026-03-02T08:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=BEIJING)
    return moment.timestamp()


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not number > 0 or not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {value!r}")
    return number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", default="school",
                        help="built-in scenario name or path to a scenario YAML (default: school)")
    parser.add_argument("--duration", type=_positive, metavar="SECONDS",
                        help="stop after this many real seconds and print a summary; "
                             "simulated time covered = duration × speed")
    parser.add_argument("--speed", type=_positive, default=60.0, metavar="FACTOR",
                        help="simulated seconds per real second (default 60: an hour a minute)")
    parser.add_argument("--start", type=_parse_start, metavar="ISO",
                        help="simulated start, Beijing time unless an offset is given "
                             "(default: now)")
    parser.add_argument("--port", type=int, default=8080, help="dashboard port (default 8080)")
    parser.add_argument("--broker", choices=["auto", "mosquitto", "amqtt"], default="auto",
                        help="MQTT broker to start (default: Mosquitto if installed)")
    parser.add_argument("--workdir", type=Path, default=Path(".greenguard/demo"),
                        help="where the demo writes its configs and databases (wiped first)")


async def _until_signalled(args: argparse.Namespace) -> DemoSummary | None:
    """SIGTERM stops the demo as cleanly as Ctrl-C (asyncio handles SIGINT itself)."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    sim_seconds = None if args.duration is None else args.duration * args.speed
    return await run_demo(workdir=args.workdir, scenario=args.scenario, start=args.start,
                          sim_seconds=sim_seconds, speed=args.speed, http_port=args.port,
                          broker=args.broker)


def run(args: argparse.Namespace) -> int:
    try:
        summary = asyncio.run(_until_signalled(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\ngreenguard demo stopped.")
        return 0
    if summary is not None:
        print_summary(summary)
    return 0
