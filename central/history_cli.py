"""`greenguard report import-history`: a meter's historical interval series from CSV/XLSX.

    greenguard report import-history --config institution.yaml \\
        --meter edge-1/main-meter/energy_import_kwh --file 2020-main.csv

Opens the store for writing (the same `--db` / `--store` settings as `greenguard central`;
the central may keep running: SQLite serialises the writers) and writes the rows as
interval records of the meter's history stream (central/history.py). Exit codes: 0
imported, 2 a bad configuration or a refused file (the message names row, field and value).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from central.backend import open_ingest_store
from central.config import load_settings
from central.errors import CentralError, ConfigError, EntryError, ReportError
from central.history import import_history
from central.institution import load_institutions
from central.profile import check_profile, load_profile
from central.report_cli import _choose


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["import-history"],
                        help="import a meter's historical interval series")
    parser.add_argument("--config", "-c", dest="institution_config", type=Path,
                        metavar="PATH", help="institution YAML, or the central's directory "
                        "of them (then name one with --institution)")
    parser.add_argument("--institution", metavar="ID",
                        help="which institution of a --config directory")
    parser.add_argument("--db", dest="database", type=Path, metavar="PATH",
                        help="SQLite database (default central.sqlite)")
    parser.add_argument("--meter", required=True, metavar="EDGE/DEVICE/POINT",
                        help="the configured meter the series belongs to (/POINT may be left "
                        "out when the device has one meter)")
    parser.add_argument("--file", required=True, type=Path,
                        help="a .csv or .xlsx file: start, quantity, and end or duration_s")
    parser.add_argument("--duration", type=int, metavar="SECONDS",
                        help="interval length for rows without end or duration_s "
                        "(e.g. 900)")


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(institution_config=args.institution_config,
                                 database=args.database)
        institutions = load_institutions(settings.institution_config)
        institution = _choose(institutions, args.institution)
        profile = load_profile(institution.institution.coefficient_profile)
        check_profile(institution, profile)
        fmt = args.file.suffix.lower().lstrip(".")
        store = open_ingest_store(settings, rollup_timezone=institution.institution.timezone)
        try:
            with args.file.open("rb") as f:
                done = import_history(store, institution, profile, args.meter, f, fmt,
                                      source=str(args.file),
                                      default_duration_s=args.duration)
        except OSError as exc:
            raise ReportError(f"--file: cannot read {args.file}: {exc}") from None
        finally:
            store.close()
    except CentralError as exc:
        kind = "configuration error" if isinstance(exc, ConfigError) else "error"
        print(f"{kind}: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError | EntryError | ReportError) else 1
    encoding = f" (read as {done.encoding})" if done.encoding else ""
    print(f"{args.file}: {done.rows} rows: {done.inserted} inserted, {done.updated} updated, "
          f"{done.unchanged} unchanged, {done.kept} kept (metered by the edge){encoding}")
    return 0
