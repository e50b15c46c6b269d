"""`greenguard grafana export|push`: Grafana dashboards as code (docs/grafana.md).

Exit codes: 0 done; 1 `export --check` found stale files, or Grafana refused / could not be
reached; 2 usage error (such as the token variable not being set).
"""

from __future__ import annotations

import argparse
import os
import sys
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
