"""What ingest admits: the central's defence against a forger who can publish on the broker.

Production brokers use TLS, client certificates and ACLs; this is the second line, so that
one misconfigured broker (an anonymous listener, a too-wide ACL) cannot steer the figures.
Pure except for two store reads made on a cache miss (`EdgeLookup`). Each rule and why:

- **Configured edges only.** An edge id that no institution file names is refused (dead
  letter, no ack) and raises one `alarm.foreign_edge` event per edge, stored under the
  pseudo edge `@central` and shown to every institution by `/alarms` and `/events` (the
  broker is shared infrastructure; the event names only the foreign id and site). Before,
  `evil-1` was stored and acked.
- **One site per epoch.** An edge's batches and deaths must come on the site of its
  accepted birth, and a birth may change the site only together with a new epoch: a forged
  batch on `gg/v1/elsewhere/edge-1/...` would otherwise move the edge's recorded site and
  with it the topic its commands are published to.
- **A new epoch needs its birth.** An epoch is the edge's outbox creation time in ms. A
  birth may keep the edge's epoch or move it forward, but not past the central's clock plus
  `epoch_future_s` (an epoch of 2^53 is refused); batches are accepted only for the epoch
  of the edge's last accepted birth, or for an older stream the central already holds
  (still draining). A forged interval record with a huge epoch would otherwise win every
  (epoch, seq) upsert comparison and replace the real kWh for good.
- **No far jumps.** A batch reaching more than `max_seq_ahead` past the stream's watermark
  is refused whole: it could otherwise move the watermark to 10^13 (the edge then deletes
  unsent rows on the ack; the edge also clamps acks to what it sent).
- **Deaths** only for the current epoch (a forged will with a huge epoch marked the edge
  offline).
- **Signed uplink, where configured.** An edge listed under `edge_keys` must sign every
  batch, birth and death with its key (protocols/signing.py `Signer.seal`): anything else
  published under its id is refused before it is decoded. This is what stops a forger with
  broker access from slipping in records with seqs just ahead of the real edge's.

Record timestamps beyond the clock tolerance are quarantined by `central.ingest` itself
(with or without a guard). What this cannot stop without edge signatures: a forger on the
broker inserting plausible records with seqs just ahead of the real edge's. That needs broker
authentication (the demo's broker requires credentials; production adds ACLs).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from protocols.errors import WireError
from protocols.signing import SignatureError, Verifier
from protocols.wire import Event, Severity, Signed, StreamId, decode, parse_topic

if TYPE_CHECKING:
    from central.institution import InstitutionConfig
    from central.storeport import EdgeState

log = logging.getLogger(__name__)

FOREIGN_EDGE_ALARM = "alarm.foreign_edge"
MAX_FOREIGN_ALARMS = 100  # distinct foreign edges alarmed per process; beyond: counted only


# The pseudo edge id under which the central stores its own events. The `@` is outside the
# wire's id pattern, so no edge can publish under it.
CENTRAL_EDGE = "@central"


def configured_edges(institution: InstitutionConfig) -> frozenset[str]:
    """Every edge an institution file names: meters, AC units, bins, plugs, `edges` and
    `edge_keys`."""
    return frozenset([*(edge for edge, *_ in institution.placed_devices()),
                      *institution.edges, *institution.edge_keys])


def edge_keys_from(institutions: Iterable[InstitutionConfig]) -> dict[str, str]:
    return {edge: key for i in institutions for edge, key in i.edge_keys.items()}


def sites_from(institutions: Iterable[InstitutionConfig]) -> dict[str, frozenset[str]]:
    """Site id (= institution id, the topic's site) → the edges allowed to publish there."""
    return {i.institution.id: configured_edges(i) for i in institutions}


class EdgeLookup(Protocol):
    """The two store reads the guard needs after a cache miss."""

    def watermark(self, stream: StreamId) -> int: ...

    def edges(self) -> list[EdgeState]: ...


@dataclass(frozen=True, slots=True)
class GuardSettings:
    max_seq_ahead: int = 1_000_000_000  # far above any outbox overflow gap
    epoch_future_s: float = 300.0  # the same tolerance as record timestamps
    refresh_s: float = 1.0  # re-read an edge's epoch from the store at most this often


@dataclass(slots=True)
class GuardStats:
    foreign: int = 0  # messages from edges no institution configures
    epoch_refused: int = 0  # births and batches of an epoch not admitted
    seq_refused: int = 0  # batches jumping too far past the watermark
    unsigned_refused: int = 0  # messages of an edge with a key, not signed by it
    site_refused: int = 0  # messages of a known edge on another site than its birth's
    foreign_edges: dict[str, int] = field(default_factory=dict)  # "site/edge" → messages


class IngestGuard:
    def __init__(self, sites: Mapping[str, frozenset[str]], lookup: EdgeLookup,
                 settings: GuardSettings | None = None,
                 edge_keys: Mapping[str, str] | None = None) -> None:
        """`sites`: institution id → its configured edges; an edge may publish under any
        site id (the topic's site need not be the institution id), once per epoch."""
        self.edges = frozenset().union(*sites.values()) if sites else frozenset()
        self.lookup = lookup
        self.settings = settings or GuardSettings()
        self.stats = GuardStats()
        self._verifiers = {edge: Verifier(key) for edge, key in (edge_keys or {}).items()}
        self._epochs: dict[str, int] = {}
        self._sites: dict[str, str] = {}  # edge → site of its current epoch's birth
        self._refreshed: dict[str, float] = {}
        self._watermarks: dict[StreamId, int] = {}
        self._alarms = 0
        self._last_alarm_seq = 0

    # -- the checks: a reason to refuse, or None --------------------------------------

    def unseal(self, topic_name: str, payload: bytes) -> bytes | str:
        """The payload to decode, or the reason to refuse it. An edge with a key in
        `edge_keys` must send signed envelopes; others may (opened unchecked) or not."""
        if not self._verifiers and not payload.startswith(b'{"v":1,"type":"signed"'):
            return payload  # nothing configured, nothing signed: today's path, no cost
        try:
            edge = parse_topic(topic_name).edge
        except WireError:
            return payload  # triage names the problem
        verifier = self._verifiers.get(edge)
        if verifier is None:
            try:
                outer = decode(payload)
            except WireError:
                return payload
            return outer.msg.encode() if isinstance(outer, Signed) else payload
        try:
            return verifier.unseal(topic_name, payload)
        except SignatureError as exc:
            self.stats.unsigned_refused += 1
            return f"edge {edge!r} signs its uplink (edge_keys): {exc}; refused"

    def foreign(self, site: str, edge: str) -> str | None:
        if edge in self.edges:
            return None
        self.stats.foreign += 1
        key = f"{site}/{edge}"
        if key in self.stats.foreign_edges or len(self.stats.foreign_edges) < 10_000:
            self.stats.foreign_edges[key] = self.stats.foreign_edges.get(key, 0) + 1
        return (f"edge {edge!r} (site {site!r}) is not configured: no institution file names "
                "it; refused")

    def birth(self, site: str, stream: StreamId, now: float) -> str | None:
        if (reason := self.foreign(site, stream.edge)) is not None:
            return reason
        current = self._epoch(stream.edge, now, refresh=False)
        # The epoch is the edge's wall-clock time.time(); the central may run a simulated
        # clock in the past (the demo), so the later of the two bounds it.
        limit = round((max(now, time.time()) + self.settings.epoch_future_s) * 1000)
        if current is not None and stream.epoch < current:
            self.stats.epoch_refused += 1
            return (f"stream.epoch {stream.epoch} is older than the edge's current epoch "
                    f"{current}: refused")
        if stream.epoch != current and stream.epoch > limit:
            self.stats.epoch_refused += 1
            return (f"stream.epoch {stream.epoch} is later than the central's clock plus "
                    f"{self.settings.epoch_future_s:g} s ({limit}): refused")
        return self._other_site(site, stream, current)

    def _other_site(self, site: str, stream: StreamId, current: int | None) -> str | None:
        known = self._sites.get(stream.edge)
        if known is None or known == site or (current is not None and stream.epoch > current):
            return None
        self.stats.site_refused += 1
        return (f"edge {stream.edge!r} publishes on site {known!r} in epoch {current}; site "
                f"{site!r} refused (a new site needs a new epoch)")

    def born(self, stream: StreamId, site: str | None = None) -> None:
        """A birth committed: its epoch (and site) are now the edge's."""
        if stream.epoch >= self._epochs.get(stream.edge, -1):
            self._epochs[stream.edge] = stream.epoch
            if site is not None:
                self._sites[stream.edge] = site

    def death(self, site: str, stream: StreamId, now: float) -> str | None:
        if (reason := self.foreign(site, stream.edge)) is not None:
            return reason
        current = self._epoch(stream.edge, now, refresh=True)
        if current is not None and stream.epoch != current:
            self.stats.epoch_refused += 1
            return (f"stream.epoch {stream.epoch} is not the edge's current epoch "
                    f"{current}: death refused")
        return self._other_site(site, stream, current)

    def batch(self, site: str, stream: StreamId, after: int, upto: int, now: float
              ) -> str | None:
        if (reason := self.foreign(site, stream.edge)) is not None:
            return reason
        current = self._epoch(stream.edge, now, refresh=False)
        if current != stream.epoch:
            current = self._epoch(stream.edge, now, refresh=True)  # another worker's birth?
        if current != stream.epoch and not (
                current is not None and stream.epoch < current and self._watermark(stream) > 0):
            self.stats.epoch_refused += 1
            return (f"stream.epoch {stream.epoch}: no birth announced this epoch (current "
                    f"{current}); refused until the edge's birth arrives")
        if (reason := self._other_site(site, stream, current)) is not None:
            return reason
        bound = self._watermark(stream) + self.settings.max_seq_ahead
        if upto > bound:
            bound = self._watermark(stream, refresh=True) + self.settings.max_seq_ahead
        if upto > bound:
            self.stats.seq_refused += 1
            return (f"seq {upto} (after {after}) is more than {self.settings.max_seq_ahead} "
                    f"past the stream's watermark {bound - self.settings.max_seq_ahead}: "
                    "refused")
        return None

    def stored(self, stream: StreamId, watermark: int) -> None:
        """A batch committed: the stream's watermark as the store returned it."""
        self._watermarks[stream] = max(self._watermarks.get(stream, 0), watermark)

    # -- the alarm ----------------------------------------------------------------------

    def alarm_event(self, site: str, edge: str, reason: str, now: float
                    ) -> tuple[StreamId, Event] | None:
        """The `alarm.foreign_edge` event to store for a foreign edge's first message, once
        per edge and process (at most MAX_FOREIGN_ALARMS), else None."""
        key = f"{site}/{edge}"
        if self.stats.foreign_edges.get(key, 0) != 1 or self._alarms >= MAX_FOREIGN_ALARMS:
            return None
        now_ms = round(now * 1000)
        # Unique across restarts: microseconds of the clock, strictly increasing.
        seq = max(now_ms * 1000, self._last_alarm_seq + 1)
        self._alarms += 1
        self._last_alarm_seq = seq
        log.warning("refused messages of unconfigured edge %r on site %r", edge, site)
        return (StreamId(CENTRAL_EDGE, 0),
                Event(seq, now_ms, FOREIGN_EDGE_ALARM, Severity.ALARM, edge,
                      {"state": "raised", "rule": "ingest", "edge": edge, "site": site,
                       "reason": reason}))

    # -- cached reads ---------------------------------------------------------------------

    def _epoch(self, edge: str, now: float, *, refresh: bool) -> int | None:
        if edge in self._epochs and not refresh:
            return self._epochs[edge]
        mono = time.monotonic()
        if mono - self._refreshed.get(edge, -1e9) >= self.settings.refresh_s:
            self._refreshed[edge] = mono
            for state in self.lookup.edges():
                if state.edge == edge and state.epoch is not None:
                    self.born(StreamId(edge, state.epoch), state.site)
        return self._epochs.get(edge)

    def _watermark(self, stream: StreamId, *, refresh: bool = False) -> int:
        if stream not in self._watermarks or refresh:
            self._watermarks[stream] = max(self._watermarks.get(stream, 0),
                                           self.lookup.watermark(stream))
        return self._watermarks[stream]

