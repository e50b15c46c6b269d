"""Alarms raised and cleared by the edges: the one read model every route, the built-in page
and the reports use.

An alarm event is an `alarm.<kind>` event whose `data.state` is `raised` or `cleared`, with
`data.rule` and optionally `data.point`. The rules, written down once:

- **Identity**: (edge, device, kind, rule, point). The edge raises an alarm once and clears it
  once; a replayed event is stored once (events are unique by stream and seq).
- **State**: events in time order (ts, then the stream's order); the last raised/cleared
  event of an identity decides. A repeated raise keeps the first raise's time and data:
  `since` is when the alarm opened (or when it was cleared).
- **Unknown states**: an alarm event whose state is neither raised nor cleared (or whose
  data is not a JSON object) changes nothing; it is counted as `unknown_state` and listed
  among the recent events, never guessed to be a raise.
- **Window**: every alarm event before the moment asked about. An alarm raised last year
  and never cleared is open now; there is no look-back limit that would forget it.

Reads go through a tenant-bound reader (`central.reader.TenantReader`), so the events are
those of one institution's edges. The fold itself is pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import computed_field

from central.storeport import StoreReader, event_data
from central.view import View

__all__ = ["AlarmEvent", "AlarmKindSummary", "AlarmState", "AlarmView", "OpenAlarm",
           "alarm_states", "alarm_view", "read_alarm_events", "recent_alarm_events"]

PREFIX = "alarm."
Identity = tuple[str, str | None, str, str, str]



class AlarmEvent(View):
    """One stored alarm event."""

    edge: str
    device: str | None
    ts: int  # ms, the edge's clock
    name: str
    data: dict[str, Any]
    severity: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def kind(self) -> str:
        return self.name.removeprefix(PREFIX)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def state(self) -> Literal["raised", "cleared", "unknown"]:
        s = self.data.get("state")
        return s if s in ("raised", "cleared") else "unknown"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rule(self) -> str | None:
        r = self.data.get("rule")
        return r if isinstance(r, str) else None

    @property
    def point(self) -> str | None:
        return str(self.data["point"]) if "point" in self.data else None

    @property
    def identity(self) -> Identity:
        return (self.edge, self.device, self.kind, str(self.data.get("rule", "")),
                str(self.data.get("point", "")))


class AlarmState(View):
    """The current state of one alarm (one identity)."""

    kind: str  # leak, lights_on, bin_full, …: the name after "alarm."
    name: str  # alarm.<kind>
    edge: str
    device: str | None
    rule: str | None
    point: str | None
    state: Literal["raised", "cleared"]
    since: int  # ms: the first raise of an open alarm, or the clear
    ts: int  # ms: the newest raised/cleared event of this alarm
    data: dict[str, Any]  # of the event `since` names


class OpenAlarm(View):
    kind: str
    edge: str
    device: str | None
    rule: str
    point: str | None
    since: datetime
    age_s: float
    data: dict[str, Any]


class AlarmKindSummary(View):
    kind: str
    raised: int  # raised events in the period
    cleared: int  # cleared events in the period
    open: int  # open at the end of the period


class AlarmView(View):
    start: datetime
    end: datetime
    open: list[OpenAlarm]
    summary: list[AlarmKindSummary]
    open_leaks: list[OpenAlarm]
    unknown_state: int  # alarm events whose data.state is neither raised nor cleared


def _event(edge: str, device: str | None, ts: int, name: str, raw: str,
           severity: str | None = None) -> AlarmEvent:
    data = event_data(raw)
    return AlarmEvent(edge=edge, device=device, ts=ts, name=name, severity=severity,
                      data=data if data is not None else {"raw": raw})


def read_alarm_events(reader: StoreReader, until_ms: int) -> list[AlarmEvent]:
    """Every alarm event before `until_ms` the reader may see, in time order."""
    return [_event(e, d, ts, n, raw) for e, d, ts, n, raw in reader.alarm_events(until_ms)]


def recent_alarm_events(reader: StoreReader, until_ms: int, limit: int) -> list[AlarmEvent]:
    """The newest `limit` alarm events before `until_ms`, newest first, with severity."""
    return [_event(ev.edge, ev.device, ev.ts, ev.name, ev.data, ev.severity)
            for ev in reader.events(None, prefix=PREFIX, end_ms=until_ms, limit=limit)]


def _fold(events: Iterable[AlarmEvent], end_ms: int
          ) -> tuple[dict[Identity, AlarmState], list[AlarmEvent]]:
    """The state of every identity at `end_ms`, in order of first appearance, and the
    events in time order (unknown states included)."""
    states: dict[Identity, AlarmState] = {}
    ordered = sorted((e for e in events if e.ts < end_ms), key=lambda e: e.ts)
    for ev in ordered:
        state = ev.state
        if state == "unknown":
            continue
        current = states.get(ev.identity)
        if state == "raised" and current is not None and current.state == "raised":
            states[ev.identity] = current.model_copy(update={"ts": ev.ts})
            continue
        states[ev.identity] = AlarmState(
            kind=ev.kind, name=ev.name, edge=ev.edge, device=ev.device, rule=ev.rule,
            point=ev.point, state=state, since=ev.ts, ts=ev.ts, data=ev.data)
    return states, ordered


def alarm_states(events: Iterable[AlarmEvent], end_ms: int) -> list[AlarmState]:
    """Every alarm's state at `end_ms`, in order of first appearance."""
    return list(_fold(events, end_ms)[0].values())


def alarm_view(events: Iterable[AlarmEvent], start_ms: int, end_ms: int, tz: ZoneInfo
               ) -> AlarmView:
    """Open alarms at `end_ms` and raised/cleared counts per kind in [start_ms, end_ms).
    `events` are every alarm event before `end_ms` (an alarm raised last year may still be
    open)."""
    states, ordered = _fold(events, end_ms)
    raised: dict[str, int] = {}
    cleared: dict[str, int] = {}
    unknown = 0
    for ev in ordered:
        if ev.state == "unknown":
            unknown += 1
        elif ev.ts >= start_ms:
            counter = raised if ev.state == "raised" else cleared
            counter[ev.kind] = counter.get(ev.kind, 0) + 1
    open_states = sorted(((i, s) for i, s in states.items() if s.state == "raised"),
                         key=lambda pair: (pair[1].since, pair[0]))
    open_ = [OpenAlarm(kind=s.kind, edge=s.edge, device=s.device, rule=identity[3],
                       point=s.point, since=datetime.fromtimestamp(s.since / 1000, tz),
                       age_s=(end_ms - s.since) / 1000, data=s.data)
             for identity, s in open_states]
    kinds = sorted(set(raised) | set(cleared) | {a.kind for a in open_})
    summary = [AlarmKindSummary(kind=k, raised=raised.get(k, 0), cleared=cleared.get(k, 0),
                                open=sum(1 for a in open_ if a.kind == k)) for k in kinds]
    return AlarmView(start=datetime.fromtimestamp(start_ms / 1000, tz),
                     end=datetime.fromtimestamp(end_ms / 1000, tz), open=open_,
                     summary=summary, open_leaks=[a for a in open_ if a.kind == "leak"],
                     unknown_state=unknown)
