"""The tenant-bound reader: every read of the store port, asked for another institution's
edge, device or meter, answers as if nothing were stored; asked for its own, exactly what
the store answers. Also the alarm rules of central/alarms.py and `/metrics` without edges."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import httpx
import pytest

from central.admission import CENTRAL_EDGE
from central.alarms import AlarmEvent, alarm_states, alarm_view
from central.api import Tenant, create_app
from central.errors import ConfigError
from central.ingest import IngestStats
from central.institution import InstitutionConfig, MeterKey, parse_institution
from central.profile import CoefficientProfile
from central.reader import ScopeError, TenantReader, edges_of, scoped
from central.store import Store
from protocols.clock import VirtualClock
from protocols.wire import Birth, Event, Severity, StreamId
from tests.unit.central.central_helpers import (
    INSTITUTION,
    SHANGHAI,
    authenticator,
    batch,
    bearer,
    interval,
    local_ms,
    sample,
)

T = local_ms(2025, 7, 2, 10, 0)
OWN = MeterKey("edge-1", "meter-a", "energy_import_kwh")
OTHER = MeterKey("edge-9", "meter-x", "energy_import_kwh")


def other_institution() -> InstitutionConfig:
    doc = json.loads(json.dumps(INSTITUTION))
    doc["institution"]["id"] = "other-school"
    doc["meters"] = [{"edge": "edge-9", "device": "meter-x", "building": "A",
                      "energy": "electricity", "role": "main"}]
    return parse_institution(doc)


def fill(store: Store) -> None:
    for edge, device in (("edge-1", "meter-a"), ("edge-9", "meter-x")):
        store.record_birth(f"site-{edge}", Birth(StreamId(edge, 1), T, True, "1.0"), now=1.0)
        store.store_batch(batch([
            interval(1, start=T, quantity=2.0, device=device),
            sample(2, ts=T, device=device, value=500.0),
            Event(seq=3, ts=T, name="alarm.leak", severity=Severity.ALARM, device=device,
                  data={"state": "raised", "rule": "leak"}),
            Event(seq=4, ts=T + 1, name="uplink.status", severity=Severity.INFO, device=None,
                  data={"outbox_depth": 5}),
            Event(seq=5, ts=T + 2, name="command.result", severity=Severity.INFO, device=None,
                  data={"id": f"c-{edge}", "status": "applied"}),
        ], after=0, edge=edge), f"site-{edge}", now=2.0)


def test_edges_of_names_every_configured_edge() -> None:
    doc = json.loads(json.dumps(INSTITUTION))
    doc["bins"] = [{"edge": "edge-b", "device": "bin", "building": "A", "category": "other",
                    "capacity_l": 100}]
    doc["plugs"] = [{"edge": "edge-p", "device": "plug", "building": "A"}]
    doc["ac_units"] = [{"edge": "edge-a", "device": "ac", "building": "A"}]
    assert edges_of(parse_institution(doc)) == {"edge-1", "edge-2", "edge-a", "edge-b",
                                                "edge-p"}


def test_every_read_stays_inside_the_institution(store: Store,
                                                 institution: InstitutionConfig) -> None:
    fill(store)
    r = TenantReader(store, institution)
    s, e = T - 1, T + 3_600_000
    # Reads by meter key: the other institution's keys are absent or zero.
    assert r.interval_sums(s, e, [OWN, OTHER]) == {OWN: 2.0, OTHER: 0.0}
    assert r.interval_sums(s, e)[OWN] == 2.0
    assert OTHER not in r.interval_sums(s, e)
    assert r.period_sums(s, e, SHANGHAI, [OWN, OTHER]) == {OWN: 2.0, OTHER: 0.0}
    assert r.interval_rows(s, e, [OTHER]) == []
    assert r.interval_rows(s, e, [OWN]) == store.interval_rows(s, e, [OWN])
    assert r.first_start_of(s, e, [OTHER]) is None
    assert r.first_interval_start(s, e, [OTHER]) is None
    assert r.first_interval_start(s, e) == T
    assert r.hour_totals([OTHER], 0, 10**9) == {}
    assert r.daily_sums(date(2025, 7, 2), date(2025, 7, 2), SHANGHAI, [OTHER]) == {
        date(2025, 7, 2): {OTHER: 0.0}}
    power_x = MeterKey("edge-9", "meter-x", "power_w")
    assert r.sample_series(power_x, s, e) == []
    assert r.sample_series(OWN._replace(point="power_w"), s, e) == [(T, 500.0)]
    assert {k.edge for k in r.latest_samples()} == {"edge-1"}
    # Reads by edge: None means every edge of the institution, never of the store.
    assert {ev.edge for ev in r.events(None, limit=100)} == {"edge-1"}
    assert r.events(["edge-9"], limit=100) == []
    assert r.interval_records(["edge-9"], s, e, limit=10) == []
    assert [x.edge for x in r.interval_records(None, s, e, limit=10)] == ["edge-1"]
    assert r.latest_event_with("edge-9", "outbox_depth") is None
    assert r.latest_event_with("edge-1", "outbox_depth") == {"outbox_depth": 5}
    assert r.command_results("edge-9", ["c-edge-9"]) == []
    assert [c.id for c in r.command_results("edge-1", ["c-edge-1"])] == ["c-edge-1"]
    assert {x[0] for x in r.alarm_events(e)} == {"edge-1"}
    assert [x.edge for x in r.edges()] == ["edge-1"]
    assert r.watermark(StreamId("edge-9", 1)) == 0
    assert r.watermark(StreamId("edge-1", 1)) == 5
    assert r.pending_ranges(StreamId("edge-9", 1)) == []
    # The central's own diagnostics are nobody's to read through a tenant.
    assert r.dead_letters() == []
    with pytest.raises(ScopeError):
        r.counts()
    with pytest.raises(ScopeError):
        r.rows("events")


def test_scoped_wraps_a_store_and_refuses_a_reader_of_another_institution(
        store: Store, institution: InstitutionConfig) -> None:
    reader = scoped(store, institution)
    assert scoped(reader, institution) is reader
    with pytest.raises(ScopeError):
        scoped(reader, other_institution())


def alarm(ts: int, state: object, *, device: str = "w", point: str | None = None
          ) -> AlarmEvent:
    data: dict[str, object] = {"state": state, "rule": "leak"}
    if point is not None:
        data["point"] = point
    return AlarmEvent(edge="e", device=device, ts=ts, name="alarm.leak", data=data)


def test_alarm_rules_identity_repeat_unknown_and_window() -> None:
    events = [alarm(1, "raised"), alarm(2, "raised"),  # a repeat keeps the first raise
              alarm(3, "raised", point="flow"),  # another point: another alarm
              alarm(4, 7), alarm(5, None),  # unknown states change nothing
              alarm(6, "cleared", point="flow")]
    states = {(a.point, a.state): a.since for a in alarm_states(events, 100)}
    assert states == {(None, "raised"): 1, ("flow", "cleared"): 6}
    assert [a.ts for a in alarm_states(events, 100) if a.point is None] == [2]
    # As of ts 5 (exclusive) the flow alarm is still open; nothing forgets an old raise.
    assert {a.point for a in alarm_states(events, 5) if a.state == "raised"} == {None, "flow"}
    view = alarm_view(events, 0, 100, SHANGHAI)
    assert view.unknown_state == 2
    assert [(s.kind, s.raised, s.cleared, s.open) for s in view.summary] == [
        ("leak", 3, 1, 1)]
    assert [a.since.timestamp() for a in view.open_leaks] == [0.001]


async def test_metrics_shows_no_edges_unless_the_operator_enables_it(
        store: Store, institution: InstitutionConfig, profile: CoefficientProfile) -> None:
    fill(store)
    for enabled in (False, True):
        app = create_app(store, [Tenant(institution, profile),
                                 Tenant(other_institution(), profile)],
                         VirtualClock(T / 1000), authenticator(), metrics_edges=enabled)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://test") as c:
            text = (await c.get("/metrics")).text
        assert "greenguard_store_up 1.0" in text
        assert ("edge-9" in text) is enabled
        assert ('greenguard_edge_online{edge="edge-1",site="site-edge-1"} 1.0' in text) \
            is enabled


async def test_ingest_counters_only_to_a_token_that_sees_every_institution(
        store: Store, institution: InstitutionConfig, profile: CoefficientProfile) -> None:
    auth = authenticator()
    app = create_app(store, [Tenant(institution, profile), Tenant(other_institution(), profile)],
                     VirtualClock(T / 1000), auth, IngestStats(received=7))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as c:
        for scope, shown in ((["demo-school"], False),
                             (["demo-school", "other-school"], True), (None, True)):
            for path in ("dashboard", "overview"):
                r = await c.get(f"/api/v1/institutions/demo-school/{path}",
                                headers=bearer(auth, "viewer", scope))
                assert r.status_code == 200, r.text
                ingest = r.json()["ingest"]
                assert (ingest is not None and ingest["received"] == 7) is shown, (scope, path)


def test_an_edge_named_by_another_institutions_bin_is_refused(
        store: Store, institution: InstitutionConfig, profile: CoefficientProfile) -> None:
    doc = json.loads(json.dumps(INSTITUTION))
    doc["institution"]["id"] = "other-school"
    doc["meters"] = []
    doc["bins"] = [{"edge": "edge-1", "device": "bin-x", "building": "A", "category": "other",
                    "capacity_l": 100}]
    with pytest.raises(ConfigError, match="edge-1"):
        create_app(store, [Tenant(institution, profile), Tenant(parse_institution(doc), profile)],
                   VirtualClock(T / 1000), authenticator())


def test_keys_given_as_a_generator_are_read_once(store: Store,
                                                 institution: InstitutionConfig) -> None:
    fill(store)
    r = TenantReader(store, institution)
    s, e = T - 1, T + 3_600_000
    assert r.interval_sums(s, e, (k for k in (OWN, OTHER))) == {OWN: 2.0, OTHER: 0.0}
    assert r.period_sums(s, e, SHANGHAI, iter([OWN])) == {OWN: 2.0}


class _AlarmCountingStore(Store):
    """The real SQLite store, noting the edge of every alarm row its query returned."""

    returned: list[str]

    def alarm_events(self, until_ms: int, *, edges: Iterable[str] | None = None
                     ) -> list[tuple[str, str | None, int, str, str]]:
        rows = super().alarm_events(until_ms, edges=edges)
        self.returned.extend(row[0] for row in rows)
        return rows


def test_alarm_events_are_filtered_by_the_stores_query(
        db_path: Path, institution: InstitutionConfig) -> None:
    """The store is asked for the institution's edges and the central's own: what it
    returns is this institution's alarms, not the district's (same answer as before)."""
    store = _AlarmCountingStore(db_path)
    store.returned = []
    try:
        fill(store)
        foreign = Event(seq=1, ts=T + 5, name="alarm.foreign_edge", severity=Severity.ALARM,
                        device=None, data={"state": "raised", "edge": "edge-x"})
        store.store_records(StreamId(CENTRAL_EDGE, 0), 0, 1, [foreign], site="site-x",
                            now=3.0)
        got = TenantReader(store, institution).alarm_events(T + 10)
        assert [(e, n) for e, _, _, n, _ in got] == [("edge-1", "alarm.leak"),
                                                     (CENTRAL_EDGE, "alarm.foreign_edge")]
        assert store.returned == ["edge-1", CENTRAL_EDGE]
        store.returned.clear()
        everything = store.alarm_events(T + 10)
        assert [row for row in everything if row[0] != "edge-9"] == got
        store.returned.clear()
        reader = TenantReader(store, other_institution())
        assert [e for e, *_ in reader.alarm_events(T + 10, edges=["edge-9", "edge-1"])] == [
            "edge-9"]
        assert reader.alarm_events(T + 10, edges=["edge-1"]) == []
        assert [e for e, *_ in reader.alarm_events(T + 10, edges=[CENTRAL_EDGE])] == [
            CENTRAL_EDGE]
        assert "edge-1" not in store.returned
    finally:
        store.close()
