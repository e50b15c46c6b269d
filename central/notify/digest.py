"""The daily digest for the energy liaison (节能联络员): yesterday's after-hours electricity by
building, standby waste after hours, rule writes, and the alarms still open.

`digest_message` is pure. `DigestSource` is the port the notifier asks for the figures;
`MetricsDigestSource` answers it from the central's stores with the same `period_metrics`
the API and reports use, so the digest never disagrees with the dashboard. The notifier
enqueues one digest per institution, day and recipient (key `digest|iid|day|recipient`) in
the durable queue, at the configured local time, on working days unless told otherwise.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from central.institution import InstitutionConfig
from central.ledger import Ledger
from central.metrics import period_metrics
from central.notify.channels import Message
from central.notify.config import KIND_ZH
from central.notify.queue import Episode
from central.period import Period
from central.profile import CoefficientProfile
from central.storeport import StoreReader
from central.workcalendar import WorkingCalendar


@dataclass(frozen=True, slots=True)
class BuildingEnergy:
    name: str
    kwh: float
    after_hours_kwh: float


@dataclass(frozen=True, slots=True)
class DigestFigures:
    day: dt.date
    buildings: Sequence[BuildingEnergy]
    standby_after_hours_kwh: float
    rule_writes: int


class DigestSource(Protocol):
    def is_working_day(self, institution: str, day: dt.date) -> bool: ...

    def figures(self, institution: str, day: dt.date) -> DigestFigures: ...


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
        with self.open_store() as store:
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
        return DigestFigures(day=day, buildings=buildings,
                             standby_after_hours_kwh=whole.standby.after_hours_standby_kwh,
                             rule_writes=writes)
