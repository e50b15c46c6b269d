"""One working calendar: the institution's `working_hours` (per zone where set) is what the
central's after-hours share, the dashboard and the edge's rules calendar all use. Changing
it once moves every figure."""

from __future__ import annotations

import copy
from datetime import date, time
from pathlib import Path
from typing import Any

import pytest
import yaml

from central.cli import main as cli_main
from central.dashboard import build_dashboard
from central.errors import ConfigError
from central.institution import InstitutionConfig, parse_institution
from central.ledger import SqliteLedger
from central.metrics import period_metrics
from central.profile import load_profile
from central.reader import TenantReader
from central.store import Store
from central.workinghours import edge_calendar, hours_for
from edge.rules.calendar import CalendarConfig
from tests.unit.central.central_helpers import INSTITUTION, batch, interval, local_ms, local_ts

FRIDAY = date(2025, 3, 7)  # a working day
QUARTER_MS = 900_000


def institution(hours: dict[str, Any] | None) -> InstitutionConfig:
    doc = copy.deepcopy(INSTITUTION)
    if hours is not None:
        doc["working_hours"] = hours
    doc["meters"][0]["zone"] = "lab"  # meter-a; meter-b has no zone
    return parse_institution(doc)


def figures(tmp_path: Path, inst: InstitutionConfig) -> tuple[float | None, float | None,
                                                               tuple[time, time] | None,
                                                               tuple[time, time] | None]:
    """(after-hours share of the day, the dashboard's, the edge's hours for that day, the
    edge's hours for zone lab), on a day when meter-a and meter-b each use 1 kWh every
    15 minutes around the clock."""
    t0 = local_ms(2025, 3, 7)
    path = tmp_path / f"s-{len(list(tmp_path.iterdir()))}.sqlite"
    ledger = SqliteLedger(tmp_path / f"{path.stem}.ledger.sqlite")
    with Store(path) as store:
        for stream, device in (("edge-1", "meter-a"), ("edge-2", "meter-b")):
            store.store_batch(batch([interval(i + 1, start=t0 + i * QUARTER_MS, device=device)
                                     for i in range(96)], after=0, edge=stream), "s")
        profile = load_profile("national")
        pm = period_metrics(store, ledger, inst, profile, start=local_ts(2025, 3, 7),
                            end=local_ts(2025, 3, 8))
        # The dashboard at midnight after the 7th: its month so far is 1–7 March.
        dash = build_dashboard(TenantReader(store, inst), ledger, profile,
                               now=local_ts(2025, 3, 8))
    ledger.close()
    edge = CalendarConfig.model_validate(edge_calendar(inst)).build()
    assert dash.month.after_hours.working_hours == pm.after_hours.working_hours
    return (pm.after_hours.share, dash.month.after_hours.share, edge.hours_of(FRIDAY, None),
            edge.hours_of(FRIDAY, "lab"))


def test_one_change_moves_every_figure(tmp_path: Path) -> None:
    share, dash, edge, lab = figures(tmp_path, institution({"start": "08:00",
                                                            "end": "17:30"}))
    assert share == dash == pytest.approx(14.5 / 24)
    assert edge == lab == (time(8, 0), time(17, 30))

    share, dash, edge, lab = figures(tmp_path, institution({"start": "09:00",
                                                            "end": "17:00"}))
    assert share == dash == pytest.approx(16 / 24)
    assert edge == lab == (time(9, 0), time(17, 0))


def test_a_zone_keeps_its_own_hours_everywhere(tmp_path: Path) -> None:
    inst = institution({"start": "08:00", "end": "18:00",
                        "zones": {"lab": {"start": "08:00", "end": "22:00"}}})
    share, dash, edge, lab = figures(tmp_path, inst)
    # meter-a (zone lab) is after hours 10 h of 24, meter-b 14 h: (10 + 14) / 48.
    assert share == dash == pytest.approx(24 / 48)
    assert (edge, lab) == ((time(8, 0), time(18, 0)), (time(8, 0), time(22, 0)))
    assert hours_for(inst, "lab").label == "08:00–22:00"
    assert hours_for(inst, "elsewhere").label == "08:00–18:00"


def test_without_a_definition_the_policy_default_applies_everywhere(tmp_path: Path) -> None:
    share, dash, edge, lab = figures(tmp_path, institution(None))
    assert share == dash == pytest.approx(14 / 24)  # central/codes/policy.yaml 08:00–18:00
    assert edge == lab == (time(8, 0), time(18, 0))


def test_working_hours_must_end_after_they_start() -> None:
    with pytest.raises(ConfigError, match=r"working_hours.*end must be after"):
        institution({"start": "18:00", "end": "08:00"})
    with pytest.raises(ConfigError, match=r"zones\.lab"):
        institution({"start": "08:00", "end": "18:00",
                     "zones": {"lab": {"start": "22:00", "end": "22:00"}}})


def test_the_cli_prints_the_edge_calendar_the_edge_accepts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = copy.deepcopy(INSTITUTION)
    doc["working_hours"] = {"start": "08:00", "end": "17:30",
                            "zones": {"lab": {"start": "07:00", "end": "22:00"}}}
    doc["calendar"] = {"holidays": ["2025-07-07"], "workdays": ["2025-07-12"]}
    path = tmp_path / "institution.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    assert cli_main(["edge-calendar", "--config", str(path)]) == 0
    section = yaml.safe_load(capsys.readouterr().out)["calendar"]
    cal = CalendarConfig.model_validate(section).build()
    assert cal.hours_of(date(2025, 7, 8), None) == (time(8, 0), time(17, 30))
    assert cal.hours_of(date(2025, 7, 8), "lab") == (time(7, 0), time(22, 0))
    assert cal.hours_of(date(2025, 7, 7), None) is None  # the institution's day off
    assert cal.hours_of(date(2025, 7, 12), None) == (time(8, 0), time(17, 30))  # a Saturday
