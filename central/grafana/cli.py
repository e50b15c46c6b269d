"""`greenguard grafana export|push|publish`: Grafana dashboards and alert rules as code, and
a backfill of the central's published figures (docs/grafana.md).

Exit codes: 0 done; 1 `export --check` found stale files, Grafana refused / could not be
reached, or InfluxDB refused the figures; 2 usage or configuration error (such as the token
variable not being set, or no telemetry store configured).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date, datetime
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="grafana_command", metavar="ACTION", required=True)
    export = sub.add_parser("export", help="write the dashboards' JSON and the alert rules "
                            "for file provisioning",
                            description="Write one JSON file per dashboard, and the alert "
                            "rules to DIR/../provisioning/alerting/greenguard.yaml.")
    export.add_argument("--out", type=Path, default=Path("deploy/grafana/dashboards"),
                        metavar="DIR", help="directory (default deploy/grafana/dashboards)")
    export.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the files differ from the code")
    publish = sub.add_parser(
        "publish", help="compute the central's figures and write them to InfluxDB (backfill)",
        description="Compute the figures of every day from --since to --as-of (default "
        "now) and write them to the configured telemetry store, as the running central does "
        "for today and the days new data touches. Reads the same settings as `greenguard "
        "central` (GREENGUARD_* variables, GREENGUARD_TELEMETRY__*).")
    publish.add_argument("--config", "-c", dest="institution_config", type=Path,
                         metavar="PATH", help="institution YAML or the central's directory")
    publish.add_argument("--db", dest="database", type=Path, metavar="PATH",
                         help="SQLite database (default central.sqlite)")
    publish.add_argument("--ledger-db", dest="ledger_database", type=Path, metavar="PATH",
                         help="ledger database (default <db>.ledger.sqlite)")
    publish.add_argument("--since", type=date.fromisoformat, metavar="YYYY-MM-DD",
                         help="first local day to publish (default: 1 January)")
    publish.add_argument("--as-of", dest="as_of", type=datetime.fromisoformat,
                         metavar="ISO-TIME", help="publish as of this moment (default now)")
    push = sub.add_parser("push", help="create or overwrite the dashboards on a Grafana server",
                          description="Push the dashboards with grafana-client.")
    push.add_argument("--url", required=True, help="Grafana base URL, e.g. http://grafana:3000")
    push.add_argument("--token-env", default="GRAFANA_TOKEN", metavar="VAR",
                      help="environment variable holding a service-account token "
                           "(default GRAFANA_TOKEN)")
    push.add_argument("--folder-uid", default=None, metavar="UID",
                      help="folder to put the dashboards in (default greenguard)")
    push.add_argument("--timeout", type=float, default=10.0, metavar="S",
                      help="HTTP timeout per request (default 10)")


def run(args: argparse.Namespace) -> int:
    if args.grafana_command == "publish":
        return _publish(args)
    from central.grafana.export import ALERTS_FILE, alerts_path, dashboards, export, stale

    if args.grafana_command == "export":
        if args.check:
            bad = stale(args.out)
            for name in bad:
                path = (alerts_path(args.out) if name == str(ALERTS_FILE)
                        else args.out / name)
                print(f"{path}: differs from the code; run greenguard grafana export",
                      file=sys.stderr)
            return 1 if bad else 0
        for path in export(args.out):
            print(path)
        return 0
    from central.grafana.push import FOLDER_UID, GrafanaError, push

    token = os.environ.get(args.token_env, "").strip()
    if not token:
        print(f"error: environment variable {args.token_env} is not set: it must hold a "
              "Grafana service-account token", file=sys.stderr)
        return 2
    try:
        pushed = push(args.url, token, dashboards(),
                      folder_uid=args.folder_uid or FOLDER_UID, timeout_s=args.timeout)
    except GrafanaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for p in pushed:
        print(f"{p.slug}: uid {p.uid} version {p.version} {p.url or ''}".rstrip())
    return 0


def _publish(args: argparse.Namespace) -> int:
    from central.backend import open_ledgers, open_reader
    from central.config import load_settings
    from central.errors import CentralError, ConfigError
    from central.figures_export import FiguresPublisher, Tenancy
    from central.influx import InfluxTelemetry, influx_token
    from central.institution import load_institutions
    from central.profile import check_profile, load_profile
    from protocols.clock import SystemClock

    try:
        settings = load_settings(institution_config=args.institution_config,
                                 database=args.database, ledger_database=args.ledger_database)
        if settings.telemetry is None:
            raise ConfigError("settings", [("telemetry", None, "no telemetry store is "
                                            "configured (GREENGUARD_TELEMETRY__URL ...)")])
        token = influx_token(settings.telemetry) or ""
        institutions = load_institutions(settings.institution_config)
        profiles = []
        for institution in institutions:
            profiles.append(load_profile(institution.institution.coefficient_profile))
            check_profile(institution, profiles[-1])
        tenants = [Tenancy(institution, profile, ledger) for institution, profile, ledger in zip(
            institutions, profiles, open_ledgers(settings, [
                i.institution.id for i in institutions]), strict=True)]
        now = args.as_of.timestamp() if args.as_of else SystemClock().now()
        influx = InfluxTelemetry(settings.telemetry, token)
        try:
            with open_reader(settings) as store:
                publisher = FiguresPublisher(store, tenants, influx)
                tz = institutions[0].institution.tz
                since = args.since or date(datetime.fromtimestamp(now, tz).year, 1, 1)
                publisher.mark_since(since, now)
                lines = publisher.publish(now)
        finally:
            influx.close()
            for t in tenants:
                if t.ledger is not None:
                    t.ledger.close()
    except CentralError as exc:
        kind = "configuration error" if isinstance(exc, ConfigError) else "error"
        print(f"{kind}: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    print(f"published {lines:,} points")
    return 0
