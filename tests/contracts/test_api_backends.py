"""The API over HTTP on either backend, its reader opened as the service opens it
(`open_reader`, read-only): events, audit, alarms, intervals, edge health, a command's status
and the dashboard answer the same on SQLite and on PostgreSQL (these routes once ran
SQLite-only SQL and were a 503 with `--store postgres`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest

from central.api import Tenant, create_app
from central.backend import open_ingest_store, open_reader
from central.commands import CommandBook, CommandService
from central.config import CentralSettings
from central.institution import parse_institution
from central.profile import load_profile
from central.storeport import IngestStore
from protocols.clock import VirtualClock
from protocols.wire import Birth, Command, Event, IntervalFlag, IntervalRecord, Severity, StreamId
from tests.contracts.pg import APP_PASSWORD, PgServer
from tests.unit.central.central_helpers import (
    INSTITUTION,
    authenticator,
    batch,
    bearer,
    local_ts,
    sample,
)

pytestmark = pytest.mark.integration

NOW = local_ts(2025, 7, 2, 12, 0)
T = int(NOW * 1000)
BASE = "/api/v1/institutions/demo-school"
SET = {"edge": "edge-1", "name": "override.set", "duration_s": 600,
       "args": {"device": "ac-101", "point": "setpoint_c", "value": 26, "reason": "exam"}}


@dataclass
class Recorder:
    sent: list[Command]

    def publish(self, site: str, edge: str, command: Command) -> None:
        self.sent.append(command)


def ev(seq: int, ts: int, name: str, data: dict[str, Any], device: str | None = "meter-a"
       ) -> Event:
    return Event(seq=seq, ts=ts, name=name, severity=Severity.WARNING, device=device, data=data)


def settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> CentralSettings:
    config = tmp_path / "institution.yaml"
    config.write_text("{}", encoding="utf-8")  # not read: the app gets the parsed config
    if backend == "sqlite":
        return CentralSettings(institution_config=config, database=tmp_path / "central.sqlite")
    server: PgServer = request.getfixturevalue("pg_server")
    return CentralSettings(institution_config=config, database=tmp_path / "central.sqlite",
                           store="postgres", postgres_dsn=server.dsn(server.create_database()),
                           postgres_password=pydantic.SecretStr(APP_PASSWORD))


def seed(store: IngestStore) -> None:
    store.record_birth("school", Birth(StreamId("edge-1", 1), T - 600_000, True, "1.2"),
                       now=NOW - 600)
    store.store_batch(batch([
        sample(1, ts=T - 60_000),
        IntervalRecord(seq=2, device="meter-a", point="energy_import_kwh", start=T - 1_800_000,
                       duration_s=900, quantity=2.5, unit="kWh",
                       flags=frozenset({IntervalFlag.ESTIMATED})),
        IntervalRecord(seq=3, device="meter-a", point="energy_import_kwh", start=T - 900_000,
                       duration_s=900, quantity=1.5, unit="kWh"),
        ev(4, T - 500_000, "alarm.offline", {"state": "raised", "rule": "offline"}),
        ev(5, T - 400_000, "audit.write", {"point": "setpoint_c"}, device="ac-101"),
        ev(6, T - 300_000, "uplink.status", {"outbox_depth": 3}, device=None),
        ev(7, T - 200_000, "alarm.offline", {"state": "cleared", "rule": "offline"})],
        after=0), "school", now=NOW - 60)
    store.store_batch(batch([ev(1, T - 100_000, "alarm.standby", {"state": "raised"},
                                device="meter-b")], after=0, edge="edge-2"), "school",
                      now=NOW - 30)


@pytest.fixture(params=["sqlite", "postgres"])
async def client(request: pytest.FixtureRequest, tmp_path: Path
                 ) -> AsyncIterator[tuple[httpx.AsyncClient, IngestStore, Recorder]]:
    s = settings(str(request.param), tmp_path, request)
    writer = open_ingest_store(s)
    seed(writer)
    reader = open_reader(s)
    auth = authenticator()
    book = CommandBook(":memory:")
    recorder = Recorder([])
    app = create_app(reader, [Tenant(parse_institution(INSTITUTION), load_profile("national"))],
                     VirtualClock(NOW), auth, commands=CommandService(book, recorder),
                     metrics_edges=True)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://test",
                                     headers=bearer(auth, "engineer", ["demo-school"])) as c:
            yield c, writer, recorder
    finally:
        book.close()
        reader.close()
        writer.close()


async def get(c: httpx.AsyncClient, path: str, **params: Any) -> Any:
    r = await c.get(BASE + path, params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def test_event_interval_edge_and_command_reads(
        client: tuple[httpx.AsyncClient, IngestStore, Recorder]) -> None:
    c, writer, recorder = client
    names = [(e["edge"], e["seq"], e["name"]) for e in await get(c, "/events")]
    assert names == [("edge-2", 1, "alarm.standby"), ("edge-1", 7, "alarm.offline"),
                     ("edge-1", 6, "uplink.status"), ("edge-1", 5, "audit.write"),
                     ("edge-1", 4, "alarm.offline")]
    alarms = await get(c, "/events", name="alarm.*", since="2025-07-02T11:53:00",
                       until="2025-07-02T11:58:00")
    assert [(e["edge"], e["seq"]) for e in alarms] == [("edge-1", 7)]
    assert [e["seq"] for e in await get(c, "/events", name="audit.write")] == [5]
    assert [e["data"] for e in await get(c, "/audit")] == [{"point": "setpoint_c"}]
    assert [(a["edge"], a["name"], a["state"]) for a in await get(c, "/alarms", state="all")
            ] == [("edge-1", "alarm.offline", "cleared"), ("edge-2", "alarm.standby", "raised")]

    intervals = await get(c, "/intervals", start="2025-07-02T11:00:00",
                          end="2025-07-02T12:00:00")
    assert [(i["start"], i["quantity"], i["flags"]) for i in intervals] == [
        (T - 1_800_000, 2.5, ["estimated"]), (T - 900_000, 1.5, [])]
    assert await get(c, "/intervals", start="2025-07-02T11:00:00", end="2025-07-02T12:00:00",
                     edge="edge-2") == []

    edges = {e["edge"]: e for e in await get(c, "/edges")}
    assert {k: edges["edge-1"][k] for k in ("site", "connected", "online", "epoch",
                                            "software", "clock_synced", "outbox_depth")} == {
        "site": "school", "connected": True, "online": True, "epoch": 1, "software": "1.2",
        "clock_synced": True, "outbox_depth": 3}
    assert (edges["edge-2"]["site"], edges["edge-2"]["clock_synced"],
            edges["edge-2"]["outbox_depth"]) == ("school", None, None)

    r = await c.post(f"{BASE}/commands", json=SET)
    assert r.status_code == 202, r.text
    command_id = r.json()["id"]
    assert [cmd.id for cmd in recorder.sent] == [command_id]
    assert (await get(c, f"/commands/{command_id}"))["status"] == "pending"
    writer.store_batch(batch([ev(8, T + 1000, "command.result",
                                 {"id": command_id, "status": "applied", "detail": "ok"},
                                 device=None)], after=7), "school", now=NOW)
    view = await get(c, f"/commands/{command_id}")
    assert (view["status"], view["detail"], view["answered"]) == ("applied", "ok", T + 1000)

    dashboard = await get(c, "/dashboard")
    assert [(a["edge"], a["kind"]) for a in dashboard["alarms"]["active"]] == [
        ("edge-2", "standby")]
    assert {e["edge"]: e["clock_synced"] for e in dashboard["edges"]} == {
        "edge-1": True, "edge-2": None}


async def test_prometheus_edges_from_the_shared_reader(
        client: tuple[httpx.AsyncClient, IngestStore, Recorder]) -> None:
    """/metrics reads the edges through the reader it is given, PostgreSQL's included (it
    once tried to open that reader as a SQLite path and reported the store down)."""
    c, _writer, _recorder = client
    r = await c.get("/metrics")
    assert r.status_code == 200, r.text
    assert "greenguard_store_up 1.0" in r.text
    assert 'greenguard_edge_online{edge="edge-1",site="school"} 1.0' in r.text
