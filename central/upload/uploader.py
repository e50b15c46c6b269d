"""The uploader: every closed period of every building to the platform, once, oldest first.

One pass per building (`run_pass`):

1. The periods to look at: from the building's cursor (the oldest period not yet accepted)
   or the start of the re-send window, whichever is older, to the last closed period (one
   that ended `settle_min` ago). A far-behind cursor scans at most `scan_days` per pass.
2. Their values from the store (one `interval_rows` read per meter, cut into periods like
   `interval_sums` pro-rates), per 分项 item (`central.upload.items`).
3. Due: a period whose data is complete (every meter covered the whole period, or the
   period ended `late_after_h` ago: then what is there is sent) and whose values, as they
   go on the wire, differ from what the platform last accepted for it: never sent, or
   changed by late or corrected data (sent again as `continuous`, 断点续传).
4. Send them oldest first, at most `rate_per_s` frames a second and `max_per_pass` per
   pass, on the building's own connection (login first: id_validate with the MD5). A
   period is delivered when the platform's ack says OK and that is committed to the state
   file; a refusal, a timeout, a dropped link or garbage stops the building's pass, is
   logged, and the building backs off (5 s doubling to 5 min) before the next try.

`run()` repeats passes every `poll_s` and sends a heartbeat on an idle connection every
`heartbeat_s` (the platform's clock answer is kept in the status). The uploader only reads
the store, through the institution's `TenantReader`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from central.institution import InstitutionConfig
from central.reader import TenantReader
from central.upload.city import CityConfig, Secret
from central.upload.client import (
    PlatformClient,
    PlatformGarbageError,
    PlatformRefusedError,
    PlatformUnavailableError,
    TcpPlatformClient,
    UploadError,
)
from central.upload.items import BuildingPlan, bucket, item_values, plan_items
from central.upload.state import LogEntry, UploadState
from protocols.clock import Clock
from protocols.platform.codec import PlatformCodec
from protocols.platform.crypto import handshake_md5
from protocols.platform.messages import (
    Common,
    DataMessage,
    EnergyItem,
    HeartBeat,
    IdValidate,
    Message,
)

log = logging.getLogger(__name__)

ClientFactory = Callable[[BuildingPlan], PlatformClient]
BACKOFF_S = (5.0, 300.0)


@dataclass(frozen=True)
class Due:
    period: int  # ms, the period's start
    values: dict[str, float]
    digest: str
    resend: bool


@dataclass(frozen=True)
class BuildingStatus:
    building: str
    building_id: str
    gateway_id: str
    last_accepted: int | None  # ms, start of the newest accepted period
    cursor: int  # ms, the oldest period not yet accepted
    backlog: int  # closed periods not yet accepted (as of the last pass)
    last_error: LogEntry | None
    platform_time: str | None  # the last heartbeat answer


@dataclass
class _Link:
    client: PlatformClient
    logged_in: bool = False
    last_io: float = 0.0
    retry_at: float = 0.0
    backoff_s: float = 0.0
    backlog: int = 0
    platform_time: str | None = None
    last_closed: int = 0


class Uploader:
    def __init__(self, reader: TenantReader, institution: InstitutionConfig,
                 city: CityConfig, secret: Secret | None, state: UploadState, clock: Clock,
                 *, client_factory: ClientFactory | None = None,
                 codec: PlatformCodec | None = None, scan_days: float = 31.0,
                 late_after_h: float = 24.0) -> None:
        city.check_against(institution)
        self.reader = reader
        self.institution = institution
        self.city = city
        self.secret = secret
        self.state = state
        self.clock = clock
        self.tz = ZoneInfo(institution.institution.timezone)
        self.period_ms = city.period_min * 60_000
        self.start_ms = int(datetime.combine(city.start, time(), self.tz).timestamp() * 1000)
        self.scan_ms = int(scan_days * 86_400_000)
        self.late_after_ms = int(late_after_h * 3_600_000)
        self.plans = plan_items(institution, city)
        if client_factory is None:
            if codec is None:
                raise ValueError("a codec or a client factory is needed")
            wire = codec

            def client_factory(plan: BuildingPlan) -> PlatformClient:
                return TcpPlatformClient(city.platform.host, city.platform.port, wire,
                                         timeout_s=city.timeout_s)
        self._links = {p.building: _Link(client_factory(p)) for p in self.plans}
        self._last_send = 0.0

    # -- what is due --------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self.clock.now() * 1000)

    def _time_text(self, period: int) -> str:
        return datetime.fromtimestamp(period / 1000, UTC).astimezone(self.tz).strftime(
            "%Y%m%d%H%M%S")

    def digest(self, values: dict[str, float]) -> str:
        """The values as they go on the wire: a change smaller than the last decimal sent
        is no change."""
        d = self.city.decimals
        return ";".join(f"{c}={v:.{d}f}" for c, v in sorted(values.items()))

    def due(self, plan: BuildingPlan, now_ms: int) -> list[Due]:
        pm = self.period_ms
        self.state.init_cursor(plan.building, self.start_ms)
        cursor = self.state.cursor(plan.building, self.start_ms)
        closed = (now_ms - int(self.city.settle_min * 60_000)) // pm * pm  # exclusive end
        window = max(self.start_ms, (now_ms - int(self.city.resend_window_h * 3_600_000))
                     // pm * pm)
        lo = min(cursor, window)
        hi = closed
        if hi - lo > self.scan_ms:  # far behind: the backlog first
            lo, hi = cursor, min(closed, cursor + self.scan_ms // pm * pm)
        link = self._links[plan.building]
        link.last_closed = closed
        if hi <= lo:
            link.backlog = 0
            self.state.set_backlog(plan.building, 0, now_ms)
            return []
        keys = plan.keys
        buckets = bucket(self.reader.interval_rows(lo, hi, keys), lo, hi, pm)
        accepted = self.state.accepted(plan.building, lo, hi)
        out: list[Due] = []
        for p in range(lo, hi, pm):
            covered = buckets.covered.get(p, {})
            complete = all(covered.get(k, 0) >= pm for k in keys)
            if not complete and now_ms - (p + pm) < self.late_after_ms:
                continue
            values = item_values(plan, buckets.sums.get(p, {}))
            digest = self.digest(values)
            before = accepted.get(p)
            if before != digest:
                out.append(Due(p, values, digest, resend=before is not None))
        link.backlog = len(out) + max(0, (lo - cursor) // pm)
        self.state.set_backlog(plan.building, link.backlog, now_ms)
        return out

    # -- the link -----------------------------------------------------------------

    def _common(self, plan: BuildingPlan) -> Common:
        return Common(plan.ids.building_id, plan.ids.gateway_id)

    async def _login(self, plan: BuildingPlan, link: _Link) -> None:
        await link.client.connect()
        common = self._common(plan)
        answer = await link.client.exchange(Message(common, IdValidate("request")))
        if not (isinstance(answer.body, IdValidate) and answer.body.operation == "sequence"
                and answer.body.sequence):
            raise PlatformGarbageError(f"expected id_validate sequence, got {answer.element} "
                                       f"{answer.operation}")
        key = self.secret.text if self.secret is not None else ""
        md5 = handshake_md5(answer.body.sequence, key, self.city.md5_order,
                            self.city.encoding)
        answer = await link.client.exchange(Message(common, IdValidate("md5", md5=md5)))
        if not (isinstance(answer.body, IdValidate) and answer.body.operation == "result"):
            raise PlatformGarbageError(f"expected id_validate result, got {answer.element} "
                                       f"{answer.operation}")
        if (answer.body.result or "").lower() != "pass":
            raise PlatformRefusedError(f"login refused: result {answer.body.result!r} (check "
                                       "the key and md5_order)", answer)
        link.logged_in = True
        link.last_io = self.clock.now()
        self.state.log(self._now_ms(), plan.building, None, "login", "accepted",
                       f"{plan.ids.building_id}/{plan.ids.gateway_id}")

    async def _send(self, plan: BuildingPlan, link: _Link, due: Due, op: str) -> None:
        seq = self.state.next_seq(plan.building)
        body = DataMessage(
            "report" if op == "report" else "continuous", sequence=str(seq), parser="yes",
            time=self._time_text(due.period),
            energy_items=tuple(EnergyItem(c, v) for c, v in sorted(due.values.items())))
        answer = await link.client.exchange(Message(self._common(plan), body))
        link.last_io = self.clock.now()
        if not isinstance(answer.body, DataMessage):
            raise PlatformGarbageError(f"expected a data ack, got {answer.element} "
                                       f"{answer.operation}")
        if not answer.body.accepted:
            raise PlatformRefusedError(f"data {op} refused: ack {answer.body.ack!r}", answer)
        self.state.accept(plan.building, due.period, due.digest, self._now_ms(),
                          self.period_ms, op, f"seq {seq}" + (" (changed)" if due.resend
                                                               else ""))

    async def _pace(self) -> None:
        gap = 1.0 / self.city.rate_per_s
        wait_until = self._last_send + gap
        if self.clock.now() < wait_until:
            await self.clock.sleep_until(wait_until)
        self._last_send = self.clock.now()

    def _failed(self, plan: BuildingPlan, link: _Link, period: int | None, op: str,
                exc: UploadError) -> None:
        outcome = ("refused" if isinstance(exc, PlatformRefusedError)
                   else "garbage" if isinstance(exc, PlatformGarbageError)
                   else "timeout" if isinstance(exc, PlatformUnavailableError) and exc.timeout
                   else "unavailable")
        self.state.log(self._now_ms(), plan.building, period, op, outcome, str(exc))
        if link.backoff_s == 0:
            log.warning("platform upload of building %s: %s", plan.building, exc)
        link.backoff_s = min(BACKOFF_S[1], max(BACKOFF_S[0], link.backoff_s * 2))
        link.retry_at = self.clock.now() + link.backoff_s * random.uniform(0.8, 1.2)
        link.logged_in = False

    # -- passes -------------------------------------------------------------------

    async def run_pass(self) -> int:
        """One pass over every building; returns the periods accepted."""
        done = 0
        for plan in self.plans:
            done += await self._building_pass(plan)
        return done

    async def _building_pass(self, plan: BuildingPlan) -> int:
        link = self._links[plan.building]
        if self.clock.now() < link.retry_at:
            return 0
        now_ms = self._now_ms()
        dues = self.due(plan, now_ms)[:self.city.max_per_pass]
        done = 0
        for due in dues:
            latest = due.period == link.last_closed - self.period_ms
            op = "report" if latest and not due.resend else "continuous"
            try:
                if not (link.logged_in and link.client.connected):
                    await self._login(plan, link)
                await self._pace()
                await self._send(plan, link, due, op)
            except UploadError as exc:
                self._failed(plan, link, due.period, op, exc)
                await link.client.close()
                return done
            done += 1
            link.backlog = max(0, link.backlog - 1)
        if dues and link.backoff_s:
            log.info("platform upload of building %s recovered", plan.building)
        link.backoff_s = 0.0
        return done

    async def heartbeat(self, plan: BuildingPlan) -> None:
        link = self._links[plan.building]
        if not (link.logged_in and link.client.connected):
            return
        try:
            answer = await link.client.exchange(Message(self._common(plan),
                                                        HeartBeat("notify")))
            if not (isinstance(answer.body, HeartBeat) and answer.body.time):
                raise PlatformGarbageError(f"expected heart_beat time, got {answer.element} "
                                           f"{answer.operation}")
            link.platform_time = answer.body.time
            link.last_io = self.clock.now()
        except UploadError as exc:
            self._failed(plan, link, None, "heartbeat", exc)
            await link.client.close()

    async def run(self, poll_s: float | None = None) -> None:
        poll = poll_s if poll_s is not None else min(60.0, self.period_ms / 1000 / 3)
        try:
            while True:
                await self.run_pass()
                for plan in self.plans:
                    link = self._links[plan.building]
                    if self.clock.now() - link.last_io >= self.city.heartbeat_s:
                        await self.heartbeat(plan)
                await self.clock.sleep_until(self.clock.now() + min(poll,
                                                                    self.city.heartbeat_s))
        finally:
            await self.close()

    async def close(self) -> None:
        for link in self._links.values():
            await link.client.close()

    def status(self) -> list[BuildingStatus]:
        out = []
        for plan in self.plans:
            link = self._links[plan.building]
            out.append(BuildingStatus(
                plan.building, plan.ids.building_id, plan.ids.gateway_id,
                self.state.last_accepted(plan.building),
                self.state.cursor(plan.building, self.start_ms), link.backlog,
                self.state.last_error(plan.building), link.platform_time))
        return out
