"""A PostgreSQL central over a directory of five institutions, as `greenguard central` runs
it (real Mosquitto, real PostgreSQL, real HTTP): upgraded from a database that served one
institution, whose ledger entries stay that institution's, and then serving all five, each
writing and reading its own ledger rows through the API with tokens from the shared table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import yaml

from central import migrations
from central.auth import Authenticator, Role
from central.backend import open_tokens
from central.config import CentralSettings
from tests.conftest import Broker, free_port
from tests.contracts.pg import APP_PASSWORD, PgServer, postgres_server
from tests.integration.test_central_ingest import central
from tests.unit.central.central_helpers import TEST_SECRET

pytestmark = pytest.mark.integration

SCHOOLS = [f"school-{n}" for n in range(1, 6)]


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    with postgres_server() as server:
        yield server


def institution(iid: str) -> dict[str, object]:
    return {
        "institution": {"id": iid, "name": f"学校 {iid}", "type": "school"},
        "buildings": [{"id": "A", "name": "教学楼", "floor_area_m2": 5000}],
        "headcount": {"staff": 50, "students_daily_avg": 500},
        "targets": {2025: {"kgce_per_m2": 5, "kgce_per_person": 50, "water_m3_per_person": 40}},
        "meters": [{"edge": f"edge-{iid}", "device": "m1", "building": "A",
                    "energy": "electricity", "role": "main"}],
    }


def write(path: Path, iid: str) -> Path:
    path.write_text(yaml.safe_dump(institution(iid), allow_unicode=True), encoding="utf-8")
    return path


def clearance(iid: str) -> dict[str, object]:
    return {"ref": "clear-1", "time": "2025-07-01T10:00:00", "category": "other",
            "building": "A", "weight_kg": 12.5, "hauler": f"hauler of {iid}"}


async def test_a_postgres_central_serves_a_directory_of_institutions(
        tmp_path: Path, mosquitto: Broker, pg: PgServer) -> None:
    dsn = pg.dsn(pg.create_database("district"))
    with psycopg.connect(dsn, password=APP_PASSWORD, autocommit=True) as conn:
        migrations.apply(conn, "ledger", target=1)  # the single-institution schema, with a row
        conn.execute("INSERT INTO ledger_entries (kind, ref, lo, hi, data) VALUES "
                     "('clearance', 'old-1', 0, 0, '{}')")
    district = tmp_path / "district"
    district.mkdir()
    for iid in SCHOOLS:
        write(district / f"{iid}.yaml", iid)
    settings = CentralSettings(
        institution_config=write(tmp_path / "one.yaml", SCHOOLS[0]),
        database=tmp_path / "central.sqlite", mqtt_host=mosquitto.host,
        mqtt_port=mosquitto.port, mqtt_client_id="central-district", http_port=free_port(),
        auth_secret=TEST_SECRET, store="postgres", postgres_dsn=dsn,
        postgres_password=APP_PASSWORD)
    async with central(settings):  # the upgrade: started with the one institution it served
        pass
    settings = settings.model_copy(update={"institution_config": district,
                                           "http_port": free_port()})
    tokens = open_tokens(settings)
    try:
        _, raw = Authenticator(TEST_SECRET, tokens).issue("bureau", Role.ENGINEER)
    finally:
        tokens.close()
    auth = {"Authorization": f"Bearer {raw}"}
    async with central(settings), httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{settings.http_port}", headers=auth,
            timeout=60) as client:
        for iid in SCHOOLS:  # the same ref in every institution: five entries, not one
            r = await client.post(f"/api/v1/institutions/{iid}/ledger/clearance",
                                  json=[clearance(iid)])
            assert r.status_code == 200, r.text
            assert r.json()["inserted"] == 1
        for iid in SCHOOLS:
            r = await client.get(f"/api/v1/institutions/{iid}/waste", params={"year": 2025})
            assert r.status_code == 200, r.text
            haulers = {other for other in SCHOOLS if f"hauler of {other}" in r.text}
            assert haulers == {iid}
    with psycopg.connect(dsn, password=APP_PASSWORD, autocommit=True) as conn:
        rows = conn.execute("SELECT institution, ref FROM ledger_entries "
                            "ORDER BY 1, 2").fetchall()
    assert rows == [(SCHOOLS[0], "clear-1"), (SCHOOLS[0], "old-1"),
                    *[(iid, "clear-1") for iid in SCHOOLS[1:]]]
