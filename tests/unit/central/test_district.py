"""The district view (central/district.py, GET /api/v1/district) over a real SQLite store:
three institutions, ranked by each figure, filtered by type and region, null figures last,
and a token of one institution seeing its own row only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from central.api import Tenant, create_app
from central.district import Member, RowCache, build_district
from central.institution import InstitutionConfig, parse_institution
from central.metrics import compliance_for
from central.profile import load_profile
from central.reader import TenantReader
from central.store import Store
from protocols.clock import VirtualClock
from protocols.wire import Birth, Event, Severity, StreamId
from tests.unit.central.central_helpers import (
    authenticator,
    batch,
    bearer,
    interval,
    local_ms,
    local_ts,
)

NOW = local_ts(2025, 3, 5, 12, 0)


def institution(iid: str, kind: str, district: str, region: str, area: float,
                staff: int) -> InstitutionConfig:
    return parse_institution({
        "institution": {"id": iid, "name": f"{district} {iid}", "type": kind,
                        "district": district, "region_code": region},
        "buildings": [{"id": "main", "name": "主楼", "floor_area_m2": area}],
        "headcount": {"staff": staff},
        "targets": {2025: {"kgce_per_m2": 10.0, "kgce_per_person": 500.0,
                           "water_m3_per_person": 20.0}},
        "meters": [{"edge": f"edge-{iid}", "device": "elec", "building": "main",
                    "energy": "electricity", "role": "main"},
                   {"edge": f"edge-{iid}", "device": "water", "building": "main",
                    "energy": "water", "role": "main"}],
        "projection": {"min_days": 1},
    })


# kWh per day: A uses as much as B on half B's floor area; C has sent nothing.
A = institution("alpha", "school", "鹿城区", "330302", 1000, 50)
B = institution("bravo", "agency", "瓯海区", "330304", 2000, 20)
C = institution("charlie", "school", "瑞安市", "330381", 1500, 40)


def populate(store: Store) -> None:
    for cfg in (A, B):
        edge = cfg.meters[0].edge
        records: list[Any] = []
        seq = 0
        for day in range(1, 5):
            for hour in range(8, 18):
                seq += 1
                records.append(interval(seq, device="elec", start=local_ms(2025, 3, day, hour),
                                        duration_s=3600, quantity=50.0))
            seq += 1
            records.append(interval(seq, device="water", point="water_m3", unit="m3",
                                    start=local_ms(2025, 3, day, 9), duration_s=3600,
                                    quantity=2.0))
        if cfg is A:
            seq += 1
            records.append(Event(seq, local_ms(2025, 3, 5, 11), "alarm.leak", Severity.ALARM,
                                 "water", {"state": "raised", "rule": "leak",
                                           "point": "flow_m3h"}))
            store.record_birth("alpha", Birth(StreamId(edge, 1), int(NOW * 1000), True, "t"),
                               now=NOW - 5)
        store.store_batch(batch(records, after=0, edge=edge), cfg.institution.id,
                          now=NOW - 5 if cfg is A else NOW - 86400)


@pytest.fixture
async def api(tmp_path: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Any, Store]]:
    store = Store(tmp_path / "central.sqlite")
    populate(store)
    profile = load_profile("national")
    auth = authenticator()
    app = create_app(store, [Tenant(c, profile) for c in (A, B, C)], VirtualClock(NOW), auth)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as client:
        yield client, auth, store
    store.close()


async def district(client: httpx.AsyncClient, headers: dict[str, str], **params: Any
                   ) -> dict[str, Any]:
    r = await client.get("/api/v1/district", params=params, headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_ranked_by_each_figure_nulls_last(api: Any) -> None:
    client, auth, store = api
    admin = bearer(auth, "viewer")
    view = await district(client, admin, sort="kgce_per_m2")
    rows = view["institutions"]
    assert [(r["institution"], r["rank"]) for r in rows] == [
        ("bravo", 1), ("alpha", 2), ("charlie", 3)]
    profile = load_profile("national")
    for r in rows[:2]:
        cfg = A if r["institution"] == "alpha" else B
        report = compliance_for(TenantReader(store, cfg), cfg, profile, now=NOW, year=2025)
        # The same figures as the institution's own compliance report, not a second formula.
        assert r["kgce_per_m2"] == pytest.approx(report.kgce_per_m2)
        assert r["kgce_per_person"] == pytest.approx(report.kgce_per_person)
        assert r["water_m3_per_person"] == pytest.approx(report.water_m3_per_person)
        assert r["score"] == report.score
        assert (r["days_with_data"], r["days"]) == (4, 64)  # 1 Jan – 5 Mar
        assert r["coverage"] == pytest.approx(4 / 64)
    charlie = rows[2]  # no data: null figures, never 0
    assert (charlie["kgce_per_m2"], charlie["kgce_per_person"], charlie["score"],
            charlie["energy_kgce"]) == (None, None, None, None)
    assert charlie["meters_reporting"] == 0
    # Per person the order turns: B has 20 energy users, A 50.
    view = await district(client, admin, sort="kgce_per_person")
    assert [r["institution"] for r in view["institutions"]] == ["alpha", "bravo", "charlie"]
    view = await district(client, admin, sort="coverage")
    assert [(r["institution"], r["coverage"]) for r in view["institutions"]] == [
        ("alpha", 4 / 64), ("bravo", 4 / 64), ("charlie", 0.0)]
    view = await district(client, admin, sort="name")
    assert [r["name"] for r in view["institutions"]] == sorted(
        r["name"] for r in view["institutions"])


async def test_alarms_and_edges_offline(api: Any) -> None:
    client, auth, _ = api
    rows = {r["institution"]: r for r in
            (await district(client, bearer(auth, "viewer"), sort="open_alarms"))["institutions"]}
    assert [(rows[i]["open_alarms"], rows[i]["edges"], rows[i]["edges_offline"])
            for i in ("alpha", "bravo", "charlie")] == [(1, 1, 0), (0, 1, 1), (0, 1, 1)]
    assert (rows["bravo"]["rank"], rows["alpha"]["rank"]) == (1, 3)  # fewest alarms first


async def test_filters_by_type_and_region(api: Any) -> None:
    client, auth, _ = api
    admin = bearer(auth, "viewer")

    async def ids(**params: Any) -> list[str]:
        return sorted(r["institution"] for r in
                      (await district(client, admin, **params))["institutions"])

    assert await ids(type="school") == ["alpha", "charlie"]
    assert await ids(type="agency") == ["bravo"]
    assert await ids(type="hospital") == []
    assert await ids(region="瓯海区") == ["bravo"]
    assert await ids(region="3303") == ["alpha", "bravo", "charlie"]  # the city's prefix
    assert await ids(region="33030") == ["alpha", "bravo"]  # its districts, not 瑞安市
    assert await ids(region="330381", type="school") == ["charlie"]
    r = await client.get("/api/v1/district", params={"sort": "kwh"}, headers=admin)
    assert r.status_code == 422
    assert "sort" in r.text


async def test_a_token_of_one_institution_sees_its_own_row_only(api: Any) -> None:
    client, auth, _ = api
    view = await district(client, bearer(auth, "viewer", ["bravo"]), sort="kgce_per_person")
    assert [(r["institution"], r["rank"]) for r in view["institutions"]] == [("bravo", 1)]
    assert view["count"] == 1
    r = await client.get("/api/v1/district")
    assert r.status_code == 401


def test_rows_are_kept_for_a_minute_then_recomputed(tmp_path: Any) -> None:
    store = Store(tmp_path / "central.sqlite")
    populate(store)
    profile = load_profile("national")
    members = [Member(TenantReader(store, c), profile, None) for c in (A, B, C)]
    cache = RowCache(ttl_s=60)

    def charlie(now: float) -> float | None:
        view = build_district(members, now=now, year=2025, row=cache.row)
        return next(r.energy_kgce for r in view.institutions if r.institution == "charlie")

    assert charlie(NOW) is None
    store.store_batch(batch([interval(1, device="elec", start=local_ms(2025, 3, 5, 9),
                                      duration_s=3600, quantity=100.0)],
                            after=0, edge="edge-charlie"), "charlie", now=NOW)
    assert charlie(NOW + 30) is None  # within the minute: the kept row
    assert (cache.hits, cache.misses) == (3, 3)
    assert charlie(NOW + 61) == pytest.approx(100.0 * 0.1229)  # then the new interval
    store.close()
