"""Prometheus metrics of an edge agent, served on the `metrics:` address of its config.

Why not prometheus-client's own HTTP server: it answers from a thread, and the outbox's
SQLite connection belongs to the event loop's thread. This is a small HTTP/1.1 responder on
the agent's event loop (no FastAPI on the edge); every scrape reads the agent's live
counters and one indexed outbox query, nothing is counted twice.

    GET /metrics  → text exposition format; anything else → 404
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from edge.config import EdgeConfig, MetricsSettings
from edge.outbox import Outbox
from edge.poller import POLL_SECONDS_BUCKETS, BusScheduler, PollStats
from edge.uplink import Uplink

log = logging.getLogger(__name__)

_POLL_COUNTERS = (
    ("polls", "polls", "Device reads attempted"),
    ("poll_failures", "failures", "Device reads that failed"),
    ("samples", "samples", "Samples appended to the outbox"),
    ("interval_records", "intervals", "Interval records appended to the outbox"),
    ("outbox_append_errors", "outbox_errors", "Polls whose outbox append failed"),
)
_UPLINK_COUNTERS = (
    ("uplink_connects", "connects", "MQTT connections established"),
    ("uplink_records_sent", "records_sent", "Records published (including resends)"),
    ("uplink_acks", "acks", "Acks received from the central"),
    ("uplink_resends", "resends", "Times unacknowledged rows were sent again"),
    ("uplink_refused_publishes", "refused_publishes",
     "Publishes the broker refused (MQTT 5 reason code, e.g. not authorised)"),
)


class Observed(Protocol):
    """What a scrape reads of the running agent (`edge.agent.EdgeAgent`, which serves the
    metrics and so imports this module, not the other way round)."""

    @property
    def config(self) -> EdgeConfig: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def schedulers(self) -> Sequence[BusScheduler]: ...

    @property
    def uplink(self) -> Uplink: ...

    @property
    def poll_stats(self) -> PollStats: ...


class EdgeCollector(Collector):
    def __init__(self, agent: Observed) -> None:
        self.agent = agent

    def collect(self) -> Iterator[Metric]:
        agent = self.agent
        labels = ["edge"]
        edge = [agent.config.edge_id]
        for name, attr, doc in _POLL_COUNTERS:
            yield _counter(name, doc, labels, edge, getattr(agent.poll_stats, attr))
        yield from self._poll_latency(edge)
        online = GaugeMetricFamily("greenguard_edge_device_online",
                                   "1 if the device's last read succeeded, 0 if it failed "
                                   "(absent before its first read)", labels=["edge", "device"])
        for scheduler in agent.schedulers:
            for dev in scheduler.devices:
                if dev.online is not None:
                    online.add_metric([*edge, dev.driver.id], 1.0 if dev.online else 0.0)
        yield online
        yield from _per_device(agent, edge)
        yield from self._outbox(labels, edge)
        stats = agent.uplink.stats
        for name, attr, doc in _UPLINK_COUNTERS:
            yield _counter(name, doc, labels, edge, getattr(stats, attr))
        yield _gauge("uplink_connected", "1 while connected to the broker", labels, edge,
                     1.0 if stats.connected else 0.0)
        yield _gauge("uplink_in_flight_batches", "Backlog batches sent and not yet acked",
                     labels, edge, stats.in_flight_batches)
        yield _gauge("uplink_unacked_seqs",
                     "Seqs published but not yet acknowledged (last sent minus acked)",
                     labels, edge, max(0, stats.last_sent_seq - agent.outbox.acked_upto))
        clock = agent.uplink.clock
        jumps = getattr(clock, "jumps", None)
        if isinstance(jumps, int):
            yield _counter("clock_jumps", "Steps of the wall clock against the monotonic "
                           "clock", labels, edge, jumps)
        yield _gauge("clock_synced", "1 if the clock is believed correct", labels, edge,
                     1.0 if clock.synced else 0.0)

    def _poll_latency(self, edge: list[str]) -> Iterator[Metric]:
        stats = self.agent.poll_stats
        buckets: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*POLL_SECONDS_BUCKETS, float("inf")), stats.read_counts,
                                strict=True):
            running += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), running))
        family = HistogramMetricFamily("greenguard_edge_poll_seconds",
                                       "Duration of each device read (real time)",
                                       labels=["edge"])
        family.add_metric(edge, buckets, stats.read_seconds)
        yield family

    def _outbox(self, labels: list[str], edge: list[str]) -> Iterator[Metric]:
        outbox = self.agent.outbox
        stats = outbox.stats()
        yield _gauge("outbox_depth", "Rows waiting for the central's ack", labels, edge,
                     stats.depth)
        age = 0.0 if stats.oldest_created is None else max(0.0, time.time()
                                                           - stats.oldest_created)
        yield _gauge("outbox_oldest_age_seconds", "Age of the oldest unacknowledged row "
                     "(0 when empty)", labels, edge, age)
        dropped = CounterMetricFamily("greenguard_edge_outbox_dropped",
                                      "Rows dropped by the overflow policy (gap markers sent)",
                                      labels=["edge", "kind"])
        dropped.add_metric([*edge, "sample"], stats.dropped_samples)
        dropped.add_metric([*edge, "other"], stats.dropped_other)
        yield dropped
        yield _counter("outbox_write_failures", "Appends that failed (disk full, I/O error)",
                       labels, edge, outbox.write_failures)
        yield _gauge("outbox_last_seq", "Last seq assigned", labels, edge, stats.last_seq)
        yield _gauge("outbox_disk_pressure", "1 while new records are refused for lack of "
                     "disk space", labels, edge, int(stats.disk_pressure))
        yield _counter("outbox_refused_records", "Records refused under disk pressure "
                       "(counted by seq in dropped ranges)", labels, edge,
                       stats.refused_records)
        yield _gauge("outbox_acked_seq", "Seq the central acknowledged up to", labels, edge,
                     stats.acked_upto)


_DEVICE_COUNTERS = (
    ("device_polls", "polls", "Reads of this device attempted"),
    ("device_poll_failures", "poll_failures", "Reads of this device that failed (timeout, "
     "garbled answer, device-level exception)"),
    ("device_bad_values", "bad_values", "Points of this device that did not decode or whose "
     "register was refused (Modbus exception 01/02/03)"),
)


def _per_device(agent: Observed, edge: list[str]) -> Iterator[Metric]:
    """Counters with a `device` label, so one failing meter is visible as itself."""
    devices = [dev for scheduler in agent.schedulers for dev in scheduler.devices]
    for name, attr, doc in _DEVICE_COUNTERS:
        family = CounterMetricFamily(f"greenguard_edge_{name}", doc, labels=["edge", "device"])
        for dev in devices:
            family.add_metric([*edge, dev.driver.id], getattr(dev, attr))
        yield family
    alarm = GaugeMetricFamily("greenguard_edge_device_offline_alarm",
                              "1 while alarm.device_offline is raised for the device",
                              labels=["edge", "device"])
    for dev in devices:
        alarm.add_metric([*edge, dev.driver.id], 1.0 if dev.alarmed else 0.0)
    yield alarm


def _counter(name: str, doc: str, labels: list[str], values: list[str],
             value: float) -> CounterMetricFamily:
    family = CounterMetricFamily(f"greenguard_edge_{name}", doc, labels=labels)
    family.add_metric(values, value)
    return family


def _gauge(name: str, doc: str, labels: list[str], values: list[str],
           value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(f"greenguard_edge_{name}", doc, labels=labels)
    family.add_metric(values, value)
    return family


def registry_for(agent: Observed) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EdgeCollector(agent))
    return registry


async def serve_metrics(agent: Observed, settings: MetricsSettings,
                        started: asyncio.Event | None = None) -> None:
    """Serve `GET /metrics` until cancelled. If the address cannot be bound, log it and
    return: the agent goes on polling and forwarding without metrics."""
    registry = registry_for(agent)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                head = await reader.readuntil(b"\r\n\r\n")
            parts = head.split(b"\r\n", 1)[0].split()
            if len(parts) >= 2 and parts[0] == b"GET" and parts[1].split(b"?")[0] == b"/metrics":
                status, ctype, body = b"200 OK", CONTENT_TYPE_LATEST, generate_latest(registry)
            else:
                status, ctype, body = b"404 Not Found", "text/plain", b"not found\n"
            writer.write(b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n" % (status, ctype.encode(), len(body)))
            writer.write(body)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError):
            pass  # a scraper that hung up or sent garbage: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    try:
        server = await asyncio.start_server(answer, settings.host, settings.port)
    except OSError as exc:  # port taken, address not ours: polling matters more than metrics
        log.error("metrics not served: cannot listen on %s:%d: %s", settings.host,
                  settings.port, exc)
        return
    log.info("metrics on http://%s:%d/metrics", settings.host, settings.port)
    if started is not None:
        started.set()
    async with server:
        await server.serve_forever()
