"""Prometheus self-monitoring of the central: `GET /metrics` in the text exposition format.

Everything is read at scrape time from what ingest already counts (`IngestStats`) and from
the store's edge table, through a collector on the app's own registry: nothing is counted
twice, no global state is shared between apps (tests build many), and a scrape costs one
small query. Metric names follow Prometheus conventions (`_total` counters, base units).

The route needs no token: scrapers rarely hold bearer tokens. So by default it carries only
the central's own counters (ingest, MQTT, store up) and no institution's edges: the per-edge
gauges (`greenguard_edge_last_seen_timestamp_seconds`, `greenguard_edge_online`, labelled
with site and edge) would tell any caller which edges of which institutions this central
serves. The operator turns them on with `metrics_edges` (GREENGUARD_METRICS_EDGES=true)
when `/metrics` is reachable only by the scraper: the embedded default listens on
127.0.0.1; when the API is exposed, let the reverse proxy refuse `/metrics` to anyone but
the scraper (docs/monitoring.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from central.errors import StoreError
from central.ingest import STORE_WRITE_BUCKETS_S, IngestStats
from central.store import Store
from central.storeport import EdgeState, StoreReader

_COUNTERS = (
    ("ingest_messages", "received", "MQTT uplink messages handled"),
    ("ingest_batches", "batches", "Batches committed to the store"),
    ("ingest_records", "stored_records", "Records newly stored (or newer interval versions)"),
    ("ingest_duplicates", "duplicates", "Records already stored, absorbed by dedup (stream, seq)"),
    ("ingest_dead_letters", "dead_letters", "Payloads refused and poison records quarantined"),
    ("ingest_store_errors", "store_errors", "Store writes that failed (nothing acknowledged)"),
    ("ingest_acks", "acks_sent", "Acks published after a commit"),
    ("ingest_births", "births", "Edge birth messages"),
    ("ingest_deaths", "deaths", "Edge death (will) messages"),
    ("mqtt_connects", "connects", "MQTT connections established"),
    ("mqtt_disconnects", "disconnects", "MQTT connections lost"),
)
_CLOCK = (("unsynced", "clock_unsynced"), ("future", "clock_future"),
          ("far_past", "clock_far_past"))


class CentralCollector(Collector):
    def __init__(self, stats: IngestStats | None, store: StoreReader | str | Path, *,
                 edges: bool = False) -> None:
        self.stats = stats
        self.store = store
        self.edges = edges

    def collect(self) -> Iterator[Metric]:
        if self.stats is not None:
            yield from self._ingest(self.stats)
        yield from self._edges()

    def _ingest(self, stats: IngestStats) -> Iterator[Metric]:
        for name, attr, doc in _COUNTERS:
            yield CounterMetricFamily(f"greenguard_{name}", doc, value=getattr(stats, attr))
        clock = CounterMetricFamily(
            "greenguard_ingest_clock_records",
            "Records stored with a clock problem (flagged, never dropped)", labels=["problem"])
        for label, attr in _CLOCK:
            clock.add_metric([label], getattr(stats, attr))
        yield clock
        yield GaugeMetricFamily("greenguard_mqtt_connected",
                                "1 while ingest is connected and subscribed",
                                value=1.0 if stats.connected else 0.0)
        buckets: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*STORE_WRITE_BUCKETS_S, float("inf")),
                                stats.store_write_counts, strict=True):
            running += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), running))
        yield HistogramMetricFamily(
            "greenguard_store_write_seconds",
            "Duration of each store transaction of ingest (one group of batches)",
            buckets=buckets, sum_value=stats.store_write_seconds)

    def _edges(self) -> Iterator[Metric]:
        try:
            edges = self._read_edges()
        except StoreError:
            yield GaugeMetricFamily("greenguard_store_up", "1 if the store answered",
                                    value=0.0)
            return
        yield GaugeMetricFamily("greenguard_store_up", "1 if the store answered", value=1.0)
        if not self.edges:
            return
        seen = GaugeMetricFamily(
            "greenguard_edge_last_seen_timestamp_seconds",
            "When the central last stored data from the edge (central clock, POSIX s)",
            labels=["site", "edge"])
        online = GaugeMetricFamily(
            "greenguard_edge_online",
            "1 after the edge's birth, 0 after its death (will); absent before either",
            labels=["site", "edge"])
        for edge in edges:
            if edge.last_seen is not None:
                seen.add_metric([edge.site, edge.edge], edge.last_seen)
            if edge.online is not None:
                online.add_metric([edge.site, edge.edge], 1.0 if edge.online else 0.0)
        yield seen
        yield online

    def _read_edges(self) -> list[EdgeState]:
        """Every edge of the store (the store answers even when they are not shown)."""
        if not isinstance(self.store, str | Path):
            return self.store.edges()
        with Store(self.store, readonly=True) as reader:
            return reader.edges()


def add_metrics_route(app: FastAPI, stats: IngestStats | None,
                      store: StoreReader | str | Path, *, edges: bool = False
                      ) -> CollectorRegistry:
    """Serve `GET /metrics` from `app`; returns the registry (to add more collectors).
    `edges`: also the per-edge gauges (the operator's choice, see the module docstring)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CentralCollector(stats, store, edges=edges))

    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
    return registry
