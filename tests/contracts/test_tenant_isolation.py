"""Five institutions on one central, over real HTTP (uvicorn on loopback), on SQLite and on
PostgreSQL: nothing institution B (or C, D, E) owns reaches any caller of institution A.
On PostgreSQL all five share one database: store, ledger, tokens and commands.

C, D and E have data of every telemetry and ledger kind, and a command, from the start.
Institution B gets data of every kind (a birth, samples, interval records, events of every
type including alarms, audit and command results, a bin and a plug, bills, fuel, waste
clearances, hazardous-waste moves, a command; ingest counts its messages). The central's
notifier (a notify.yaml routing both institutions to a loopback webhook receiver) is fed
each institution's stored alarms as ingest feeds it, and delivers them; B also gets a muted
device (its alarm suppressed), an acknowledged episode and their audit trail. Every route of
the app's effective route table (a new route cannot escape: a parameter this test cannot
fill fails it) is called with each of A's roles, every value of every enumerated parameter
(report kind, format, language, alarm state), the PDF read back as text and the XLSX as its
sheets' XML. Two checks on each answer:

- no byte of B's, C's, D's or E's ids or names (they all carry `bravo`, or B's Chinese
  name) nor of their distinctive figures appears;
- every GET answers exactly the same before and after B's data is stored (B's figures summed
  into A's totals would change A's answers without showing B's numbers); except the public
  `/metrics`, whose ingest counters are the central's own, by design (docs/monitoring.md).

The notification routes take A's own episode; the public signed link is called with B's
episode and a signature made for A's (a real signature, of another episode): it must answer
404 like an unknown episode, and A's engineer acknowledging B's episode under A's id too.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import subprocess
import threading
import time
import typing
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from central.api import Tenant, create_app
from central.auth import Authenticator, Role, TokenStore, TokenTable
from central.commands import CommandBook, CommandRequest, CommandService, CommandTable
from central.config import CentralSettings
from central.entries import add_entries
from central.ingest import IngestStats
from central.institution import InstitutionConfig, parse_institution
from central.ledger import EntryKind, Ledger, SqliteLedger
from central.notify.hook import AlarmFeed
from central.notify.notifier import Notifier, episode_id
from central.notify.service import open_notifier
from central.pgledger import PgLedger
from central.pgstate import PgCommandBook, PgTokenStore
from central.pgstore import PgStore
from central.profile import load_profile
from central.report_output import FORMATS
from central.store import Store
from central.storeport import IngestStore
from central.triage import StoreBatch
from protocols.clock import VirtualClock
from protocols.wire import Batch, Birth, Event, IntervalRecord, Sample, Severity, StreamId
from tests import system
from tests.conftest import free_port
from tests.contracts.pg import APP_PASSWORD, PgServer
from tests.unit.central.central_helpers import TEST_SECRET, local_ts
from tests.unit.central.notify.receivers import BotReceiver, serve

pytestmark = pytest.mark.integration

NOW = local_ts(2025, 7, 2, 12, 0)
T = int(NOW * 1000)
A, B = "alpha-school", "bravo-academy"
# Every id and name of B, C, D and E carries "bravo" (or B's Chinese name); their figures are
# chosen so their digits appear nowhere else.
B_WORDS = ("bravo", "乙校", "乙楼")
B_FIGURES = ("8765.43", "555.777", "93.1717", "97531", "0.9137", "31337", "47.123",
             "271.828", "61.803", "3141.59")
# Each institution's leak alarm (seed_telemetry) makes one episode, with a known id.
EPISODES = {iid: episode_id((iid, f"edge-{tag}", f"{tag}-water", "leak", "leak", "flow_m3h"),
                            T - 600_000) for iid, tag in ((A, "alpha"), (B, "bravo"))}
PUBLIC = {"/", "/district", "/assets/{name}", "/healthz", "/metrics", "/openapi.json", "/docs",
          "/docs/oauth2-redirect", "/redoc"}


def institution(iid: str, name: str, edge: str, tag: str, hall: str) -> InstitutionConfig:
    building = f"{tag}-hall"
    return parse_institution({
        "institution": {"id": iid, "name": name, "type": "school"},
        "buildings": [{"id": building, "name": hall, "floor_area_m2": 6000,
                       "quota_class": None}],
        "headcount": {"staff": 100, "students_daily_avg": 1000},
        "targets": {2025: {"kgce_per_m2": 0.25, "kgce_per_person": 2.0,
                           "water_m3_per_person": 5.0}},
        "meters": [
            {"edge": edge, "device": f"{tag}-meter", "building": building,
             "energy": "electricity", "role": "main"},
            {"edge": edge, "device": f"{tag}-ac-meter", "building": building,
             "energy": "electricity", "role": "sub", "item": "01B00"},
            {"edge": edge, "device": f"{tag}-water", "building": building,
             "energy": "water", "role": "main"},
        ],
        "ac_units": [{"edge": edge, "device": f"{tag}-ac", "building": building}],
        "bins": [{"edge": edge, "device": f"{tag}-bin", "building": building,
                  "category": "recyclable", "capacity_l": 240}],
        "plugs": [{"edge": edge, "device": f"{tag}-plug", "building": building}],
        "vehicles": [{"id": f"{tag}-car", "plate": f"{tag[:3].upper()}-1", "fuel": "gasoline"}],
    })


ALPHA = institution(A, "甲校 Alpha School", "edge-alpha", "alpha", "甲楼 Alpha hall")
BRAVO = institution(B, "乙校 Bravo Academy", "edge-bravo", "bravo", "乙楼 Bravo hall")
# Three more institutions, seeded before A's first reading (B is seeded between two).
MORE = [institution(f"bravo-{c}-school", f"乙校 Bravo {c.upper()}", f"edge-bravo-{c}",
                    f"bravo-{c}", f"乙楼 Bravo {c.upper()} hall") for c in "cde"]
EVERY = [ALPHA, BRAVO, *MORE]


@dataclass(frozen=True)
class Figures:
    power_w: float
    kwh: float
    water_m3: float
    fill_pct: float
    outbox: int
    flow: float
    bill: float
    litres: float
    clearance_kg: float
    hazardous_kg: float


ALPHA_FIGURES = Figures(1200.0, 2.5, 0.5, 40.0, 3, 0.2, 1000.0, 30.0, 12.0, 5.0)
BRAVO_FIGURES = Figures(8765.4321, 555.777, 3141.59, 93.1717, 97531, 0.9137, 31337.0, 47.123,
                        271.828, 61.803)


def ev(seq: int, ts: int, name: str, data: dict[str, Any], device: str | None) -> Event:
    return Event(seq=seq, ts=ts, name=name, severity=Severity.WARNING, device=device, data=data)


def seed_telemetry(store: IngestStore, config: InstitutionConfig, f: Figures,
                   command_id: str) -> StoreBatch:
    """A birth, samples, interval records and events of every kind, for one institution;
    returns the stored batch as ingest hands it to the notifier."""
    edge = config.meters[0].edge
    tag = config.meters[0].device.removesuffix("-meter")
    site = f"site-{tag}"
    store.record_birth(site, Birth(StreamId(edge, 1), T - 3_600_000, True, f"sw-{tag}"),
                       now=NOW - 3600)
    records: list[Sample | IntervalRecord | Event] = []
    seq = itertools.count(1)
    for minutes in (50, 30, 2):
        ts = T - minutes * 60_000
        records += [
            Sample(seq=next(seq), ts=ts, device=f"{tag}-meter", point="power_w",
                   value=f.power_w, unit="W"),
            Sample(seq=next(seq), ts=ts, device=f"{tag}-water", point="flow_m3h",
                   value=f.flow, unit="m3/h"),
            Sample(seq=next(seq), ts=ts, device=f"{tag}-ac", point="setpoint_c", value=24.0,
                   unit="C"),
            Sample(seq=next(seq), ts=ts, device=f"{tag}-ac", point="mode", value="cool",
                   unit=""),
            Sample(seq=next(seq), ts=ts, device=f"{tag}-ac", point="on", value=True, unit=""),
            Sample(seq=next(seq), ts=ts, device=f"{tag}-plug", point="power_w", value=7.0,
                   unit="W"),
            Sample(seq=next(seq), ts=ts, device=f"{tag}-bin", point="fill_pct",
                   value=f.fill_pct if minutes != 30 else 5.0, unit="%"),
        ]
    for hours in range(1, 6):
        start = T - hours * 3_600_000
        for device, point, unit, q in ((f"{tag}-meter", "energy_import_kwh", "kWh", f.kwh),
                                       (f"{tag}-ac-meter", "energy_import_kwh", "kWh",
                                        f.kwh / 2),
                                       (f"{tag}-water", "water_m3", "m3", f.water_m3)):
            records.append(IntervalRecord(seq=next(seq), device=device, point=point,
                                          start=start, duration_s=3600, quantity=q,
                                          unit=unit))
    records += [
        ev(next(seq), T - 600_000, "alarm.leak",
           {"state": "raised", "rule": "leak", "point": "flow_m3h", "flow": f.flow},
           f"{tag}-water"),
        ev(next(seq), T - 590_000, "alarm.bin_full",
           {"state": "raised", "rule": "bin_full", "fill_pct": f.fill_pct}, f"{tag}-bin"),
        ev(next(seq), T - 580_000, "alarm.lights_on", {"state": "raised", "rule": "lights"},
           f"{tag}-meter"),
        ev(next(seq), T - 570_000, "alarm.lights_on", {"state": "cleared", "rule": "lights"},
           f"{tag}-meter"),
        ev(next(seq), T - 560_000, "alarm.offline", {"state": "odd", "rule": f"{tag}-rule"},
           f"{tag}-meter"),
        ev(next(seq), T - 550_000, "audit.write",
           {"point": "setpoint_c", "value": 26, "reason": f"{tag} audit"}, f"{tag}-ac"),
        ev(next(seq), T - 540_000, "command.result",
           {"id": command_id, "status": "applied", "detail": f"{tag} done"}, None),
        ev(next(seq), T - 530_000, "uplink.status", {"outbox_depth": f.outbox}, None),
        ev(next(seq), T - 520_000, "device_offline", {"why": f"{tag} timeout"},
           f"{tag}-meter"),
        ev(next(seq), T - 510_000, "rule.fired", {"rule": f"{tag}-after-hours"},
           f"{tag}-plug"),
    ]
    batch = Batch(stream=StreamId(edge, 1), after=0, sent=T, synced=True,
                  records=tuple(records))
    store.store_batch(batch, site, now=NOW - 60)
    return StoreBatch(site=site, stream=batch.stream, after=0, upto=records[-1].seq,
                      records=batch.records)


def seed_ledger(ledger: Ledger, config: InstitutionConfig, f: Figures) -> None:
    profile = load_profile("national")
    tag = config.meters[0].device.removesuffix("-meter")
    building = config.buildings[0].id
    add_entries(ledger, EntryKind.BILL, [
        {"ref": f"{tag}-bill-1", "energy": "natural_gas", "building": building,
         "period_start": "2025-06-01", "period_end": "2025-07-31", "quantity": f.bill, "unit": "m3",
         "supplier": f"{tag} gas co"}], config, profile)
    add_entries(ledger, EntryKind.FUEL, [
        {"ref": f"{tag}-fuel-1", "vehicle": f"{tag}-car", "day": "2025-07-01",
         "litres": f.litres, "km": 300}], config, profile)
    add_entries(ledger, EntryKind.CLEARANCE, [
        {"ref": f"{tag}-clear-1", "time": "2025-07-01T10:00:00", "category": "other",
         "building": building, "weight_kg": f.clearance_kg, "hauler": f"{tag} hauler"}],
        config, profile)
    add_entries(ledger, EntryKind.HAZARDOUS, [
        {"ref": f"{tag}-haz-1", "time": "2025-07-01T09:00:00", "direction": "in",
         "item": f"{tag} batteries", "quantity": f.hazardous_kg}], config, profile)


class Recorder:
    def publish(self, site: str, edge: str, command: object) -> None:
        pass


class Server:
    """The app on uvicorn, on a free loopback port, in a thread."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()),
                                       name="uvicorn", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@dataclass
