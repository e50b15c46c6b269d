"""`greenguard central ...`: run the aggregator on the system clock.

`simulators.cli` builds the subcommand with `add_arguments` and calls `run`; `main` is the
same thing standalone (`python -m central.cli`). Flags override GREENGUARD_* environment
variables. Exit codes: 0 stopped by Ctrl-C / SIGTERM (or `--check` passed), 2 configuration
error (the message names the field and value), 1 other failure such as a port in use.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from central.config import CentralSettings, load_institution, load_settings
from central.errors import CentralError, ConfigError
from central.profile import check_profile, load_profile
from central.service import run_central
from protocols.clock import SystemClock

_SETTINGS = ("institution_config", "database", "ledger_database", "mqtt_host", "mqtt_port",
             "mqtt_site",
             "mqtt_client_id", "http_host", "http_port", "store", "postgres_dsn",
             "postgres_password_file", "mqtt_share_group")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", dest="institution_config", type=Path, metavar="PATH",
                        help="institution YAML (env GREENGUARD_INSTITUTION_CONFIG)")
    parser.add_argument("--db", dest="database", type=Path, metavar="PATH",
                        help="SQLite database (default central.sqlite)")
    parser.add_argument("--ledger-db", dest="ledger_database", type=Path, metavar="PATH",
                        help="SQLite ledger of bills, fuel and waste entries "
                             "(default <db>.ledger.sqlite)")
    parser.add_argument("--mqtt-host", metavar="HOST", help="default 127.0.0.1")
    parser.add_argument("--mqtt-port", type=int, metavar="PORT", help="default 1883")
    parser.add_argument("--site", dest="mqtt_site", metavar="SITE",
                        help="site id to ingest, '+' for all (default)")
    parser.add_argument("--client-id", dest="mqtt_client_id", metavar="ID",
                        help="MQTT client id; keep it stable so the broker queues uplink "
                             "while the central restarts")
    parser.add_argument("--http-host", metavar="HOST", help="default 127.0.0.1")
    parser.add_argument("--http-port", type=int, metavar="PORT", help="default 8080")
    parser.add_argument("--store", choices=("sqlite", "postgres"),
                        help="store backend (default sqlite; env GREENGUARD_STORE)")
    parser.add_argument("--postgres-dsn", metavar="DSN",
                        help="libpq connection string without password, e.g. "
                             "'host=db dbname=greenguard user=greenguard'")
    parser.add_argument("--postgres-password-file", type=Path, metavar="PATH",
                        help="file holding the PostgreSQL password (or env "
                             "GREENGUARD_POSTGRES_PASSWORD)")
    parser.add_argument("--share-group", dest="mqtt_share_group", metavar="GROUP",
                        help="MQTT 5 shared subscription group: workers of one group "
                             "share the uplink (docs/scale-out.md)")
    parser.add_argument("--check", action="store_true",
                        help="validate settings, institution config and profile, then exit")


def _leaves(exc: BaseException) -> list[BaseException]:
    """The errors inside (nested) exception groups raised by the TaskGroup."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


async def _run_until_signalled(settings: CentralSettings) -> None:
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
    try:
        await run_central(settings, SystemClock())
    except asyncio.CancelledError:
        return


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(**{k: getattr(args, k, None) for k in _SETTINGS})
        if args.check:
            institution = load_institution(settings.institution_config)
            check_profile(institution,
                          load_profile(institution.institution.coefficient_profile))
            print(f"{settings.institution_config}: ok ({len(institution.buildings)} "
                  f"buildings, {len(institution.meters)} meters)")
            return 0
        asyncio.run(_run_until_signalled(settings))
    except Exception as exc:
        errors = _leaves(exc)
        if not all(isinstance(e, CentralError) for e in errors):
            raise
        for e in errors:
            kind = "configuration error" if isinstance(e, ConfigError) else "error"
            print(f"{kind}: {e}", file=sys.stderr)
        return 2 if any(isinstance(e, ConfigError) for e in errors) else 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point; `argv` are the arguments after `greenguard central`."""
    parser = argparse.ArgumentParser(prog="greenguard central",
                                     description="Run the central aggregator: MQTT ingest, "
                                     "SQLite store, compliance API and built-in page.")
    add_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
