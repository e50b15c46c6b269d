"""`greenguard central ...`: run the aggregator on the system clock, or manage API tokens.

`simulators.cli` builds the subcommand with `add_arguments` and calls `run`; `main` is the
same thing standalone (`python -m central.cli`). Flags override GREENGUARD_* environment
variables. Exit codes: 0 stopped by Ctrl-C / SIGTERM (or `--check` passed, or a token
action done), 2 configuration error (the message names the field and value), 1 other
failure such as a port in use.

Token actions work on the token table directly (whoever may read the central's state and
secret is its operator): `bootstrap-admin` creates the first admin token and refuses once an
active central-wide admin exists; `create-token`, `list-tokens`, `revoke-token` do the rest.
A token is printed once and never stored (only its id is).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from central.auth import Authenticator, Role
from central.backend import open_tokens
from central.config import CentralSettings, load_settings
from central.errors import CentralError, ConfigError
from central.institution import load_institutions
from central.service import load_checked, run_central
from central.workinghours import edge_calendar_yaml
from protocols.clock import SystemClock

_SETTINGS = ("institution_config", "database", "ledger_database", "mqtt_host", "mqtt_port",
             "mqtt_site", "mqtt_client_id", "http_host", "http_port", "store", "postgres_dsn",
             "postgres_password_file", "mqtt_share_group", "auth_secret_file", "auth_database",
             "metrics_edges", "notify_config",
             "control_key_file", "mqtt_username", "mqtt_password_file")
ACTIONS = ("run", "bootstrap-admin", "create-token", "list-tokens", "revoke-token",
           "edge-calendar")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=ACTIONS, default="run",
                        help="run the central (default), manage API tokens, or print "
                             "the `calendar:` section of each institution's edge.yaml")
    parser.add_argument("--config", "-c", dest="institution_config", type=Path, metavar="PATH",
                        help="institution YAML, or a directory with one YAML per institution "
                             "(env GREENGUARD_INSTITUTION_CONFIG)")
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
    parser.add_argument("--metrics-edges", action="store_const", const=True, default=None,
                        help="list the edges (site, edge labels) on the token-free /metrics; "
                             "only where the scraper alone reaches it (env "
                             "GREENGUARD_METRICS_EDGES; docs/monitoring.md)")
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
    parser.add_argument("--auth-secret-file", type=Path, metavar="PATH",
                        help="file holding the token signing secret (or env "
                             "GREENGUARD_AUTH_SECRET); required, no default")
    parser.add_argument("--auth-db", dest="auth_database", type=Path, metavar="PATH",
                        help="SQLite token table (default <db>.auth.sqlite; with --store "
                             "postgres tokens are in the database, this file copied in)")
    parser.add_argument("--notify-config", type=Path, metavar="PATH",
                        help="alarm notifications (docs/notifications.md; env "
                             "GREENGUARD_NOTIFY_CONFIG)")
    parser.add_argument("--control-key", dest="control_key_file", type=Path, metavar="PATH",
                        help="Ed25519 key signing acks and commands (default "
                             "<db>.control.key, created at first start)")
    parser.add_argument("--mqtt-username", metavar="USER",
                        help="MQTT user name for a broker with a password file")
    parser.add_argument("--mqtt-password-file", type=Path, metavar="PATH",
                        help="file holding the MQTT password (or env GREENGUARD_MQTT_PASSWORD)")
    parser.add_argument("--check", action="store_true",
                        help="validate settings, institution config and profile, then exit")
    tokens = parser.add_argument_group("token actions")
    tokens.add_argument("--name", help="create-token / bootstrap-admin: who holds the token")
    tokens.add_argument("--role", choices=[r.value for r in Role], default=Role.VIEWER.value,
                        help="create-token: role (default viewer)")
    tokens.add_argument("--institution", dest="institutions", action="append",
                        metavar="ID", help="create-token: an institution the token may see "
                        "(repeat for several; none: every institution)")
    tokens.add_argument("--ttl-days", type=float, metavar="DAYS",
                        help="create-token: lifetime (default: until revoked)")
    tokens.add_argument("--id", dest="token_id", metavar="ID", help="revoke-token: token id")


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


def _tokens(settings: CentralSettings, args: argparse.Namespace) -> int:
    loaded, secret = load_checked(settings)
    known = {i.institution.id for i, _ in loaded}
    store = open_tokens(settings)
    try:
        auth = Authenticator(secret, store)
        if args.action == "list-tokens":
            for t in store.all():
                scope = "all" if t.institutions is None else ",".join(t.institutions)
                state = ("revoked" if t.revoked is not None else
                         "expired" if not t.active else "active")
                print(f"{t.id}  {t.role.value:<8} {state:<7} institutions={scope}  {t.name}")
            return 0
        if args.action == "revoke-token":
            if not args.token_id:
                raise ConfigError("arguments", [("--id", None, "revoke-token needs --id")])
            if not store.revoke(args.token_id, now=time.time()):
                raise ConfigError("arguments", [("--id", args.token_id, "no such token")])
            print(f"revoked {args.token_id}")
            return 0
        if args.action == "bootstrap-admin":
            admins = [t for t in store.all() if t.role is Role.ADMIN and t.institutions is None
                      and t.active]
            if admins:
                where = (str(settings.auth_path) if settings.store == "sqlite"
                         else "tokens (postgres)")
                raise ConfigError(where, [(
                    "tokens", admins[0].id, "an active admin token exists already; use "
                    "create-token, or revoke-token it first")])
            info, raw = auth.issue(args.name or "admin", Role.ADMIN, None)
        else:
            unknown = sorted(set(args.institutions or ()) - known)
            if unknown:
                raise ConfigError("arguments", [("--institution", unknown[0],
                                                 f"unknown (known: {', '.join(sorted(known))})")])
            if not args.name:
                raise ConfigError("arguments", [("--name", None, "create-token needs --name")])
            ttl = None if args.ttl_days is None else args.ttl_days * 86400
            if ttl is not None and not ttl > 0:
                raise ConfigError("arguments", [("--ttl-days", args.ttl_days, "must be > 0")])
            info, raw = auth.issue(args.name, Role(args.role), args.institutions, ttl_s=ttl)
        scope = "all" if info.institutions is None else ",".join(info.institutions)
        print(f"# token {info.id} ({info.role.value}, institutions={scope}); shown only "
              "once, keep it secret", file=sys.stderr)
        print(raw)
        return 0
    finally:
        store.close()


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(**{k: getattr(args, k, None) for k in _SETTINGS})
        action = getattr(args, "action", "run")
        if action == "edge-calendar":
            print(edge_calendar_yaml(load_institutions(settings.institution_config),
                                     getattr(args, "institutions", None)), end="")
            return 0
        if action != "run":
            return _tokens(settings, args)
        if args.check:
            loaded, _ = load_checked(settings)
            for institution, _profile in loaded:
                print(f"{institution.institution.id}: ok ({len(institution.buildings)} "
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
