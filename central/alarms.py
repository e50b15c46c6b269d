"""Alarms raised and cleared by the edges (`alarm.<kind>` events with `data.state` raised or
cleared and `data.rule`). Pure: no I/O.

An alarm is identified by (edge, device, kind, rule, point): the edge raises it once and
clears it once, and a replayed event is stored once (events are unique by stream and seq),
so the last state of each identity in time order is its state now.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class AlarmEvent(_View):
    edge: str
    device: str | None
    ts: int  # ms
    name: str
    data: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.name.removeprefix("alarm.")

    @property
    def identity(self) -> tuple[str, str | None, str, str, str]:
        return (self.edge, self.device, self.kind, str(self.data.get("rule", "")),
                str(self.data.get("point", "")))


class OpenAlarm(_View):
    kind: str
    edge: str
    device: str | None
    rule: str
    point: str | None
    since: datetime
    age_s: float
    data: dict[str, Any]


class AlarmKindSummary(_View):
    kind: str
    raised: int  # raised events in the period
    cleared: int  # cleared events in the period
    open: int  # open at the end of the period


class AlarmView(_View):
    start: datetime
    end: datetime
    open: list[OpenAlarm]
    summary: list[AlarmKindSummary]
    open_leaks: list[OpenAlarm]
    unknown_state: int  # alarm events whose data.state is neither raised nor cleared


def alarm_view(events: Iterable[AlarmEvent], start_ms: int, end_ms: int, tz: ZoneInfo
               ) -> AlarmView:
    """Open alarms at `end_ms` and raised/cleared counts per kind in [start_ms, end_ms).
    `events` are every alarm event before `end_ms` (an alarm raised last year may still be
    open)."""
    state: dict[tuple[str, str | None, str, str, str], AlarmEvent] = {}
    raised: dict[str, int] = {}
    cleared: dict[str, int] = {}
    unknown = 0
    for ev in sorted(events, key=lambda e: e.ts):
        if ev.ts >= end_ms:
            continue
        s = ev.data.get("state")
        if s not in ("raised", "cleared"):
            unknown += 1
            continue
        if ev.ts >= start_ms:
            counter = raised if s == "raised" else cleared
            counter[ev.kind] = counter.get(ev.kind, 0) + 1
        if s == "raised":
            state.setdefault(ev.identity, ev)  # a repeated raise keeps the first time
        else:
            state.pop(ev.identity, None)
    open_ = [OpenAlarm(kind=ev.kind, edge=ev.edge, device=ev.device,
                       rule=str(ev.data.get("rule", "")),
                       point=str(ev.data["point"]) if "point" in ev.data else None,
                       since=datetime.fromtimestamp(ev.ts / 1000, tz),
                       age_s=(end_ms - ev.ts) / 1000, data=ev.data)
             for ev in sorted(state.values(), key=lambda e: (e.ts, e.identity))]
    kinds = sorted(set(raised) | set(cleared) | {a.kind for a in open_})
    summary = [AlarmKindSummary(kind=k, raised=raised.get(k, 0), cleared=cleared.get(k, 0),
                                open=sum(1 for a in open_ if a.kind == k)) for k in kinds]
    return AlarmView(start=datetime.fromtimestamp(start_ms / 1000, tz),
                     end=datetime.fromtimestamp(end_ms / 1000, tz), open=open_,
                     summary=summary, open_leaks=[a for a in open_ if a.kind == "leak"],
                     unknown_state=unknown)
