"""The dashboard's JSON (central/dashboard.py) over a populated store on a frozen clock:
every figure checked against a hand computation or the endpoint that owns it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from central.alarms import AlarmEvent, alarm_states
from central.api import Tenant, create_app
from central.dashboard import step_sum
from central.entries import add_entries
from central.ingest import IngestStats
from central.institution import InstitutionConfig, parse_institution
from central.ledger import EntryKind, SqliteLedger
from central.profile import CoefficientProfile, load_profile
from central.store import Store
from protocols.clock import VirtualClock
from protocols.wire import Birth, Event, Severity, StreamId
from tests.unit.central.central_helpers import (
    INSTITUTION,
    authenticator,
    batch,
    bearer,
    interval,
    local_ms,
    local_ts,
    sample,
)

# Thursday 3 July 2025, 15:00 Beijing time: a working day, working hours 08:30–17:30.
NOW = local_ts(2025, 7, 3, 15, 0)
NOW_MS = int(NOW * 1000)
MIN = 60_000

DASHBOARD_INSTITUTION: dict[str, Any] = {
    **INSTITUTION,
    "ac_units": [{"edge": "edge-1", "device": "ac-1", "building": "A"}],
    "working_hours": {"start": "08:30", "end": "17:30"},
    "bins": [{"edge": "edge-1", "device": "bin-1", "building": "A", "category": "recyclable",
              "capacity_l": 240},
             {"edge": "edge-1", "device": "bin-2", "building": "B", "category": "kitchen",
              "capacity_l": 120}],
}


def alarm(seq: int, kind: str, state: str, *, ts: int, device: str, **data: Any) -> Event:
    return Event(seq=seq, ts=ts, name=f"alarm.{kind}", severity=Severity.ALARM, device=device,
                 data={"state": state, "rule": f"{kind}-rule", **data})


def populate_dashboard(store: Store, ledger: SqliteLedger) -> None:
    """A day of a small school: main and 分项 meters, an AC unit that broke the 26 °C rule for
    a quarter of its cooling time, two bins, a leak that is still raised and a lights-on alarm
    that was cleared, one clearance."""
    jan, jul1 = local_ms(2025, 1, 1), local_ms(2025, 7, 1, 9, 0)
    night = local_ms(2025, 7, 2, 20, 0)  # after hours
    today = local_ms(2025, 7, 3, 9, 0)
    e1 = [
        interval(1, start=jan, quantity=5_000.0),
        interval(2, start=jul1, quantity=40.0),
        interval(3, start=night, quantity=10.0),
        interval(4, start=today, quantity=50.0),
        interval(5, start=today, quantity=12.0, device="meter-a-ac"),
        interval(6, start=jan, quantity=3_000.0, device="water-a", point="water_m3", unit="m3"),
        interval(7, start=today, quantity=2.5, device="water-a", point="water_m3", unit="m3"),
        # power: 10 kW half an hour ago, 12 kW two minutes ago
        sample(8, ts=NOW_MS - 30 * MIN, value=10_000.0),
        sample(9, ts=NOW_MS - 2 * MIN, value=12_000.0),
        # AC cooling 10:00–12:00, reported every 30 min (the policy's longest hold): at
        # 24 °C for the first half hour (non-compliant), then at 26 °C.
        *[sample(10 + i, ts=local_ms(2025, 7, 3, 10, 0) + i * 30 * MIN, device="ac-1",
                 point="mode", value="cool" if i < 4 else "off", unit="") for i in range(5)],
        *[sample(15 + i, ts=local_ms(2025, 7, 3, 10, 0) + i * 30 * MIN, device="ac-1",
                 point="setpoint_c", value=24.0 if i == 0 else 26.0, unit="°C")
          for i in range(5)],
        sample(20, ts=NOW_MS - 2 * MIN, device="bin-1", point="fill_pct", value=85.0,
               unit="%"),
        sample(21, ts=NOW_MS - 7 * 3_600_000, device="bin-2", point="fill_pct", value=20.0,
               unit="%"),
        alarm(22, "lights_on", "raised", ts=NOW_MS - 50 * MIN, device="plug-3"),
        alarm(23, "leak", "raised", ts=NOW_MS - 40 * MIN, device="water-a", point="water_m3",
              flow=0.4),
        alarm(24, "lights_on", "cleared", ts=NOW_MS - 20 * MIN, device="plug-3"),
        Event(seq=25, ts=NOW_MS - 5 * MIN, name="device_offline", severity=Severity.WARNING,
              device="meter-a", data={}),
        alarm(26, "bin_full", "raised", ts=NOW_MS - 31 * 86_400_000, device="bin-9",
              fill_pct=95, category="other", hazardous=False),  # a month ago, still open
    ]
    e2 = [
        interval(1, start=jan, quantity=3_000.0, device="meter-b"),
        interval(2, start=today, quantity=30.0, device="meter-b"),
        sample(3, ts=NOW_MS - 20_000, device="meter-b", value=8_000.0),
    ]
    store.store_batch(batch(e1, after=0), "site-1", now=NOW - 10)
    store.store_batch(batch(e2, after=0, edge="edge-2"), "site-1", now=NOW - 20)
    store.record_birth("site-1", Birth(StreamId("edge-1", 1), ts=NOW_MS, synced=True,
                                       software="0.1.0"), now=NOW - 30)
    add_entries(ledger, EntryKind.CLEARANCE, [
        {"ref": "c-1", "time": "2025-07-01T10:00:00+08:00", "category": "kitchen",
         "weight_kg": 120.5},
        {"ref": "c-2", "time": "2025-06-12T10:00:00+08:00", "category": "other",
         "weight_kg": 80.0},
    ], parse_institution(DASHBOARD_INSTITUTION), load_profile("national"))


@pytest.fixture
def institution() -> InstitutionConfig:
    return parse_institution(DASHBOARD_INSTITUTION)


@pytest.fixture
async def client(store: Store, institution: InstitutionConfig,
                 profile: CoefficientProfile) -> AsyncIterator[httpx.AsyncClient]:
    ledger = SqliteLedger(":memory:")
    populate_dashboard(store, ledger)
    stats = IngestStats(received=3, stored_records=25, connected=True)
    auth = authenticator()
    app = create_app(store, [Tenant(institution, profile, ledger)], VirtualClock(NOW), auth,
                     stats)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                 headers=bearer(auth, "viewer", ["demo-school"])) as c:
        yield c
    ledger.close()


@pytest.fixture
async def board(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/api/v1/institutions/demo-school/dashboard")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_compliance_and_today_are_the_overview_and_compliance_endpoints(
        client: httpx.AsyncClient, board: dict[str, Any]) -> None:
    compliance = (await client.get("/api/v1/institutions/demo-school/compliance")).json()
    overview = (await client.get("/api/v1/institutions/demo-school/overview")).json()
    assert board["compliance"] == compliance
    for key in ("power_w", "energy_kwh_today", "water_m3_today", "today", "now"):
        assert board[key] == overview[key], key
    assert board["energy_kwh_today"] == pytest.approx(80.0)  # 50 + 30; sub-meter not added
    assert board["power_w"] == pytest.approx(20_000.0)


async def test_buildings_today_and_month(client: httpx.AsyncClient,
                                         board: dict[str, Any]) -> None:
    a, b = board["buildings"]
    assert (a["id"], a["energy_kwh_today"], a["energy_kwh_month"]) == ("A", 50.0, 100.0)
    assert (b["id"], b["energy_kwh_today"], b["energy_kwh_month"]) == ("B", 30.0, 30.0)
    assert a["water_m3_month"] == pytest.approx(2.5)
    metrics = (await client.get("/api/v1/institutions/demo-school/metrics", params={
        "start": "2025-07-01", "end": "2025-08-01", "building": "A"})).json()
    assert a["energy_kwh_month"] == pytest.approx(metrics["electricity_kwh"])


async def test_month_items_ac_and_after_hours(client: httpx.AsyncClient,
                                              board: dict[str, Any]) -> None:
    month = board["month"]
    assert month["start"].startswith("2025-07-01T00:00:00")
    assert month["electricity_kwh"] == pytest.approx(130.0)
    items = {i["code"]: i for i in month["items"]}
    assert items["01B00"]["kwh"] == pytest.approx(12.0)
    assert items["01B00"]["share"] == pytest.approx(12.0 / 130.0)
    # 10:00–12:00 cooling: half an hour at 24 °C, 1.5 h at 26 °C
    assert month["ac"]["units"] == 1
    assert month["ac"]["judged_s"] == pytest.approx(2 * 3600)
    assert month["ac"]["share"] == pytest.approx(0.75)
    # The 20:00 interval is after hours; 09:00 intervals are inside 08:30–17:30.
    assert month["after_hours"]["after_hours_kwh"] == pytest.approx(10.0)
    assert month["after_hours"]["share"] == pytest.approx(10.0 / 130.0)
    metrics = (await client.get("/api/v1/institutions/demo-school/metrics", params={
        "start": "2025-07-01", "end": "2025-08-01"})).json()
    assert month["ac"] == metrics["ac"]
    assert month["after_hours"] == metrics["after_hours"]
    # The page reads only the figures it shows; they are `period_metrics`' own.
    for key in ("start", "end", "electricity_kwh", "items", "coverage"):
        assert month[key] == metrics[key], key


async def test_alarms_active_and_recent(board: dict[str, Any]) -> None:
    alarms = board["alarms"]
    # Open now, newest first: an alarm raised a month ago and never cleared is still open
    # (central/alarms.py: no look-back window).
    assert [(a["kind"], a["state"], a["device"]) for a in alarms["active"]] == [
        ("leak", "raised", "water-a"), ("bin_full", "raised", "bin-9")]
    assert alarms["active"][0]["data"]["flow"] == 0.4
    assert alarms["active"][0]["rule"] == "leak-rule"
    assert alarms["active"][0]["since"] == NOW_MS - 40 * MIN
    assert [(a["kind"], a["state"]) for a in alarms["recent"]] == [
        ("lights_on", "cleared"), ("leak", "raised"), ("lights_on", "raised"),
        ("bin_full", "raised")]
    assert {k["kind"]: (k["raised"], k["cleared"]) for k in alarms["today"]} == {
        "bin_full": (0, 0), "leak": (1, 0), "lights_on": (1, 1)}
    assert alarms["unknown_state"] == 0


async def test_waste_bins_and_clearances(board: dict[str, Any]) -> None:
    waste = board["waste"]
    bins = {b["device"]: b for b in waste["bins"]}
    assert bins["bin-1"]["fill_pct"] == 85.0
    assert bins["bin-1"]["stale"] is False
    assert bins["bin-2"]["stale"] is True  # 7 hours old: bin sensors report every few hours
    assert bins["bin-2"]["category"] == "kitchen"
    assert waste["clearances"] == 2
    assert waste["weight_kg"] == pytest.approx(200.5)
    assert [(m["month"], m["category"]) for m in waste["monthly"]] == [
        ("2025-06", "other"), ("2025-07", "kitchen")]


async def test_edge_health(board: dict[str, Any]) -> None:
    edges = {e["edge"]: e for e in board["edges"]}
    assert edges["edge-1"]["online"] is True
    assert edges["edge-1"]["clock_synced"] is True
    assert edges["edge-1"]["age_s"] == pytest.approx(30.0)
    assert edges["edge-1"]["outbox_depth"] is None  # not on the wire yet
    # No birth seen but heard from 20 s ago: online, its MQTT state unknown (one model with
    # the API's /edges, central/edgehealth.py).
    assert (edges["edge-2"]["online"], edges["edge-2"]["connected"]) == (True, None)
    assert edges["edge-2"]["clock_synced"] is None
    assert board["ingest"]["stored_records"] == 25


async def test_live_power_and_sparkline(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/institutions/demo-school/dashboard/live")
    assert r.status_code == 200
    live = r.json()
    assert live["power_w"] == pytest.approx(20_000.0)
    assert {b["id"]: b["power_w"] for b in live["buildings"]} == {"A": 12_000.0, "B": 8_000.0}
    series = live["series"]
    assert len(series) == 60
    assert series[-1]["ts"] == NOW_MS
    by_ts = {p["ts"]: p["power_w"] for p in series}
    # A: 10 kW from -30 min (fresh for 5 min), 12 kW from -2 min; B: 8 kW from -20 s.
    assert by_ts[NOW_MS - 31 * MIN] is None
    assert by_ts[NOW_MS - 28 * MIN] == 10_000.0
    assert by_ts[NOW_MS - 20 * MIN] is None  # A's reading is stale by then
    assert by_ts[NOW_MS - MIN] == 12_000.0
    assert by_ts[NOW_MS] == 20_000.0
    too_short = await client.get("/api/v1/institutions/demo-school/dashboard/live",
                                 params={"minutes": 1})
    assert too_short.status_code == 422


async def test_an_empty_institution_gives_honest_empty_sections(
        store: Store, profile: CoefficientProfile) -> None:
    auth = authenticator()
    app = create_app(store, [Tenant(parse_institution(INSTITUTION), profile)], VirtualClock(NOW),
                     auth)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                 headers=bearer(auth, "viewer", ["demo-school"])) as c:
        board = (await c.get("/api/v1/institutions/demo-school/dashboard")).json()
        live = (await c.get("/api/v1/institutions/demo-school/dashboard/live")).json()
    assert board["power_w"] is None
    assert board["alarms"] == {"active": [], "recent": [], "today": [], "unknown_state": 0}
    assert board["waste"]["bins"] == []
    assert board["waste"]["clearances"] == 0
    # The configured edges are listed, never connected.
    assert [(e["edge"], e["online"], e["connected"], e["last_seen"]) for e in board["edges"]
            ] == [("edge-1", False, None, None), ("edge-2", False, None, None)]
    assert board["month"]["ac"]["units"] == 0
    assert board["month"]["ac"]["share"] is None
    assert board["month"]["after_hours"]["share"] is None
    assert board["ingest"] is None
    assert all(p["power_w"] is None for p in live["series"])


async def test_a_malformed_alarm_payload_is_shown_not_fatal(
        store: Store, profile: CoefficientProfile) -> None:
    store.store_batch(batch([
        Event(seq=1, ts=NOW_MS, name="alarm.bin_full", severity=Severity.ALARM, device="b",
              data={"state": 7, "rule": ["x"], "fill_pct": "full"}),
    ], after=0), "site-1", now=NOW)
    auth = authenticator()
    app = create_app(store, [Tenant(parse_institution(INSTITUTION), profile)], VirtualClock(NOW),
                     auth)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                 headers=bearer(auth, "viewer", ["demo-school"])) as c:
        board = (await c.get("/api/v1/institutions/demo-school/dashboard")).json()
    # Shown among the recent events, counted as of unknown state, never guessed a raise.
    assert board["alarms"]["active"] == []
    (a,) = board["alarms"]["recent"]
    assert (a["kind"], a["state"], a["rule"]) == ("bin_full", "unknown", None)
    assert board["alarms"]["unknown_state"] == 1


def test_step_sum_holds_each_value_until_it_is_too_old() -> None:
    a = [(0, 1.0), (10, 2.0)]
    b = [(5, 10.0)]
    assert step_sum([a, b], [-1, 0, 5, 9, 10, 14, 16, 30], max_age_ms=5) == [
        None, 1.0, 11.0, 10.0, 12.0, 2.0, None, None]
    assert step_sum([], [0, 1], max_age_ms=5) == [None, None]


def test_alarm_state_keeps_the_newest_event_per_alarm() -> None:
    def ev(kind: str, state: str, device: str, ts: int) -> AlarmEvent:
        return AlarmEvent(name=f"alarm.{kind}", edge="e", device=device, ts=ts,
                          data={"state": state, "rule": "r"}, severity="alarm")

    events = [ev("leak", "cleared", "w1", 5), ev("leak", "raised", "w2", 4),
              ev("leak", "raised", "w1", 3), ev("bin_full", "raised", "w1", 2)]
    assert [(a.kind, a.device) for a in alarm_states(events, 10) if a.state == "raised"] == [
        ("bin_full", "w1"), ("leak", "w2")]
