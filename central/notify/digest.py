"""The daily digest for the energy liaison (节能联络员): yesterday's after-hours electricity by
building, the rooms whose air conditioners were left on after hours (longest first),
standby waste after hours, rule writes, and the alarms still open.

Rooms left on: each AC unit of the institution (not the exempt ones: data rooms, clinics …
run on purpose) is on while its `on_point` sample is true (without an `on_point`: while its
`mode` is not "off"); a sample holds until the next one, at most the policy's AC
`max_hold_s`. The time on outside the unit's working hours (`central.workinghours`, by its
zone; a whole non-working day of the institution's calendar is outside) is its after-hours
time; the room is the unit's `zone`, else its device id.

`digest_message` is pure. `DigestSource` is the port the notifier asks for the figures;
`MetricsDigestSource` answers it from the central's stores with the same `period_metrics`
the API and reports use, so the digest never disagrees with the dashboard. The notifier
enqueues one digest per institution, day and recipient (key `digest|iid|day|recipient`) in
the durable queue, at the configured local time, on working days unless told otherwise.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from central import codes
from central.compliance import ComplianceReport
from central.institution import AcUnit, InstitutionConfig, MeterKey
from central.ledger import Ledger
from central.metrics import compliance_for, period_metrics
from central.notify.channels import Message
from central.notify.config import KIND_ZH
from central.notify.queue import Episode
from central.period import Period
from central.profile import CoefficientProfile
from central.reader import scoped
from central.standby import WorkingTime
from central.storeport import StoreReader
from central.workcalendar import WorkingCalendar
from central.workinghours import hours_for

ROOMS_LISTED = 5  # the digest names at most this many rooms left on


@dataclass(frozen=True, slots=True)
class BuildingEnergy:
    name: str
    kwh: float
    after_hours_kwh: float


@dataclass(frozen=True, slots=True)
class RoomOn:
    """An AC unit on after working hours: where, which device, for how long."""

    building: str
    room: str
    edge: str
    device: str
    after_hours_s: float


@dataclass(frozen=True, slots=True)
class DigestFigures:
    day: dt.date
    buildings: Sequence[BuildingEnergy]
    standby_after_hours_kwh: float
    rule_writes: int
    rooms_on: Sequence[RoomOn] = ()  # longest after-hours time first


ON_WORDS = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}


def _is_on(value: float | int | bool | str, by_mode: bool) -> bool | None:
    """An `on` sample (bool, 0/1, "on"/"off"), or a mode sample when the unit has no on
    point (on unless "off"); None for a value that says neither."""
    if by_mode:
        return value.strip().lower() not in ("off", "") if isinstance(value, str) else None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value) if math.isfinite(value) else None
    return ON_WORDS.get(value.strip().lower())


def after_hours_on_s(samples: Sequence[tuple[int, float | int | bool | str]], start_ms: int,
                     end_ms: int, working: WorkingTime, *, max_hold_ms: int,
                     by_mode: bool = False) -> float:
    """Seconds of [start_ms, end_ms) outside working time during which the samples say
    the unit is on; a sample holds until the next one, at most `max_hold_ms` (a unit that
    stopped reporting is not counted on forever)."""
    ordered = sorted(samples, key=lambda s: s[0])
    total = 0
    for i, (ts, value) in enumerate(ordered):
        if not _is_on(value, by_mode):
            continue
        nxt = ordered[i + 1][0] if i + 1 < len(ordered) else end_ms
        lo, hi = max(ts, start_ms), min(nxt, ts + max_hold_ms, end_ms)
        total += working.outside_ms(lo, hi)
    return total / 1000


def rooms_left_on(reader: StoreReader, institution: InstitutionConfig, day: dt.date, *,
                  limit: int = ROOMS_LISTED) -> list[RoomOn]:
    """The AC units on after working hours on local `day`, longest first (at most
    `limit`), read through the institution's `TenantReader`."""
    reader = scoped(reader, institution)
    tz = institution.institution.tz
    start, end = Period.day(day, tz).bounds
    s_ms, e_ms = int(start * 1000), int(end * 1000)
    hold_ms = codes.policy().ac.max_hold_s * 1000
    calendar = WorkingCalendar(institution.calendar)
    names = {b.id: b.name for b in institution.buildings}
    out = []
    for a in institution.ac_units:
        if a.exempt:
            continue
        point = a.on_point or a.mode_point
        series = reader.sample_series(MeterKey(a.edge, a.device, point), s_ms - hold_ms, e_ms)
        working = WorkingTime(tz, calendar, hours_for(institution, a.zone).minutes)
        seconds = after_hours_on_s(series, s_ms, e_ms, working, max_hold_ms=hold_ms,
                                   by_mode=a.on_point is None)
        if seconds >= 60:
            out.append(_room_on(a, names, seconds))
    out.sort(key=lambda r: (-r.after_hours_s, r.building, r.room, r.device))
    return out[:limit]


def _room_on(a: AcUnit, names: Mapping[str, str], seconds: float) -> RoomOn:
    return RoomOn(building=names.get(a.building, a.building), room=a.zone or a.device,
                  edge=a.edge, device=a.device, after_hours_s=seconds)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} 小时"


