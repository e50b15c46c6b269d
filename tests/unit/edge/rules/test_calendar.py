"""The institution calendar: working hours per institution and zone, terms and vacations,
the operator's override file, and what `at()` reports after hours."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from edge.errors import ConfigError
from edge.rules.calendar import CalendarConfig, parse_hours

TZ = ZoneInfo("Asia/Shanghai")


def ts(*args: int) -> float:
    return datetime(*args, tzinfo=TZ).timestamp()  # type: ignore[misc]


def cal(**kwargs: object) -> CalendarConfig:
    return CalendarConfig.model_validate({"working_hours": "08:00-17:30", **kwargs})


@pytest.mark.parametrize(("when", "working", "after_s"), [
    ((2026, 6, 15, 7, 59), False, None),  # Monday before start: since Friday's end
    ((2026, 6, 15, 8, 0), True, None),
    ((2026, 6, 15, 17, 29), True, None),
    ((2026, 6, 15, 17, 30), False, 0.0),
    ((2026, 6, 15, 18, 0), False, 1800.0),
    ((2026, 6, 19, 10, 0), False, None),  # Dragon Boat Festival: a day off
    ((2026, 2, 14, 10, 0), True, None),  # Saturday make-up workday
    ((2026, 10, 1, 10, 0), False, None),  # National Day
])
def test_working_time(when: tuple[int, ...], working: bool, after_s: float | None) -> None:
    status = cal().build().at(ts(*when))
    assert status.working_time is working
    if after_s is not None:
        assert status.after_hours_for_s == after_s
    if not working:
        assert status.after_hours_for_s is not None
        assert status.after_hours_for_s >= 0


def test_day_off_counts_from_the_last_working_day() -> None:
    # Saturday 20 June 10:00; the last working period ended Thursday 18 June 17:30
    # (Friday 19 June is the Dragon Boat Festival).
    status = cal().build().at(ts(2026, 6, 20, 10, 0))
    assert status.after_hours_for_s == (6.5 + 24 + 10) * 3600


def test_2027_is_a_visible_fallback_state() -> None:
    c = cal(unknown_year="all_off").build()
    status = c.at(ts(2027, 3, 1, 10, 0))
    assert status.fallback
    assert not status.known
    assert not status.working_time
    assert cal().build().at(ts(2027, 3, 1, 10, 0)).working_time  # weekdays fallback
    assert cal().build().at(ts(2027, 3, 1, 10, 0)).fallback


def test_zones_have_their_own_hours() -> None:
    c = cal(zones={"lab": {"working_hours": "08:00-22:00"}}).build()
    assert not c.at(ts(2026, 6, 15, 20, 0)).working_time
    assert c.at(ts(2026, 6, 15, 20, 0), "lab").working_time
    assert not c.at(ts(2026, 6, 15, 20, 0), "301").working_time


def test_vacation_outside_terms() -> None:
    terms = [{"name": "spring", "start": "2026-03-02", "end": "2026-07-10"}]
    c = cal(terms=terms).build()
    assert c.at(ts(2026, 7, 10, 10, 0)).working_time
    summer = c.at(ts(2026, 7, 13, 10, 0))  # a Monday in the summer vacation: all off
    assert summer.vacation
    assert not summer.working_time
    staffed = cal(terms=terms, vacation_hours="09:00-12:00").build()
    assert staffed.at(ts(2026, 7, 13, 10, 0)).working_time
    assert not staffed.at(ts(2026, 7, 13, 13, 0)).working_time


def test_override_file(tmp_path: Path) -> None:
    (tmp_path / "days.yaml").write_text("workdays: [2027-02-06]\nholidays: [2026-06-15]\n")
    c = cal(override_file="days.yaml").build(tmp_path)
    assert c.at(ts(2027, 2, 6, 10, 0)).working_time  # a Saturday made a workday
    assert c.at(ts(2027, 2, 6, 10, 0)).known
    assert not c.at(ts(2026, 6, 15, 10, 0)).working_time


@pytest.mark.parametrize(("text", "message"), [
    ("workdays: [2026-13-01]\n", "month must be in 1..12"),
    ("workdays: [someday]\n", "workdays.0"),
    ("workdays: [2026-06-15]\nholidays: [2026-06-15]\n", "both a workday and a holiday"),
    ("workdays: [\n", "not valid YAML"),
    ("weekdays: []\n", "weekdays"),
])
def test_bad_override_file_names_the_problem(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "days.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        cal(override_file="days.yaml").build(tmp_path)


def test_missing_override_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        cal(override_file="nope.yaml").build(tmp_path)


@pytest.mark.parametrize(("value", "ok"), [
    ("07:30-18:00", True), ("00:00-24:00", True), ("18:00-07:30", False), ("7:30-18:00", False),
    ("08:00-24:30", False), ("25:00-26:00", False),
])
def test_hours_syntax(value: str, ok: bool) -> None:
    if ok:
        parse_hours(value)
    else:
        with pytest.raises(ValueError, match="got"):
            parse_hours(value)


def test_bad_config_fields() -> None:
    with pytest.raises(ValidationError, match="unknown time zone"):
        CalendarConfig.model_validate({"timezone": "Mars/Olympus"})
    with pytest.raises(ValidationError, match="both a workday and a holiday"):
        CalendarConfig.model_validate({"workdays": ["2026-06-15"], "holidays": ["2026-06-15"]})
    with pytest.raises(ValidationError, match="unknown_year"):
        CalendarConfig.model_validate({"unknown_year": "guess"})
