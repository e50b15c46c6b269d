"""The report command on either backend: the same telemetry and ledger entries give the
same annual and ledger reports from SQLite and from PostgreSQL (chosen by GREENGUARD_STORE
and friends, the password from the environment)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from central.backend import open_ingest_store
from central.config import load_settings
from simulators.cli import main as greenguard
from tests.contracts.pg import APP_PASSWORD, PgServer
from tests.integration.test_central_reports import populate
from tests.unit.central.registry_helpers import SCHOOL

pytestmark = pytest.mark.integration


def run_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    cfg = tmp_path / "institution.yaml"
    # With a tariff: SQLite prices the hourly rollup, PostgreSQL (no rollup) the raw
    # intervals; both give the same cost (central/cost.py).
    priced = {**SCHOOL, "tariff": {"use": "cn-sample-general-ic"}}
    cfg.write_text(yaml.safe_dump(priced, allow_unicode=True), encoding="utf-8")
    common = ["--config", str(cfg), "--db", str(tmp_path / "central.sqlite")]
    store = open_ingest_store(load_settings(institution_config=cfg,
                                            database=tmp_path / "central.sqlite"))
    try:
        populate(store)  # type: ignore[arg-type]
    finally:
        store.close()
    fuel = tmp_path / "fuel.csv"
    fuel.write_text("ref,vehicle,day,litres,km\nf1,car-1,2025-02-01,200,2500\n")
    capsys.readouterr()
    assert greenguard(["report", "import", "fuel", "--file", str(fuel), *common]) == 0
    assert "1 inserted" in capsys.readouterr().out
    out: dict[str, object] = {}
    for report in ("annual", "ledger"):
        assert greenguard(["report", report, "--year", "2025", "--format", "json",
                           *common]) == 0
        out[report] = json.loads(capsys.readouterr().out)
    return out


def test_reports_are_the_same_from_sqlite_and_postgres(
        tmp_path: Path, pg_server: PgServer, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lite").mkdir()
    (tmp_path / "pg").mkdir()
    from_sqlite = run_reports(tmp_path / "lite", capsys)
    monkeypatch.setenv("GREENGUARD_STORE", "postgres")
    monkeypatch.setenv("GREENGUARD_POSTGRES_DSN", pg_server.dsn(pg_server.create_database()))
    monkeypatch.setenv("GREENGUARD_POSTGRES_PASSWORD", APP_PASSWORD)
    from_postgres = run_reports(tmp_path / "pg", capsys)
    assert not (tmp_path / "pg" / "central.sqlite").exists()  # nothing went to SQLite
    assert from_postgres == from_sqlite
    annual = from_sqlite["annual"]
    assert isinstance(annual, dict)
    [electricity] = [e for e in annual["period"]["energy_by_type"]
                     if e["energy"] == "electricity"]
    assert electricity["quantity"] == 10_000.0  # populate(): 3 × 2,000 + 1,000 + 3 × 1,000
    cost = annual["cost"]
    assert cost["configured"]
    assert cost["electricity"]["kwh"] == pytest.approx(10_000.0)
    assert cost["electricity"]["energy_yuan"] > 0