class World:
    app: FastAPI
    writer: IngestStore
    ledgers: dict[str, Ledger]
    auth: Authenticator
    commands: CommandService
    stats: IngestStats
    notifier: Notifier
    feed: AlarmFeed
    runner: asyncio.Runner  # one loop for the notifier's HTTP client
    receiver: BotReceiver
    command_ids: dict[str, str] = field(default_factory=dict)

    def notify(self, batch: StoreBatch) -> None:
        """As ingest does after the store committed, then one round of the delivery loop."""
        self.feed([batch])
        self.runner.run(self.notifier.step())

    def forged_link(self) -> dict[str, Any]:
        """A link's query with a real signature, made for A's episode and recipient."""
        exp = int(NOW) + 3600
        return {"r": "hook:alpha-duty", "exp": exp,
                "sig": self.notifier.link_signature(EPISODES[A], "hook:alpha-duty", exp)}


def notify_yaml(tmp_path: Path, url: str) -> Path:
    """Both institutions routed to one webhook (the loopback receiver), each to its own
    recipients; the URL is a secret, so it lives in a file."""
    (tmp_path / "hook-url").write_text(url, encoding="utf-8")
    routing = {
        iid: {"recipients": {"duty": [f"hook:{tag}-duty"]},
              "routes": [{"name": f"{tag}-all", "stages": [
                  {"recipients": ["duty"]},
                  {"after_min": 30, "recipients": [f"hook:{tag}-head"]}]}]}
        for iid, tag in ((A, "alpha"), (B, "bravo"))}
    path = tmp_path / "notify.yaml"
    path.write_text(json.dumps({  # JSON is YAML
        "dashboard_url": "http://dashboard.test",
        "channels": {"hook": {"kind": "webhook", "url": {"file": str(tmp_path / "hook-url")}}},
        "institutions": routing}), encoding="utf-8")
    return path


