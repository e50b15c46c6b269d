"""Many lean edges in one process: what each institution's edge would publish, without a
Modbus server, an outbox file or an agent per institution.

Why lean: a real edge agent polls Modbus servers, enforces rules and keeps a SQLite outbox;
200 of them with 200 meter simulators do not fit on a 2-core machine next to the broker and
the central. The central cannot tell the difference, because a `LeanEdge` speaks the same
wire protocol as `edge.uplink`:

- its own stream (edge id + installation epoch) with strictly increasing seqs, samples of
  every meter at its poll interval and quarter-hour interval records of the consumption
  in between (working hours, working days and school vacations shape the load);
- a birth before any batch (republished while no ack comes, as an edge does on reconnect),
  every batch and birth sealed with the edge's Ed25519 key (`Signer.seal`), as the central's
  `edge_keys` demands;
- rows kept until the central's signed ack ("stored up to seq N", verified with the
  central's public key), at most `max_in_flight` batches unacknowledged at once, and
  everything unacknowledged resent after `resend_after_s` without an ack advancing.

What it leaves out, on purpose: the outbox on disk (the edge's own crash safety is tested
in tests/faults), rules and actuation, and one MQTT connection per edge (all edges of a
fleet share one connection; the topics still carry each edge's site and id).
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from protocols.signing import SignatureError, Signer, Verifier
from protocols.wire import (
    Ack,
    Birth,
    Channel,
    DeviceInfo,
    Event,
    IntervalRecord,
    Record,
    Sample,
    Severity,
    StreamId,
    encode,
    encode_batch_raw,
    encode_record,
    topic,
)
from protocols.workcalendar import WorkingCalendar
from simulators.district_plan import INTERVAL_S, SimInstitution, SimMeter

TZ = ZoneInfo("Asia/Shanghai")
SOFTWARE = "greenguard-sim-district"


@dataclass
class LeanEdge:
    """One institution's edge (see the module docstring)."""

    institution: SimInstitution
    epoch: int
    poll_s: int
    batch_max: int = 200
    resend_after_s: float = 5.0
    max_in_flight: int = 8  # unacknowledged batches at once, as the edge's uplink bounds them
    rows: deque[tuple[int, str]] = field(default_factory=deque)  # (seq, record JSON)
    next_seq: int = 1
    acked: int = 0
    sent_upto: int = 0
    born: bool = False
    last_progress: float = field(default_factory=time.monotonic)
    acks: int = 0
    resends: int = 0
    leak_raised: bool = False

    def __post_init__(self) -> None:
        self.signer = Signer(self.institution.key_pem)
        self.stream = StreamId(self.institution.edge, self.epoch)
        self.site = self.institution.id
        self._rnd = random.Random(self.institution.id)
        hours = self.institution.config["working_hours"]
        self._work = (_minutes(hours["start"]), _minutes(hours["end"]))
        self._calendar = WorkingCalendar(holidays=[
            date.fromisoformat(d) for d in self.institution.config["calendar"]["holidays"]])

    # -- what the meters produce ----------------------------------------------------------

    def working(self, t: float) -> bool:
        local = datetime.fromtimestamp(t, TZ)
        minute = local.hour * 60 + local.minute
        return (self._work[0] <= minute < self._work[1]
                and self._calendar.is_working_day(local.date()))

    def load(self, meter: SimMeter, t: float) -> float:
        """kW or m³/h at `t`."""
        return meter.peak if self.working(t) else meter.base

    def produce(self, t0: float, t1: float, *, leak: bool = False) -> int:
        """Records of the simulated span (t0, t1]: polls and whole quarter hours ending in
        it, and a leak alarm when `leak`. Returns how many."""
        before = self.next_seq
        first_poll = math.floor(t0 / self.poll_s) + 1
        for k in range(first_poll, math.floor(t1 / self.poll_s) + 1):
            ts = k * self.poll_s
            for m in self.institution.meters:
                noise = self._rnd.uniform(0.9, 1.1)
                if m.energy == "electricity":
                    self._add(Sample(self.next_seq, ts * 1000, m.device, "power_w",
                                     round(self.load(m, ts) * 1000 * noise, 1), "W"))
                else:
                    self._add(Sample(self.next_seq, ts * 1000, m.device, "flow_m3h",
                                     round(self.load(m, ts) * noise, 4), "m3/h"))
        for q in range(math.floor(t0 / INTERVAL_S) + 1, math.floor(t1 / INTERVAL_S) + 1):
            start = (q - 1) * INTERVAL_S
            for m in self.institution.meters:
                hours = INTERVAL_S / 3600
                quantity = round(self.load(m, start) * hours, 4)
                electricity = m.energy == "electricity"
                self._add(IntervalRecord(
                    self.next_seq, m.device, "energy_import_kwh" if electricity else "water_m3",
                    start * 1000, INTERVAL_S, quantity, "kWh" if electricity else "m3"))
        if leak and not self.leak_raised:
            water = next((m for m in self.institution.meters if m.energy == "water"), None)
            if water is not None:
                self.leak_raised = True
                self._add(Event(self.next_seq, int(t1 * 1000), "alarm.leak", Severity.ALARM,
                                water.device, {"state": "raised", "rule": "leak",
                                               "point": "flow_m3h"}))
        return self.next_seq - before

    def _add(self, record: Record) -> None:
        self.rows.append((self.next_seq, encode_record(record)))
        self.next_seq += 1

    # -- the uplink -------------------------------------------------------------------------

    def topic(self, channel: Channel) -> str:
        return topic(self.site, self.institution.edge, channel)

    def birth(self, now_ms: int) -> tuple[str, bytes]:
        devices = tuple(DeviceInfo(m.device, "meter", "sim-district",
                                   ("power_w", "energy_import_kwh") if m.energy == "electricity"
                                   else ("flow_m3h", "water_m3"))
                        for m in self.institution.meters)
        name = self.topic(Channel.STATE)
        payload = encode(Birth(self.stream, now_ms, True, SOFTWARE, devices))
        return name, self.signer.seal(name, payload, now_ms)

    def next_batch(self, now_ms: int, mono: float) -> tuple[str, bytes] | None:
        """The next batch to publish, or None: new rows first; everything unacknowledged
        again once `resend_after_s` passed without an ack advancing."""
        if self.acked < self.sent_upto and mono - self.last_progress > self.resend_after_s:
            self.sent_upto = self.acked
            self.last_progress = mono
            self.resends += 1
        chosen = [(s, r) for s, r in self._after(self.sent_upto)]
        if not chosen or (self.sent_upto - self.acked) >= self.max_in_flight * self.batch_max:
            return None
        if self.sent_upto == self.acked:
            self.last_progress = mono  # the resend clock runs from the first unacked send
        self.sent_upto = chosen[-1][0]
        name = self.topic(Channel.TELEMETRY)
        payload = encode_batch_raw(self.stream, after=chosen[0][0] - 1, seq=chosen[-1][0],
                                   sent=now_ms, synced=True,
                                   records_json=[r for _, r in chosen])
        return name, self.signer.seal(name, payload, now_ms)

    def _after(self, seq: int) -> list[tuple[int, str]]:
        out = []
        for s, r in self.rows:
            if s > seq:
                out.append((s, r))
                if len(out) >= self.batch_max:
                    break
        return out

    def on_ack(self, ack: Ack, mono: float) -> None:
        if ack.stream != self.stream:
            return
        upto = min(ack.upto, self.next_seq - 1)  # never past what was produced
        self.acks += 1
        if upto > self.acked:
            self.acked = upto
            self.last_progress = mono
            self.born = True  # an ack means the central admitted the birth
            while self.rows and self.rows[0][0] <= upto:
                self.rows.popleft()
        self.sent_upto = max(self.sent_upto, self.acked)

    @property
    def drained(self) -> bool:
        return self.acked == self.next_seq - 1


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


class AckVerifier:
    """The central's signed acks, checked as an edge checks them (one replay memory per
    edge, as each edge keeps its own)."""

    def __init__(self, central_public_key: str) -> None:
        self._key = central_public_key
        self._verifiers: dict[str, Verifier] = {}
        self.refused = 0

    def ack(self, edge: str, topic_name: str, payload: bytes) -> Ack | None:
        verifier = self._verifiers.setdefault(edge, Verifier(self._key))
        try:
            message = verifier.check(topic_name, payload, now_ms=int(time.time() * 1000)).message
        except SignatureError:
            self.refused += 1
            return None
        return message if isinstance(message, Ack) else None
