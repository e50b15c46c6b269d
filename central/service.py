"""The central process: ingest and the HTTP server as two named tasks of one TaskGroup.

Configuration is loaded and checked before any socket is opened (a typo in the institution
file fails at start-up, naming the field). Cancelling `run_central` stops both tasks:
ingest leaves its `async with aiomqtt.Client` (clean MQTT disconnect) and uvicorn is asked
to exit and allowed to close its sockets, instead of being torn down mid-await.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import uvicorn

from central.admission import GuardSettings, IngestGuard, edge_keys_from, sites_from
from central.api import Tenant, create_app
from central.auth import Authenticator, TokenTable, check_secret
from central.backend import (
    open_commands,
    open_ingest_store,
    open_ledgers,
    open_reader,
    open_tokens,
)
from central.commands import CommandService, CommandTable, MqttCommandLink
from central.config import CentralSettings
from central.control import load_signer
from central.errors import HttpServerError
from central.figures_export import FiguresPublisher, PublishingTelemetry, Tenancy
from central.influx import InfluxTelemetry, influx_token
from central.ingest import Ingestor, IngestStats, MqttOptions, run_ingest, tls_parameters
from central.institution import InstitutionConfig, load_institutions
from central.ledger import Ledger
from central.notify.hook import AlarmFeed
from central.notify.notifier import Notifier
from central.notify.service import digest_source, open_notifier
from central.profile import CoefficientProfile, check_profile, load_profile
from central.storeport import IngestStore, StoreReader
from central.telemetry import DeviceTags, TelemetryStore
from central.uploads import UploadLimits
from protocols.clock import Clock

log = logging.getLogger(__name__)


async def _serve_http(server: uvicorn.Server) -> None:
    async def guarded() -> None:
        try:
            await server.serve()
        except SystemExit:  # uvicorn exits the process when it cannot bind
            raise HttpServerError(
                f"cannot listen on {server.config.host}:{server.config.port}") from None

    inner = asyncio.create_task(guarded(), name="central.http.serve")
    try:
        await asyncio.shield(inner)
    except asyncio.CancelledError:
        server.should_exit = True
        await asyncio.wait([inner])
        if not inner.cancelled() and inner.exception() is not None:
            log.warning("HTTP server stopped with %r", inner.exception())
        raise


async def _announce(server: uvicorn.Server, subscribed: asyncio.Event,
                    ready: asyncio.Event) -> None:
    await subscribed.wait()
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.02)
    ready.set()


async def _log_lifecycle(server: uvicorn.Server, subscribed: asyncio.Event,
                         settings: CentralSettings) -> None:
    """The INFO lines an operator looks for: broker reached, URL served, how to get in."""
    await subscribed.wait()
    log.info("connected to broker %s:%s, subscribed", settings.mqtt_host, settings.mqtt_port)
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.02)
    url = f"http://{settings.http_host}:{settings.http_port}"
    log.info("listening on %s (API docs: %s/docs)", url, url)
    log.info("dashboard: %s/ (create a token with `greenguard central create-token --name "
             "NAME --role viewer` and the same --config and --auth-secret-file; the first "
             "admin: `greenguard central bootstrap-admin`)", url)


def load_checked(settings: CentralSettings
                 ) -> tuple[list[tuple[InstitutionConfig, CoefficientProfile]], str]:
    """Institutions with their profiles, and the signing secret; `ConfigError` if any is
    wrong. No socket or database is opened."""
    loaded = []
    for institution in load_institutions(settings.institution_config):
        profile = load_profile(institution.institution.coefficient_profile)
        check_profile(institution, profile)
        loaded.append((institution, profile))
    return loaded, check_secret(settings.auth_secret_value())


async def run_central(settings: CentralSettings, clock: Clock, *,
                      ready: asyncio.Event | None = None,
                      stats: IngestStats | None = None) -> None:
    """Run until cancelled. `ready` is set once MQTT is subscribed and HTTP listens.
    Refuses to start (`ConfigError`) without a generated signing secret."""
    loaded, secret = load_checked(settings)
    stats = stats if stats is not None else IngestStats()
    telemetry_token = influx_token(settings.telemetry)  # a missing token fails before I/O
    mqtt_password = settings.mqtt_secret()  # read once, and a bad file fails before I/O
    closing: list[IngestStore | Ledger | StoreReader | TelemetryStore | TokenTable
                  | CommandTable | Notifier] = []
    try:
        # Alarm notifications: notify.yaml checked (and secrets read) before the stores open.
        notifier = open_notifier(settings, [i for i, _ in loaded], clock, secret)
        if notifier is not None:
            closing.append(notifier)
        # Daily rollups follow the institutions' local days (one zone: China's).
        store = open_ingest_store(settings,
                                  rollup_timezone=loaded[0][0].institution.timezone)
        closing.append(store)
        # SQLite: every API request opens its own read-only connection on the file.
        # PostgreSQL: the API shares one read-only connection of its own.
        reader: StoreReader | Path = settings.database
        if settings.store == "postgres":
            reader = open_reader(settings)
            closing.append(reader)
        ledgers = open_ledgers(settings, [i.institution.id for i, _ in loaded])
        closing += ledgers
        tenants = [Tenant(institution, profile, book_of)
                   for (institution, profile), book_of in zip(loaded, ledgers, strict=True)]
        tokens = open_tokens(settings)
        closing.append(tokens)
        auth = Authenticator(secret, tokens)
        book = open_commands(settings)
        closing.append(book)
        tls = tls_parameters(settings.mqtt_ca_file, settings.mqtt_cert_file,
                             settings.mqtt_key_file)
        signer = load_signer(settings.control_key_path)
        link = MqttCommandLink(settings.mqtt_host, settings.mqtt_port,
                               f"{settings.mqtt_client_id}-cmd",
                               keepalive_s=settings.mqtt_keepalive_s, tls=tls, signer=signer,
                               username=settings.mqtt_username,
                               password=mqtt_password)
        telemetry: TelemetryStore | None = None
        publisher: FiguresPublisher | None = None
        if settings.telemetry is not None and telemetry_token is not None:
            influx = InfluxTelemetry(settings.telemetry, telemetry_token,
                                     places=DeviceTags.from_institutions(
                                         [i for i, _ in loaded]))
            closing.append(influx)
            telemetry = influx
            if settings.telemetry.figures_every_s > 0:  # docs/influxdb.md "Figures"
                figures_reader = open_reader(settings)
                closing.append(figures_reader)
                # its own client: a refused figure write must not cool down ingest's writes
                figures_sink = InfluxTelemetry(settings.telemetry, telemetry_token)
                closing.append(figures_sink)
                publisher = FiguresPublisher(figures_reader, [
                    Tenancy(t.config, t.profile, t.ledger) for t in tenants], figures_sink)
                telemetry = PublishingTelemetry(influx, publisher)
        feed = AlarmFeed(notifier, [i for i, _ in loaded]) if notifier is not None else None
        guard = IngestGuard(sites_from(i for i, _ in loaded), store,
                            GuardSettings(max_seq_ahead=settings.ingest_max_seq_ahead),
                            edge_keys_from(i for i, _ in loaded))
        ingestor = Ingestor(store, clock, stats, telemetry, guard, signer, on_stored=feed)
        app = create_app(reader, tenants, clock, auth, stats,
                         commands=CommandService(book, link),
                         metrics_edges=settings.metrics_edges,
                         upload_limits=UploadLimits.of(settings.http_max_body_bytes,
                                                       settings.http_max_import_bytes))
        app.state.notifier = notifier
        if notifier is not None:  # the liaison's daily digest reads the stores
            notifier.digests = digest_source(reader, [(t.config, t.profile, t.ledger)
                                                      for t in tenants])
        app.state.upload_database = settings.database  # central/api/routes/upload.py
        server = uvicorn.Server(uvicorn.Config(
            app, host=settings.http_host, port=settings.http_port, log_level="warning",
            log_config=None, lifespan="off", timeout_graceful_shutdown=5))
        options = MqttOptions(host=settings.mqtt_host, port=settings.mqtt_port,
                              site=settings.mqtt_site, client_id=settings.mqtt_client_id,
                              keepalive_s=settings.mqtt_keepalive_s,
                              tls=tls, share_group=settings.mqtt_share_group,
                              username=settings.mqtt_username,
                              password=mqtt_password)
        subscribed = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(run_ingest(ingestor, options, subscribed=subscribed,
                                      on_client=link.attach), name="central.ingest")
            tg.create_task(_serve_http(server), name="central.http")
            tg.create_task(_log_lifecycle(server, subscribed, settings), name="central.log")
            if publisher is not None and settings.telemetry is not None:
                tg.create_task(publisher.run(clock, settings.telemetry.figures_every_s),
                               name="central.figures")
            if ready is not None:
                tg.create_task(_announce(server, subscribed, ready), name="central.ready")
            if notifier is not None:
                tg.create_task(notifier.run(), name="central.notify")
    finally:
        for resource in closing:
            with contextlib.suppress(Exception):
                resource.close()