@pytest.fixture
def world(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    profile = load_profile("national")
    source: Store | PgStore | Path
    writer: IngestStore
    ledgers: dict[str, Ledger]
    closing: list[Any] = []
    if backend == "sqlite":
        writer = Store(tmp_path / "central.sqlite")
        source = tmp_path / "central.sqlite"  # per-request read-only connections
        ledgers = {c.institution.id: SqliteLedger(tmp_path / f"{c.institution.id}.ledger.sqlite")
                   for c in EVERY}
        tokens: TokenTable = TokenStore(":memory:")
        book: CommandTable = CommandBook(":memory:")
    else:
        server: PgServer = request.getfixturevalue("pg_server")
        dsn = server.dsn(server.create_database())
        writer = PgStore(dsn, password=APP_PASSWORD)
        source = PgStore(dsn, password=APP_PASSWORD, readonly=True, migrate=False)
        closing.append(source)
        # One database for everything, the ledgers of all institutions on one connection.
        ids = [c.institution.id for c in EVERY]
        ledgers = dict(zip(ids, PgLedger.open_many(dsn, ids, password=APP_PASSWORD),
                           strict=True))
        tokens = PgTokenStore(dsn, password=APP_PASSWORD)
        book = PgCommandBook(dsn, password=APP_PASSWORD)
    closing += [writer, *ledgers.values()]
    auth = Authenticator(TEST_SECRET, tokens, now=lambda: NOW)
    closing += [tokens, book]
    commands = CommandService(book, Recorder())
    stats = IngestStats(received=1, stored_records=80, connected=True)  # A's messages
    clock = VirtualClock(NOW)
    app = create_app(source, [Tenant(c, profile, ledgers[c.institution.id]) for c in EVERY],
                     clock, auth, stats, commands=commands)
    with serve(BotReceiver()) as receiver, asyncio.Runner() as runner:
        # The notifier as the central opens it (central/service.py), from its settings.
        settings = CentralSettings(institution_config=tmp_path / "institutions.yaml",
                                   database=tmp_path / "central.sqlite",
                                   notify_config=notify_yaml(tmp_path, receiver.url("/hook")))
        notifier = open_notifier(settings, [ALPHA, BRAVO], clock, TEST_SECRET)
        assert notifier is not None
        app.state.notifier = notifier
        w = World(app, writer, ledgers, auth, commands, stats, notifier,
                  AlarmFeed(notifier, [ALPHA, BRAVO]), runner, receiver)
        try:
            w.command_ids[A] = send_command(w, A, ALPHA)
            w.notify(seed_telemetry(writer, ALPHA, ALPHA_FIGURES, w.command_ids[A]))
            seed_ledger(ledgers[A], ALPHA, ALPHA_FIGURES)
            assert [r.body["recipient"] for r in receiver.received] == ["alpha-duty"] * 3
            for config in MORE:  # everything but notifications (notify.yaml has A and B)
                iid = config.institution.id
                w.command_ids[iid] = send_command(w, iid, config)
                seed_telemetry(writer, config, BRAVO_FIGURES, w.command_ids[iid])
                seed_ledger(ledgers[iid], config, BRAVO_FIGURES)
            yield w
        finally:
            runner.run(notifier.aclose())
            notifier.close()
            for resource in closing:
                resource.close()


def send_command(w: World, iid: str, config: InstitutionConfig) -> str:
    edge = config.meters[0].edge
    tag = config.meters[0].device.removesuffix("-meter")
    request = CommandRequest.model_validate(
        {"edge": edge, "name": "override.set", "duration_s": 600,
         "args": {"device": f"{tag}-ac", "point": "setpoint_c", "value": 26,
                  "reason": f"{tag} exam"}})
    return w.commands.send(institution=iid, site=f"site-{tag}", request=request,
                           created_by=f"{tag} engineer", now_ms=T - 900_000).id


def seed_bravo(w: World) -> None:
    w.command_ids[B] = send_command(w, B, BRAVO)
    # B's engineer mutes B's bin: its alarm is recorded, suppressed and audited, not sent.
    w.notifier.mute(B, "edge-bravo", "bravo-bin", minutes=600, reason="bravo bin repair",
                    actor="token:bravo engineer")
    w.notify(seed_telemetry(w.writer, BRAVO, BRAVO_FIGURES, w.command_ids[B]))
    bin_full = next(e for e in w.notifier.queue.episodes(B) if e.kind == "bin_full")
    w.notifier.acknowledge(bin_full.id, "token:bravo engineer", institution=B)
    w.stats.received += 1  # as ingest counts B's batch
    w.stats.stored_records += 80
    seed_ledger(w.ledgers[B], BRAVO, BRAVO_FIGURES)
    # B's notification data is really there: episodes (one suppressed), sent deliveries with
    # their attempts, a mute, the audit trail; B's leak alarm open and not acknowledged.
    q = w.notifier.queue
    assert bin_full.suppressed == "muted"
    assert {d.recipient for d in q.deliveries(institution=B) if d.state == "sent"} == {
        "bravo-duty"}
    assert q.mutes(B, NOW)
    assert {a["action"] for a in q.audit_log(B)} >= {
        "mute", "suppressed", "acknowledge"}
    leak = q.episode(EPISODES[B])
    assert leak is not None
    assert leak.acked_at is None
    assert leak.route == "bravo-all"


# -- the requests, from the route table -------------------------------------------------

# A valid value of A for every parameter a route may require (a missing one fails the test).
PARAMS: dict[str, Any] = {
    "name": "dashboard.js", "year": 2025, "number": 7, "start": "2025-07-02T00:00:00",
    "end": "2025-07-03T00:00:00", "edge": "edge-alpha", "device": "alpha-meter",
    "point": "power_w", "kind": "bill", "bucket_s": 900, "minutes": 60, "month": 7,
    "period": "2025-07",
}
DATE_PARAMS = {"/api/v1/institutions/{iid}/metrics": {"start": "2025-07-01",
                                                        "end": "2025-07-03"},
               # month 3 or quarter 3 (a quarter is 1 to 4)
               "/api/v1/institutions/{iid}/comparisons": {"number": 3}}
BODIES: dict[str, Any] = {
    "/api/v1/tokens": {"name": "isolation", "role": "viewer", "institutions": [A]},
    "/api/v1/institutions/{iid}/commands": {
        "edge": "edge-alpha", "name": "override.set", "duration_s": 600,
        "args": {"device": "alpha-ac", "point": "setpoint_c", "value": 26,
                 "reason": "isolation"}},
    "/api/v1/institutions/{iid}/notify/mutes": {
        "edge": "edge-alpha", "device": "alpha-plug", "minutes": 60,
        "reason": "isolation"},
}
# The public acknowledgement link: B's episode, with a signature made for A's.
LINK = "/notify/ack/{episode}"
# Requests that name B's things from A's scope: they must answer as if B did not exist.
PROBES: list[tuple[str, dict[str, Any]]] = [
    ("/api/v1/institutions/alpha-school/series",
     {**{k: PARAMS[k] for k in ("start", "end")}, "edge": "edge-bravo",
      "device": "bravo-meter", "point": "power_w"}),
    ("/api/v1/institutions/alpha-school/series",
     {**{k: PARAMS[k] for k in ("start", "end")}, "edge": "edge-alpha",
      "device": "bravo-meter", "point": "power_w"}),
    ("/api/v1/institutions/alpha-school/intervals",
     {**{k: PARAMS[k] for k in ("start", "end")}, "edge": "edge-bravo"}),
    ("/api/v1/institutions/alpha-school/events", {"name": "alarm.*"}),
    ("/api/v1/institutions/alpha-school/notify/deliveries", {"episode": EPISODES[B]}),
]


def enum_values(route: APIRoute, name: str) -> list[Any] | None:
    """Every value of a Literal or enum parameter, None for any other parameter."""
    for p in [*route.dependant.path_params, *route.dependant.query_params]:
        if p.name != name:
            continue
        annotation = p.field_info.annotation
        args = typing.get_args(annotation)
        if typing.get_origin(annotation) is typing.Literal:
            return list(args)
        if isinstance(annotation, type) and issubclass(annotation, Enum):
            return [v.value for v in annotation]
    return None


def requests_for(route: APIRoute, path: str, method: str, w: World
                 ) -> list[dict[str, Any]]:
    """Every request of one route: the product of its enumerated parameters' values."""
    fixed: dict[str, Any] = {}
    choices: dict[str, list[Any]] = {}
    names = [*route.param_convertors,
             *[p.name for p in route.dependant.query_params]]
    required = {p.name for p in route.dependant.query_params if p.field_info.is_required()}
    for name in names:
        enumerated = enum_values(route, name)
        if enumerated is not None and name != "kind":
            choices[name] = enumerated
        elif name == "iid":
            fixed[name] = A
        elif name == "command_id":
            fixed[name] = w.command_ids[A]
        elif name == "token_id":
            fixed[name] = w.auth.issue("victim", Role.VIEWER, [A])[0].id
        elif name == "episode" and name in route.param_convertors:
            fixed[name] = EPISODES[B] if path == LINK else EPISODES[A]
        elif path == LINK and name in ("r", "exp", "sig"):
            fixed[name] = w.forged_link()[name]
        elif name in DATE_PARAMS.get(path, {}):
            fixed[name] = DATE_PARAMS[path][name]
        elif name in PARAMS:
            fixed[name] = PARAMS[name]
        elif name in required or name in route.param_convertors:
            raise AssertionError(f"{path}: no sample value for {name}")
    out = []
    for combo in itertools.product(*choices.values()):
        values: dict[str, Any] = {**fixed, **dict(zip(choices, combo, strict=True))}
        if "report" in values:  # each report in the formats it comes in, of a period of B's
            if values.get("format") not in FORMATS[values["report"]]:
                continue
            values["number"] = 3 if values["report"] == "quarterly" else 7
        url = path
        for name in route.param_convertors:
            url = url.replace(f"{{{name}}}", str(values.pop(name)))
        kwargs: dict[str, Any] = {"method": method, "url": url, "params": values}
        if method == "POST":
            if path in BODIES:
                kwargs["json"] = BODIES[path]
            elif path.endswith("/import"):
                kwargs["content"] = (b"ref,vehicle,day,litres,km\n" if values.get("format")
                                     != "xlsx" else b"")
            else:
                kwargs["json"] = []
        out.append(kwargs)
    return out


def table(app: FastAPI, w: World) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for ctx in iter_route_contexts(app.routes):
        path, original = ctx.path, ctx.original_route
        assert path is not None
        if not isinstance(original, APIRoute):
            assert path in PUBLIC, f"{path}: a non-API route outside the public list"
            out.append((path, {"method": "GET", "url": path, "params": {}}))
            continue
        for method in sorted((ctx.methods or set()) - {"HEAD"}):
            out.extend((f"{method} {path}", r)
                       for r in requests_for(original, path, method, w))
    return out


def text_of(r: httpx.Response) -> str:
    """What a reader of the answer sees: PDF as its text, XLSX as its sheets' XML."""
    kind = r.headers.get("content-type", "")
    if kind.startswith("application/pdf"):
        result = subprocess.run(["pdftotext", "-", "-"], input=r.content,
                                capture_output=True, check=True, timeout=60)
        return result.stdout.decode()
    if "spreadsheetml" in kind:
        with zipfile.ZipFile(io.BytesIO(r.content)) as z:
            return "\n".join(z.read(n).decode() for n in sorted(z.namelist())
                             if n.startswith("xl/"))
    return r.content.decode("utf-8", errors="replace")


def leaks(text: str) -> list[str]:
    lowered = text.lower()
    found = [w for w in B_WORDS if w in lowered]
    found += [f for f in B_FIGURES if f in text]
    for raw in ("97531",):  # the outbox depth as an integer
        if f'"outbox_depth":{raw}' in text.replace(" ", ""):
            found.append(raw)
    return found


def below_role(r: httpx.Response, who: str) -> bool:
    """A 403 because the route needs a higher role than the caller's (e.g. the delivery log,
    engineers only): the roles that may read it are still checked."""
    if r.status_code != 403 or who not in Role.__members__.values():
        return False
    detail = str(r.json().get("detail", ""))
    needed = detail.removeprefix("forbidden: needs role ").partition(",")[0]
    return needed in Role.__members__.values() and Role(needed).rank > Role(who).rank


def headers(w: World) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {"anonymous": {}}
    for role in Role:
        out[role.value] = {"Authorization": f"Bearer {w.auth.issue(f'a {role}', role, [A])[1]}"}
    return out


def test_no_route_shows_another_institutions_data(world: World) -> None:
    system.require("poppler-utils")  # pdftotext reads the PDF reports
    requests = table(world.app, world)
    assert len(requests) > 50, "the route table looks empty"
    callers = headers(world)
    failures: list[str] = []

    def read_all(client: httpx.Client, *, writes: bool) -> dict[tuple[str, str, str], str]:
        seen: dict[tuple[str, str, str], str] = {}
        for (label, kwargs), (who, auth) in itertools.product(
                [*requests, *[("GET probe " + u, {"method": "GET", "url": u, "params": p})
                              for u, p in PROBES]], callers.items()):
            if (kwargs["method"] != "GET") != writes:
                continue
            r = client.request(**kwargs, headers=auth)
            probe = label.startswith("GET probe")
            if r.status_code >= 500 or (
                    r.status_code != 200 and who != "anonymous" and not probe
                    and kwargs["method"] == "GET"
                    and kwargs["url"].startswith("/api/v1/institutions")
                    and not below_role(r, who)):
                failures.append(f"{kwargs['method']} {kwargs['url']} {kwargs['params']} as "
                                f"{who}: {r.status_code}")
            text = text_of(r) if r.status_code == 200 else r.text
            key = (f"{kwargs['method']} {kwargs['url']}",
                   json.dumps(kwargs["params"], sort_keys=True), who)
            seen[key] = f"{r.status_code} {text}"
            found = [] if probe else leaks(text)  # a probe's answer may echo B's ids it names
            if found:
                failures.append(f"{kwargs['method']} {kwargs['url']} {kwargs['params']} as "
                                f"{who}: shows {found}")
        return seen

    with Server(world.app) as url, httpx.Client(base_url=url, timeout=120) as client:
        before = read_all(client, writes=False)
        seed_bravo(world)
        after = read_all(client, writes=False)
        read_all(client, writes=True)
        # B's open episode, from A's side: A's engineer acknowledging it under A's id, and
        # the public link with a real signature (A's) on B's episode: 404, as if unknown.
        link = world.forged_link()
        assert client.get(f"/notify/ack/{EPISODES[A]}", params=link).status_code == 200
        answers = [client.post(f"/api/v1/institutions/{A}/notify/episodes/{EPISODES[B]}/ack",
                               headers=callers["engineer"])]
        answers += [client.request(m, f"/notify/ack/{EPISODES[B]}", params=link)
                    for m in ("GET", "POST")]
        for r in answers:
            assert r.status_code == 404, (r.request.method, r.request.url, r.text)
            assert not leaks(r.text), (r.request.method, r.request.url, r.text)
        # A's engineer muting B's device under A's id: refused, naming A's field only.
        for body in ({"edge": "edge-bravo", "device": "bravo-plug"},
                     {"edge": "edge-alpha", "device": "bravo-plug"}):
            r = client.post(f"/api/v1/institutions/{A}/notify/mutes",
                            headers=callers["engineer"],
                            json={**body, "minutes": 60, "reason": "isolation"})
            assert r.status_code == 422, r.text
            assert not leaks(r.text.replace(body["edge"], "").replace(body["device"], ""))
        now = world.notifier.clock.now()
        assert [(m["edge"], m["device"]) for iid in (A, B)
                for m in world.notifier.queue.mutes(iid, now)
                if m["device"] == "bravo-plug" or m["edge"] == "edge-bravo"] == [
            ("edge-bravo", "bravo-bin")]  # B's own mute only
    leak = world.notifier.queue.episode(EPISODES[B])
    assert leak is not None
    assert leak.acked_at is None
    mine = world.notifier.queue.episode(EPISODES[A])  # the writes reached A's own episode
    assert mine is not None
    assert (mine.acked_by or "").startswith("token:")
    assert any(v.startswith("200") and "alpha" in v for v in before.values())
    for key, answer in after.items():
        if answer != before[key] and key[0] != "GET /metrics":
            failures.append(f"{' '.join(key)}: changed once B's data was stored")
    assert not failures, "\n".join(dict.fromkeys(failures))



def test_district_view_shows_a_scoped_token_its_own_institution_only(world: World) -> None:
    """GET /api/v1/district answers an institution's token with that institution's row
    alone, ranked 1 among itself (a rank among all would tell it how B does); a token of
    every institution gets every institution's row."""
    seed_bravo(world)
    scoped = {role: {"Authorization": f"Bearer {world.auth.issue('a', role, [A])[1]}"}
              for role in Role}
    everyone = {"Authorization": f"Bearer {world.auth.issue('bureau', Role.ADMIN, None)[1]}"}
    with Server(world.app) as url, httpx.Client(base_url=url, timeout=120) as client:
        for role, auth in scoped.items():
            for sort in ("score", "kgce_per_m2", "open_alarms"):
                r = client.get("/api/v1/district", params={"sort": sort}, headers=auth)
                assert r.status_code == 200, (role, r.text)
                body = r.json()
                assert [(row["institution"], row["rank"]) for row in body["institutions"]] == [
                    (A, 1)], (role, sort)
                assert body["count"] == 1
                assert not leaks(r.text), (role, sort, leaks(r.text))
        r = client.get("/api/v1/district", params={"region": "bravo"}, headers=scoped[Role.ADMIN])
        assert r.json()["institutions"] == []
        r = client.get("/api/v1/district", headers=everyone)
        assert sorted(row["institution"] for row in r.json()["institutions"]) == sorted(
            i.institution.id for i in EVERY)