class DigestSource(Protocol):
    def is_working_day(self, institution: str, day: dt.date) -> bool: ...

    def figures(self, institution: str, day: dt.date) -> DigestFigures: ...

    def compliance(self, institution: str, day: dt.date) -> ComplianceReport:
        """The weekly digest's figures: year to date up to local midnight of `day`, for the
        year of the day before (`central.metrics.compliance_for`)."""
        ...


def digest_message(*, institution: str, figures: DigestFigures, open_alarms: Sequence[Episode],
                   key: str, dashboard_url: str, tz: dt.tzinfo) -> Message:
    """The digest in Chinese: buildings by after-hours kWh (largest first), standby waste,
    rule writes, open alarms (oldest first, at most ten listed)."""
    lines = []
    total = sum(b.after_hours_kwh for b in figures.buildings)
    lines.append(f"非工作时间用电：{total:.1f} kWh")
    for b in sorted(figures.buildings, key=lambda b: -b.after_hours_kwh):
        share = f"（占 {b.after_hours_kwh / b.kwh:.0%}）" if b.kwh > 0 else ""
        lines.append(f"· {b.name}：{b.after_hours_kwh:.1f} / {b.kwh:.1f} kWh{share}")
    if figures.rooms_on:
        lines.append(f"非工作时间仍开着的空调（前 {len(figures.rooms_on)} 间）：")
        for r in figures.rooms_on:
            device = "" if r.room == r.device else f"（{r.device}）"
            lines.append(f"· {r.building} {r.room}{device}：{_hours(r.after_hours_s)}")
    else:
        lines.append("非工作时间仍开着的空调：无")
    lines.append(f"待机浪费（非工作时间）：{figures.standby_after_hours_kwh:.2f} kWh")
    lines.append(f"规则自动操作：{figures.rule_writes} 次")
    lines.append(f"未恢复告警：{len(open_alarms)} 条")
    for e in sorted(open_alarms, key=lambda e: e.raised_ms)[:10]:
        since = dt.datetime.fromtimestamp(e.raised_ms / 1000, tz)
        place = " ".join(p for p in (e.building, e.room) if p) or e.device
        ack = "，已确认" if e.acked_at is not None else ""
        lines.append(f"· {KIND_ZH.get(e.kind, e.kind)} · {place}（{since:%m-%d %H:%M} 起{ack}）")
    return Message(key=key, title=f"【节能日报】{figures.day:%Y-%m-%d}", lines=tuple(lines),
                   link=f"{dashboard_url.rstrip('/')}/#{institution}", severity="info",
                   data={"institution": institution, "day": figures.day.isoformat(),
                         "after_hours_kwh": total, "rule_writes": figures.rule_writes,
                         "rooms_on": [{"building": r.building, "room": r.room,
                                       "edge": r.edge, "device": r.device,
                                       "after_hours_s": r.after_hours_s}
                                      for r in figures.rooms_on],
                         "open_alarms": len(open_alarms)})


@dataclass(frozen=True, slots=True)
class DigestTenant:
    config: InstitutionConfig
    profile: CoefficientProfile
    ledger: Ledger | None


class MetricsDigestSource:
    """Figures from the stores; `open_store` yields a reader (a read-only SQLite `Store`
    per call, or the shared PostgreSQL reader)."""

    def __init__(self, open_store: Callable[[], AbstractContextManager[StoreReader]],
                 tenants: Mapping[str, DigestTenant]) -> None:
        self.open_store = open_store
        self.tenants = dict(tenants)

    def is_working_day(self, institution: str, day: dt.date) -> bool:
        tenant = self.tenants.get(institution)
        calendar = WorkingCalendar(tenant.config.calendar if tenant else None)
        return bool(calendar.is_working_day(day))

    def figures(self, institution: str, day: dt.date) -> DigestFigures:
        t = self.tenants[institution]
        cfg = t.config
        start, end = Period.day(day, cfg.institution.tz).bounds
        edges = sorted({m.edge for m in cfg.meters} | {a.edge for a in cfg.ac_units}
                       | {p.edge for p in cfg.plugs} | {b.edge for b in cfg.bins})
        with self.open_store() as source:
            store = scoped(source, cfg)
            whole = period_metrics(store, t.ledger, cfg, t.profile, start=start, end=end)
            buildings = []
            for b in cfg.buildings:
                pm = period_metrics(store, t.ledger, cfg, t.profile, start=start, end=end,
                                    building=b.id)
                buildings.append(BuildingEnergy(b.name, pm.after_hours.kwh,
                                                pm.after_hours.after_hours_kwh))
            writes = len(store.events(edges, names=["audit.write"],
                                      start_ms=int(start * 1000), end_ms=int(end * 1000),
                                      limit=100_000))
            rooms = rooms_left_on(store, cfg, day)
        return DigestFigures(day=day, buildings=buildings,
                             standby_after_hours_kwh=whole.standby.after_hours_standby_kwh,
                             rule_writes=writes, rooms_on=rooms)

    def compliance(self, institution: str, day: dt.date) -> ComplianceReport:
        t = self.tenants[institution]
        as_of = Period.day(day, t.config.institution.tz).bounds[0]
        year = (day - dt.timedelta(days=1)).year
        with self.open_store() as source:
            return compliance_for(scoped(source, t.config), t.config, t.profile,
                                  now=as_of, year=year, ledger=t.ledger)
