"""Alarm events in, messages out: the life of an alarm and the delivery loop.

    raised ──► notified (stage 0) ──► escalated (stage n, if not acknowledged in time)
      │            │  reminders every `repeat_every_min`, at most `max_reminders`
      │            ▼
      │       acknowledged (API, dashboard, signed link) ─ no more escalations or reminders
      ▼
    cleared ─► an all-clear to everyone notified, after `flap_window_s` without a new raise

- One episode per alarm identity (institution, edge, device, kind, rule, point) and raise
  time; a repeated raise of an open alarm and a replayed event add nothing (dedup). A raise
  within `flap_window_s` of the clear reopens the same episode (flapping: no new message,
  and the pending all-clear is cancelled).
- Routing: the first route of the institution whose kinds, severities, buildings and hours
  match. Quiet hours hold a message until they end, except the configured kinds and
  severities (a leak always goes out). A muted device's alarms are recorded, not sent.
- Delivery: `deliver_due` sends what is due, records every attempt, retries with
  exponential backoff (deterministic jitter per key) and gives up after `give_up_after_h`.

Everything reads time from the injected `Clock`, so tests run on a virtual clock.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import logging
import threading
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from central.errors import CentralError
from central.notify.channels import Answer, Channel, Message, Outcome
from central.notify.config import (
    KIND_SEVERITY,
    KIND_ZH,
    InstitutionRouting,
    NotifyConfig,
    Route,
)
from central.notify.digest import DigestSource, digest_message
from central.notify.queue import Delivery, Episode, NotifyQueue
from central.notify.weekly import week_label, weekly_message
from protocols.clock import Clock

log = logging.getLogger(__name__)

SEVERITY_ZH = {"critical": "紧急", "major": "重要", "minor": "一般", "info": "提示"}
WIRE_SEVERITY = {"alarm": "critical", "warning": "minor", "info": "info"}


class NotifyError(CentralError):
    """An acknowledgement or mute refers to something that does not exist."""


@dataclass(frozen=True, slots=True)
class AlarmSignal:
    """The narrow interface: one stored `alarm.<kind>` event, with where it happened."""

    institution: str
    edge: str
    device: str
    kind: str
    state: str  # raised | cleared
    ts_ms: int
    rule: str = ""
    point: str = ""
    severity: str | None = None  # the wire severity (alarm, warning, info)
    building: str | None = None
    room: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def identity(self) -> tuple[str, str, str, str, str, str]:
        return (self.institution, self.edge, self.device, self.kind, self.rule, self.point)


def episode_id(identity: Sequence[str], raised_ms: int) -> str:
    return hashlib.sha256("\x1f".join([*identity, str(raised_ms)]).encode()).hexdigest()[:20]


def _value(data: Mapping[str, Any]) -> str | None:
    if "flow" in data:
        return f"{data['flow']} m³/h"
    if "fill_pct" in data:
        return f"{data['fill_pct']} %"
    if "value" in data:
        return str(data["value"])
    return None


class Notifier:
    def __init__(self, config: NotifyConfig, channels: Mapping[str, Channel],
                 queue: NotifyQueue, clock: Clock, *, link_secret: bytes,
                 digests: DigestSource | None = None, batch: int = 50) -> None:
        self.config = config
        self.digests = digests
        self.channels = dict(channels)
        self.queue = queue
        self.clock = clock
        self.tz = ZoneInfo(config.timezone)
        self._link_key = hmac.new(link_secret, b"greenguard notify ack link",
                                  hashlib.sha256).digest()
        self.batch = batch
        self.in_doubt = queue.recover_in_doubt(clock.now())
        if self.in_doubt:
            log.warning("%d notification(s) were being sent when the process stopped; "
                        "sending them again with the same key", self.in_doubt)
        # observe() runs in ingest's thread, tick() and acknowledge() in the event loop's:
        # one lock keeps each read-decide-write of an episode whole.
        self._lock = threading.RLock()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- alarm events in ----------------------------------------------------------------
    def observe(self, signals: Iterable[AlarmSignal]) -> None:
        """Record alarm events and enqueue what they call for. Synchronous and durable: call
        it before the events are acknowledged to the edge. Safe to call again with the same
        events."""
        with self._lock:
            for s in sorted(signals, key=lambda s: s.ts_ms):
                if s.state == "raised":
                    self._raised(s)
                elif s.state == "cleared":
                    self._cleared(s)
        if self._loop is not None:  # ingest may commit in a worker thread
            self._loop.call_soon_threadsafe(self._wake.set)

    def _routing(self, institution: str) -> InstitutionRouting:
        return self.config.institutions.get(institution, InstitutionRouting())

    def _severity(self, s: AlarmSignal) -> str:
        routing = self._routing(s.institution)
        if s.kind in routing.severities:
            return routing.severities[s.kind]
        if s.kind in KIND_SEVERITY:
            return KIND_SEVERITY[s.kind]
        return WIRE_SEVERITY.get(s.severity or "", "minor")

    def _route(self, e: Episode) -> Route | None:
        local = dt.datetime.fromtimestamp(e.raised_ms / 1000, self.tz).time()
        for route in self._routing(e.institution).routes:
            if route.kinds and e.kind not in route.kinds:
                continue
            if route.severities and e.severity not in route.severities:
                continue
            if route.buildings and not ({e.building, e.data.get("building_id")}
                                        & set(route.buildings)):
                continue
            if route.hours is not None and not route.hours.contains(local):
                continue
            return route
        return None

    def _route_named(self, e: Episode) -> Route | None:
        return next((r for r in self._routing(e.institution).routes if r.name == e.route),
                    None)

    def _raised(self, s: AlarmSignal) -> None:
        now = self.clock.now()
        last = self.queue.latest_episode(s.identity)
        if last is not None and last.raised_ms <= s.ts_ms and (
                last.cleared_ms is None or last.cleared_ms >= s.ts_ms):
            return  # open already (a repeated raise), or a replay of a known episode
        if last is not None and last.raised_ms > s.ts_ms:
            return  # an old raise replayed after a newer episode: known history
        if (last is not None and last.cleared_ms is not None and last.suppressed is None
                and (s.ts_ms - last.cleared_ms) / 1000 <= self.config.flap_window_s
                and not self.queue.clear_attempted(last.id)):
            self.queue.cancel(last.id, stages_like="clear%", now=now, why="flapping")
            self.queue.update_episode(last.id, cleared_ms=None, flaps=last.flaps + 1)
            return
        e = Episode(id=episode_id(s.identity, s.ts_ms), institution=s.institution,
                    edge=s.edge, device=s.device, kind=s.kind, rule=s.rule, point=s.point,
                    severity=self._severity(s), building=s.building, room=s.room,
                    data=dict(s.data), raised_ms=s.ts_ms, cleared_ms=None, acked_at=None,
                    acked_by=None, route=None, stage=0, next_stage_at=None, reminders=0,
                    next_reminder_at=None, flaps=0, suppressed=None)
        mute = self.queue.muted(s.institution, s.edge, s.device, now)
        route = self._route(e)
        if mute is not None:
            e = _replace(e, suppressed="muted")
        elif route is None:
            e = _replace(e, suppressed="unrouted")
        else:
            start = max(now, s.ts_ms / 1000)
            e = _replace(e, route=route.name,
                         next_stage_at=(start + route.stages[1].after_min * 60
                                        if len(route.stages) > 1 else None),
                         next_reminder_at=(start + route.repeat_every_min * 60
                                           if route.repeat_every_min and route.max_reminders
                                           else None))
        if not self.queue.insert_episode(e):
            return
        if mute is not None:
            self.queue.audit(e.institution, "notifier", "suppressed",
                             {"episode": e.id, "why": "muted", "reason": mute}, now)
        if route is not None and mute is None:
            self._enqueue(e, route, 0, "s0", delay_s=route.delay_s)

    def _unmuted(self, e: Episode) -> None:
        """The mute ended while the alarm is still open: it is routed as if raised now."""
        now = self.clock.now()
        route = self._route(e)
        self.queue.audit(e.institution, "notifier", "unmuted", {"episode": e.id}, now)
        if route is None:
            self.queue.update_episode(e.id, suppressed="unrouted")
            return
        nxt_stage = now + route.stages[1].after_min * 60 if len(route.stages) > 1 else None
        nxt_reminder = (now + route.repeat_every_min * 60
                        if route.repeat_every_min and route.max_reminders else None)
        self.queue.update_episode(e.id, suppressed=None, route=route.name,
                                  next_stage_at=nxt_stage, next_reminder_at=nxt_reminder)
        self._enqueue(_replace(e, suppressed=None, route=route.name), route, 0, "s0")

    def _cleared(self, s: AlarmSignal) -> None:
        now = self.clock.now()
        e = self.queue.latest_episode(s.identity)
        if e is None or e.raised_ms > s.ts_ms or e.cleared_ms is not None:
            return
        self.queue.update_episode(e.id, cleared_ms=s.ts_ms)
        route = self._route_named(e)
        if route is None or e.suppressed is not None:
            return
        if route.delay_s and (s.ts_ms - e.raised_ms) / 1000 < route.delay_s:
            self.queue.cancel(e.id, now=now, why="cleared before the route's delay")
            self.queue.update_episode(e.id, suppressed="short")
            return
        # Escalations and reminders not yet attempted are pointless now.
        self._cancel_follow_ups(e, route, now, "cleared")
        if route.notify_cleared:
            e = _replace(e, cleared_ms=s.ts_ms)
            recipients = self.queue.recipients_of(e.id)
            when = self._after_quiet(e, now + self.config.flap_window_s)
            self.queue.enqueue([self._delivery(e, ch, addr, f"clear{e.flaps}", when,
                                               cleared=True) for ch, addr in recipients])

    # -- acknowledgement and mutes ------------------------------------------------------
    def acknowledge(self, episode: str, actor: str, institution: str | None = None
                    ) -> Episode:
        with self._lock:
            return self._acknowledge(episode, actor, institution)

    def _acknowledge(self, episode: str, actor: str, institution: str | None) -> Episode:
        e = self.queue.episode(episode)
        if e is None or (institution is not None and e.institution != institution):
            raise NotifyError(f"no alarm episode {episode!r}")
        if e.acked_at is not None:
            return e
        now = self.clock.now()
        self.queue.update_episode(e.id, acked_at=now, acked_by=actor)
        route = self._route_named(e)
        if route is not None:
            self._cancel_follow_ups(e, route, now, f"acknowledged by {actor}")
        self.queue.audit(e.institution, actor, "acknowledge", {"episode": e.id}, now)
        got = self.queue.episode(e.id)
        assert got is not None
        return got

    def _cancel_follow_ups(self, e: Episode, route: Route, now: float, why: str) -> None:
        """Reminders and escalations still waiting (also for a retry): they would say
        "not acknowledged". The first message and messages being sent stay."""
        self.queue.cancel(e.id, stages_like="r%", now=now, why=why, retried_too=True)
        for stage in range(1, len(route.stages)):
            self.queue.cancel(e.id, stages_like=f"s{stage}", now=now, why=why,
                              retried_too=True)

    def mute(self, institution: str, edge: str, device: str, *, minutes: float, reason: str,
             actor: str) -> None:
        now = self.clock.now()
        self.queue.add_mute(institution, edge, device, now + minutes * 60, reason, actor, now)

    def ack_link(self, episode: str, recipient: str, expires: int) -> str:
        base = (self.config.ack_url or self.config.dashboard_url).rstrip("/")
        query = urllib.parse.urlencode({"r": recipient, "exp": expires,
                                        "sig": self.link_signature(episode, recipient,
                                                                   expires)})
        return f"{base}/notify/ack/{episode}?{query}"

    def link_signature(self, episode: str, recipient: str, expires: int) -> str:
        mac = hmac.new(self._link_key, f"{episode}|{recipient}|{expires}".encode(),
                       hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:18]).decode()

    def check_link(self, episode: str, recipient: str, expires: int, sig: str) -> bool:
        return (expires > self.clock.now() and hmac.compare_digest(
            sig, self.link_signature(episode, recipient, expires)))

    # -- escalation and reminders -------------------------------------------------------
    def tick(self) -> None:
        """Enqueue the escalations and reminders due now."""
        with self._lock:
            self._tick()

    def _tick(self) -> None:
        now = self.clock.now()
        for e in self.queue.suppressed_open("muted"):
            if self.queue.muted(e.institution, e.edge, e.device, now) is None:
                self._unmuted(e)
        for e in self.queue.escalating(now):
            route = self._route_named(e)
            if route is None:
                continue
            if e.next_stage_at is not None and e.next_stage_at <= now:
                stage = e.stage + 1
                start = e.next_stage_at - route.stages[stage].after_min * 60
                nxt = (start + route.stages[stage + 1].after_min * 60
                       if stage + 1 < len(route.stages) else None)
                self.queue.update_episode(e.id, stage=stage, next_stage_at=nxt)
                e = _replace(e, stage=stage, next_stage_at=nxt)
                self._enqueue(e, route, stage, f"s{stage}")
            if e.next_reminder_at is not None and e.next_reminder_at <= now:
                n = e.reminders + 1
                assert route.repeat_every_min is not None
                nxt = (e.next_reminder_at + route.repeat_every_min * 60
                       if n < route.max_reminders else None)
                self.queue.update_episode(e.id, reminders=n, next_reminder_at=nxt)
                e = _replace(e, reminders=n)
                for stage in range(e.stage + 1):
                    self._enqueue(e, route, stage, f"r{n}")
        self._digests_due(now)

    def _digests_due(self, now: float) -> None:
        """The daily and weekly digests due now. A failure to read their figures (the store
        unreachable) is logged and retried on the next round: it must not hold back the
        alarms' escalations and deliveries."""
        for make in (self._digest_due, self._weekly_due):
            try:
                make(now)
            except Exception:
                log.exception("notifier: a digest could not be made; trying again next round")

    def _digest_due(self, now: float) -> None:
        """Yesterday's digest for each institution that has one, once its time has come."""
        if self.digests is None:
            return
        local = dt.datetime.fromtimestamp(now, self.tz)
        today = local.date()
        for iid, routing in self.config.institutions.items():
            d = routing.digest
            if d is None or local.strftime("%H:%M") < d.at:
                continue
            recipients = self.config.expand(iid, d.recipients)
            first = f"digest|{iid}|{today}|{recipients[0]}"
            if self.queue.delivery(first) is not None:
                continue  # made already (or skipped: a non-working day)
            if d.working_days_only and not self.digests.is_working_day(iid, today):
                self.queue.enqueue([Delivery(
                    key=first, episode=None, institution=iid, channel="-", recipient="",
                    stage="digest", message={}, state="cancelled", attempts=0, created=now,
                    next_at=now, done_at=now, last_answer="not a working day")])
                continue
            figures = self.digests.figures(iid, today - dt.timedelta(days=1))
            open_alarms = [e for e in self.queue.episodes(iid, open_only=True, limit=1000)
                           if e.suppressed is None]
            out = []
            for entry in recipients:
                channel, _, address = entry.partition(":")
                key = f"digest|{iid}|{today}|{entry}"
                message = digest_message(institution=iid, figures=figures,
                                         open_alarms=open_alarms, key=key,
                                         dashboard_url=self.config.dashboard_url, tz=self.tz)
                out.append(Delivery(key=key, episode=None, institution=iid, channel=channel,
                                    recipient=address, stage="digest",
                                    message=_message_dict(message), state="pending",
                                    attempts=0, created=now, next_at=now, done_at=None,
                                    last_answer=None))
            self.queue.enqueue(out)

    def _weekly_due(self, now: float) -> None:
        """This week's weekly digest for each institution that has one: on the first
        working day on or after its weekday, once its time has come; once a week and
        recipient (key `weekly|iid|YYYY-Www|recipient`)."""
        if self.digests is None:
            return
        local = dt.datetime.fromtimestamp(now, self.tz)
        today = local.date()
        for iid in self.config.institutions:
            schedule = self.config.weekly_schedule(iid)
            if schedule is None:
                continue
            w, at, recipients = schedule
            if not recipients or today.isoweekday() < w.weekday or (
                    local.strftime("%H:%M") < at):
                continue
            week = week_label(today)
            keys = [f"weekly|{iid}|{week}|{entry}" for entry in recipients]
            if self.queue.delivery(keys[0]) is not None:
                continue  # sent (or being sent) this week already
            if w.working_days_only and not self.digests.is_working_day(iid, today):
                continue  # a holiday: the next working day of the week sends it
            report = self.digests.compliance(iid, today)
            out = []
            for entry, key in zip(recipients, keys, strict=True):
                channel, _, address = entry.partition(":")
                message = weekly_message(institution=iid, report=report, day=today, key=key,
                                         dashboard_url=self.config.dashboard_url)
                out.append(Delivery(key=key, episode=None, institution=iid, channel=channel,
                                    recipient=address, stage="weekly",
                                    message=_message_dict(message), state="pending",
                                    attempts=0, created=now, next_at=now, done_at=None,
                                    last_answer=None))
            self.queue.enqueue(out)

    def _enqueue(self, e: Episode, route: Route, stage: int, tag: str,
                 delay_s: float = 0.0) -> None:
        now = self.clock.now()
        when = self._after_quiet(e, now + delay_s)
        out = []
        for entry in self.config.expand(e.institution, route.stages[stage].recipients):
            channel, _, address = entry.partition(":")
            out.append(self._delivery(e, channel, address, tag, when))
        self.queue.enqueue(out)

    def _after_quiet(self, e: Episode, when: float) -> float:
        quiet = self._routing(e.institution).quiet_hours
        if quiet is None or e.kind in quiet.except_kinds or (
                e.severity in quiet.except_severities):
            return when
        local = dt.datetime.fromtimestamp(when, self.tz)
        if not quiet.contains(local.time()):
            return when
        h, m = (int(x) for x in quiet.end.split(":"))
        end = local.replace(hour=h % 24, minute=m, second=0, microsecond=0)
        if end <= local:
            end += dt.timedelta(days=1)
        return end.timestamp()

    def _delivery(self, e: Episode, channel: str, address: str, tag: str, when: float, *,
                  cleared: bool = False) -> Delivery:
        now = self.clock.now()
        recipient = f"{channel}:{address}" if address else channel
        key = f"{e.id}|{recipient}|{tag}"
        expires = int(now + self.config.ack_link_valid_h * 3600)
        message = self.render(e, key, tag, cleared=cleared,
                              ack_link=None if cleared else self.ack_link(e.id, recipient,
                                                                          expires))
        return Delivery(key=key, episode=e.id, institution=e.institution, channel=channel,
                        recipient=address, stage=tag, message=_message_dict(message),
                        state="pending", attempts=0, created=now, next_at=when,
                        done_at=None, last_answer=None)

    def render(self, e: Episode, key: str, tag: str, *, cleared: bool = False,
               ack_link: str | None = None) -> Message:
        """The message in Chinese: what, where, which device, the value, since when."""
        kind = KIND_ZH.get(e.kind, e.kind)
        place = " ".join(p for p in (e.building, e.room) if p) or e.device
        since = dt.datetime.fromtimestamp(e.raised_ms / 1000, self.tz)
        if cleared:
            title = f"【已恢复】{kind} · {place}"
        elif tag.startswith("r"):
            title = f"【提醒 {tag[1:]}】{kind}未确认 · {place}"
        elif tag != "s0":
            title = f"【升级】{kind}未确认 · {place}"
        else:
            title = f"【{SEVERITY_ZH.get(e.severity, e.severity)}告警】{kind} · {place}"
        lines = [f"位置：{place}", f"设备：{e.device}（{e.edge}）"]
        value = _value(e.data)
        if value:
            lines.append(f"数值：{value}")
        lines.append(f"开始：{since:%Y-%m-%d %H:%M}")
        if cleared and e.cleared_ms is not None:
            until = dt.datetime.fromtimestamp(e.cleared_ms / 1000, self.tz)
            lines.append(f"恢复：{until:%Y-%m-%d %H:%M}")
        elif tag != "s0":
            minutes = int((self.clock.now() - e.raised_ms / 1000) // 60)
            lines.append(f"已持续：{minutes} 分钟")
        lines.append(f"级别：{SEVERITY_ZH.get(e.severity, e.severity)}")
        link = (f"{self.config.dashboard_url.rstrip('/')}/#alarms/"
                f"{urllib.parse.quote(e.institution)}")
        return Message(key=key, title=title, lines=tuple(lines), link=link,
                       ack_link=ack_link, severity=e.severity,
                       data={"episode": e.id, "institution": e.institution, "kind": e.kind,
                             "edge": e.edge, "device": e.device, "building": e.building,
                             "room": e.room, "raised_ms": e.raised_ms,
                             "cleared_ms": e.cleared_ms if cleared else None,
                             "stage": tag})

    # -- delivery -----------------------------------------------------------------------
    async def deliver_due(self) -> int:
        """Send every delivery due now (in order); returns how many were attempted."""
        done = 0
        while True:
            due = self.queue.due(self.clock.now(), self.batch)
            if not due:
                return done
            for d in due:
                await self._attempt(d)
                done += 1

    async def _attempt(self, d: Delivery) -> None:
        channel = self.channels.get(d.channel)
        now = self.clock.now()
        attempt = self.queue.begin_attempt(d.key, now)
        if channel is None:
            answer = Answer(Outcome.FAIL, f"channel {d.channel!r} is not configured")
        else:
            message = _message_of(d.message)
            if d.attempts and self._was_in_doubt(d.key):
                message = _replace_message(message, title="（重发）" + message.title)
            try:
                answer = await channel.send(message, d.recipient)
            except Exception as exc:  # a channel bug must not stop the queue
                answer = Answer(Outcome.RETRY, f"{type(exc).__name__} in channel")
        now = self.clock.now()
        attempts = d.attempts + 1
        if answer.outcome is Outcome.OK:
            state, next_at = "sent", None
        elif answer.outcome is Outcome.FAIL or (
                now - d.created > self.config.retry.give_up_after_h * 3600):
            state, next_at = "failed", None
            log.warning("notification %s via %s failed: %s", d.key, d.channel, answer.detail)
        else:
            state, next_at = "pending", now + self.backoff(d.key, attempts)
        self.queue.finish_attempt(attempt, d.key, outcome=answer.outcome.value,
                                  answer=answer.detail, now=now, state=state, next_at=next_at)

    def _was_in_doubt(self, key: str) -> bool:
        return any(a["outcome"] == "in_doubt" for a in self.queue.attempts(key))

    def backoff(self, key: str, attempts: int) -> float:
        """initial × 2^(attempts-1), at most max, with ±20 % jitter fixed per key/attempt."""
        r = self.config.retry
        base = min(r.max_s, r.initial_s * 2 ** min(attempts - 1, 30))
        h = hashlib.sha256(f"{key}|{attempts}".encode()).digest()
        return float(base * (0.8 + 0.4 * (h[0] / 255)))

    async def step(self) -> int:
        self.tick()
        return await self.deliver_due()

    async def run(self, *, poll_s: float = 1.0) -> None:
        """Until cancelled: escalate, remind and deliver; wake on new alarms.

        Like ingest and HTTP this task runs in real time and only reads the clock: it waits
        `poll_s` real seconds (or less, when an alarm arrives) between rounds. It must not
        sleep on a `VirtualClock`, whose time jumps when every *participant* waits."""
        self._loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    await self.step()
                except CentralError as exc:
                    log.warning("notifier: %s", exc)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(poll_s):
                        await self._wake.wait()
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        for ch in self.channels.values():
            await ch.aclose()

    def close(self) -> None:
        self.queue.close()


def _replace(e: Episode, **fields: Any) -> Episode:
    values = {f: getattr(e, f) for f in Episode.__slots__}
    values.update(fields)
    return Episode(**values)


def _message_dict(m: Message) -> dict[str, Any]:
    return {"key": m.key, "title": m.title, "lines": list(m.lines), "link": m.link,
            "ack_link": m.ack_link, "severity": m.severity, "data": dict(m.data)}


def _message_of(d: Mapping[str, Any]) -> Message:
    return Message(key=d["key"], title=d["title"], lines=tuple(d["lines"]), link=d["link"],
                   ack_link=d["ack_link"], severity=d["severity"], data=d["data"])


def _replace_message(m: Message, *, title: str) -> Message:
    return Message(key=m.key, title=title, lines=m.lines, link=m.link, ack_link=m.ack_link,
                   severity=m.severity, data=m.data)
