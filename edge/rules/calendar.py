"""The institution's calendar as the rules see it: working days (the shared Chinese
calendar with 调休 and the operator's override file), working hours per institution and per
zone, school terms and vacations.

Pure: `CalendarConfig.build()` reads the override file once (at start-up, before any I/O to
devices); `InstitutionCalendar.at(now, zone)` answers from its arguments only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from edge.drivers.base import Strict
from edge.errors import ConfigError
from protocols.workcalendar import DayInfo, DaySource, Fallback, WorkingCalendar

_HOURS_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


def parse_hours(value: str) -> tuple[time, time]:
    """`"07:30-18:00"` → (07:30, 18:00). `24:00` may end a period."""
    m = _HOURS_RE.match(value)
    if m is None:
        raise ValueError(f"must look like 07:30-18:00, got {value!r}")
    h0, m0, h1, m1 = (int(g) for g in m.groups())
    if h1 == 24 and m1:
        raise ValueError(f"24:{m1:02d} is not a time, got {value!r}")
    start = time(h0, m0)
    end = time.max if h1 == 24 else time(h1, m1)
    if end <= start:
        raise ValueError(f"the end must be after the start, got {value!r}")
    return start, end


Hours = Annotated[str, Field(description="working hours, local time, e.g. 07:30-18:00")]


class Term(Strict):
    name: str
    start: date
    end: date  # inclusive

    @model_validator(mode="after")
    def _ordered(self) -> Term:
        if self.end < self.start:
            raise ValueError(f"term {self.name!r}: end {self.end} is before start {self.start}")
        return self


class ZoneCalendar(Strict):
    working_hours: Hours | None = None
    vacation_hours: Hours | None = None

    @field_validator("working_hours", "vacation_hours")
    @classmethod
    def _hours(cls, value: str | None) -> str | None:
        if value is not None:
            parse_hours(value)
        return value


class OverrideFile(Strict):
    """The operator's file: next year's 调休 before the `holidays` package knows it, the
    school's own days off."""

    workdays: list[date] = Field(default_factory=list)
    holidays: list[date] = Field(default_factory=list)


class CalendarConfig(Strict):
    timezone: str = "Asia/Shanghai"
    working_hours: Hours = "08:00-18:00"
    zones: dict[str, ZoneCalendar] = Field(default_factory=dict)
    terms: list[Term] = Field(
        default_factory=list,
        description="school terms; a working day outside every term is a vacation day")
    vacation_hours: Hours | None = Field(
        None, description="working hours on vacation days; none: the whole day is off")
    workdays: list[date] = Field(default_factory=list)
    holidays: list[date] = Field(default_factory=list)
    override_file: str | None = Field(
        None, description="YAML with workdays: and holidays: lists, relative to the config")
    unknown_year: Fallback = Field(
        Fallback.WEEKDAYS,
        description="what a day counts as in a year without an official schedule (2027 now)")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("working_hours", "vacation_hours")
    @classmethod
    def _hours(cls, value: str | None) -> str | None:
        if value is not None:
            parse_hours(value)
        return value

    @model_validator(mode="after")
    def _no_day_twice(self) -> CalendarConfig:
        both = set(self.workdays) & set(self.holidays)
        if both:
            days = ", ".join(sorted(d.isoformat() for d in both))
            raise ValueError(f"calendar: {days} listed as both a workday and a holiday")
        return self

    def build(self, base_dir: Path | None = None) -> InstitutionCalendar:
        """Read the override file (a clear `ConfigError` if it is missing or wrong)."""
        workdays, days_off = list(self.workdays), list(self.holidays)
        if self.override_file is not None:
            extra = load_override_file(Path(self.override_file) if base_dir is None
                                       else base_dir / self.override_file)
            workdays += extra.workdays
            days_off += extra.holidays
        return InstitutionCalendar(self, WorkingCalendar(
            workdays=workdays, holidays=days_off, fallback=self.unknown_year))


def load_override_file(path: Path) -> OverrideFile:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"calendar.override_file: cannot read {path}: {exc.strerror}") from None
    except (yaml.YAMLError, ValueError) as exc:  # PyYAML raises ValueError for 2026-13-01
        raise ConfigError(f"calendar.override_file: {path} is not valid YAML: {exc}") from None
    try:
        parsed = OverrideFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise ConfigError(f"calendar.override_file {path}: {where}: {first['msg']} "
                          f"(got {first.get('input')!r})") from None
    both = set(parsed.workdays) & set(parsed.holidays)
    if both:
        days = ", ".join(sorted(d.isoformat() for d in both))
        raise ConfigError(f"calendar.override_file {path}: {days} listed as both a workday "
                          "and a holiday")
    return parsed


@dataclass(frozen=True, slots=True)
class CalendarStatus:
    """Where `now` falls for one zone."""

    day: DayInfo
    vacation: bool
    working_time: bool
    hours: tuple[time, time] | None  # today's working hours, None on a day off
    after_hours_for_s: float | None  # seconds since today's working hours ended, if they did

    @property
    def known(self) -> bool:
        return self.day.known

    @property
    def fallback(self) -> bool:
        return self.day.source is DaySource.FALLBACK


class InstitutionCalendar:
    def __init__(self, config: CalendarConfig, days: WorkingCalendar) -> None:
        self.config = config
        self.days = days
        self.tz = ZoneInfo(config.timezone)

    def in_term(self, day: date) -> bool:
        if not self.config.terms:
            return True
        return any(t.start <= day <= t.end for t in self.config.terms)

    def hours_of(self, day: date, zone: str | None) -> tuple[time, time] | None:
        info = self.days.classify(day)
        if not info.working:
            return None
        z = self.config.zones.get(zone) if zone is not None else None
        text: str | None
        if self.in_term(day):
            text = (z.working_hours if z and z.working_hours else self.config.working_hours)
        else:
            text = (z.vacation_hours if z and z.vacation_hours else self.config.vacation_hours)
        return parse_hours(text) if text is not None else None

    def at(self, now: float, zone: str | None = None) -> CalendarStatus:
        local = datetime.fromtimestamp(now, self.tz)
        day = local.date()
        hours = self.hours_of(day, zone)
        clock = local.time()
        working = hours is not None and hours[0] <= clock < hours[1]
        after: float | None = None
        if hours is not None and clock >= hours[1]:
            end = datetime.combine(day, hours[1], self.tz)
            after = (local - end).total_seconds()
        elif not working:
            after = self._since_last_end(local)
        return CalendarStatus(self.days.classify(day), not self.in_term(day), working, hours,
                              after)

    def _since_last_end(self, local: datetime) -> float:
        """Seconds since the end of the last working period before `local` (scanning back
        at most 31 days; longer ago counts as a day)."""
        day = local.date()
        for back in range(1, 32):
            d = day - timedelta(days=back)
            hours = self.hours_of(d, None)
            if hours is not None:
                end = datetime.combine(d, hours[1], self.tz)
                return (local - end).total_seconds()
        return 86_400.0 * 31
