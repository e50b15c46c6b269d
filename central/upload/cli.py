"""`greenguard upload`: the platform uploader as its own process.

    greenguard upload --config institution.yaml --city city.yaml [--db central.sqlite]
                      [--state PATH] [--institution ID] [--metrics-port 9108] [--check]

It reads the central's store (read-only, the same `--db`/`--store` settings as
`greenguard central`) through the institution's `TenantReader`, keeps its cursor and log in
`<db>.upload.<institution id>.sqlite` (the central's API shows that file at
`/api/v1/institutions/{iid}/upload`), and serves its counters on `/metrics` when given a
port. A separate process, so that a hung platform or a slow backlog never holds up ingest,
and so that it is started only where the city has given an access document.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from central.backend import open_reader
from central.config import load_settings
from central.errors import CentralError, ConfigError
from central.institution import InstitutionConfig, load_institutions
from central.reader import TenantReader
from central.upload.city import load_city, read_secret, wire_settings
from central.upload.items import plan_items
from central.upload.state import UploadState, upload_state_path
from central.upload.uploader import Uploader
from protocols.clock import SystemClock
from protocols.platform.codec import PlatformCodec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", dest="institution_config", type=Path, required=True,
                        metavar="PATH", help="institution YAML (or a directory of them)")
    parser.add_argument("--city", type=Path, required=True, metavar="PATH",
                        help="the city's platform YAML (docs/platform-upload.md)")
    parser.add_argument("--institution", metavar="ID",
                        help="which institution, when --config holds several")
    parser.add_argument("--db", dest="database", type=Path, metavar="PATH",
                        help="the central's SQLite store (default central.sqlite)")
    parser.add_argument("--store", choices=("sqlite", "postgres"))
    parser.add_argument("--postgres-dsn", metavar="DSN")
    parser.add_argument("--postgres-password-file", type=Path, metavar="PATH")
    parser.add_argument("--state", type=Path, metavar="PATH",
                        help="cursor and upload log (default <db>.upload.<institution>.sqlite)")
    parser.add_argument("--metrics-port", type=int, metavar="PORT",
                        help="serve /metrics (greenguard_upload_*) on 127.0.0.1:PORT")
    parser.add_argument("--check", action="store_true",
                        help="check the city file, the key and the item plan, then exit")


def _institution(path: Path, wanted: str | None) -> InstitutionConfig:
    found = load_institutions(path)
    if wanted is None and len(found) == 1:
        return found[0]
    for inst in found:
        if inst.institution.id == wanted:
            return inst
    ids = ", ".join(i.institution.id for i in found)
    raise ConfigError(str(path), [("--institution", wanted, f"name one of: {ids}")])


def _serve_metrics(state: UploadState, uploader: Uploader, port: int) -> None:
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
    from prometheus_client.registry import Collector

    class _Upload(Collector):
        def collect(self) -> Iterator[Metric]:
            c = CounterMetricFamily("greenguard_upload_attempts",
                                    "platform upload attempts by operation and outcome",
                                    labels=["operation", "outcome"])
            for name, n in sorted(state.counters().items()):
                op, _, outcome = name.partition(":")
                c.add_metric([op, outcome], n)
            yield c
            backlog = GaugeMetricFamily("greenguard_upload_backlog_periods",
                                        "closed periods not yet accepted", labels=["building"])
            last = GaugeMetricFamily("greenguard_upload_last_accepted_period_timestamp_seconds",
                                     "start of the newest accepted period",
                                     labels=["building"])
            for s in uploader.status():
                backlog.add_metric([s.building], s.backlog)
                if s.last_accepted is not None:
                    last.add_metric([s.building], s.last_accepted / 1000)
            yield backlog
            yield last

    registry = CollectorRegistry()
    registry.register(_Upload())
    start_http_server(port, addr="127.0.0.1", registry=registry)


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(**{k: getattr(args, k, None) for k in (
            "institution_config", "database", "store", "postgres_dsn",
            "postgres_password_file")})
        institution = _institution(settings.institution_config, args.institution)
        city = load_city(args.city)
        city.check_against(institution)
        secret = read_secret(city.encryption, str(args.city))  # also the MD5's key
        codec = PlatformCodec(wire_settings(city, secret))
        if args.check:
            for plan in plan_items(institution, city):
                print(f"{plan.building} -> {plan.ids.building_id}/{plan.ids.gateway_id}: "
                      f"{', '.join(plan.items)}")
            print(f"{city.city}: ok ({city.framing.value}, {city.period_min} min, "
                  f"encrypt {city.encryption.encrypt.value})")
            return 0
        state = UploadState(args.state or upload_state_path(settings.database,
                                                             institution.institution.id))
        store = open_reader(settings)
        try:
            uploader = Uploader(TenantReader(store, institution), institution, city, secret,
                                state, SystemClock(), codec=codec)
            if args.metrics_port is not None:
                _serve_metrics(state, uploader, args.metrics_port)
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(uploader.run())
        finally:
            store.close()
            state.close()
    except CentralError as exc:
        kind = "configuration error" if isinstance(exc, ConfigError) else "error"
        print(f"{kind}: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    return 0
