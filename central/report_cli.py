"""`greenguard report ...`: produce a report from the central's database and ledger.

    greenguard report monthly --config institution.yaml --year 2025 --month 3
    greenguard report monthly --config institution.yaml      # this month so far
    greenguard report annual --year 2025 --format pdf --lang en -o annual-2025.pdf
    greenguard report ledger --year 2025 -o ledger.xlsx
    greenguard report import fuel --file receipts.xlsx      # all rows, or none

Reads the same settings as `greenguard central` (flags or GREENGUARD_* variables), opens the
telemetry store read-only, and never needs the broker. Exit codes: 0 written, 2 a bad
configuration, choice or refused import (the message names the field, row and value).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from central.backend import open_ledger, open_reader
from central.config import load_settings
from central.entries import import_rows
from central.errors import CentralError, ConfigError, EntryError, ReportError
from central.institution import InstitutionConfig, load_institutions
from central.ledger import EntryKind, Ledger
from central.profile import CoefficientProfile, check_profile, load_profile
from central.reader import scoped
from central.report_output import FORMATS, produce
from protocols.clock import SystemClock


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("report", choices=[*FORMATS, "import"],
                        help="which report, or `import` to load ledger entries from a file")
    parser.add_argument("kind", nargs="?", choices=[k.value for k in EntryKind],
                        help="for import: bill, fuel, clearance or hazardous")
    parser.add_argument("--config", "-c", dest="institution_config", type=Path,
                        metavar="PATH", help="institution YAML, or the central's directory "
                        "of them (then name one with --institution)")
    parser.add_argument("--institution", metavar="ID",
                        help="which institution of a --config directory")
    parser.add_argument("--db", dest="database", type=Path, metavar="PATH",
                        help="SQLite database (default central.sqlite)")
    parser.add_argument("--ledger-db", dest="ledger_database", type=Path, metavar="PATH",
                        help="ledger database (default <db>.ledger.sqlite)")
    parser.add_argument("--year", type=int, help="default: this year")
    parser.add_argument("--month", "--number", dest="number", type=int, metavar="N",
                        help="monthly: month 1..12 (default: this month so far; December "
                        "for an earlier --year)")
    parser.add_argument("--quarter", dest="quarter", type=int, metavar="N",
                        help="quarterly: quarter 1..4 (default: this quarter so far; Q4 for "
                        "an earlier --year)")
    parser.add_argument("--lang", choices=["zh", "en"], default="zh")
    parser.add_argument("--format", dest="fmt", help="html, pdf, xlsx or json; default the "
                        "report's first (monthly html, annual html, ledger xlsx)")
    parser.add_argument("--output", "-o", type=Path, help="file to write (default stdout "
                        "for text, the report's file name for binary formats)")
    parser.add_argument("--file", type=Path, help="for import: a .csv or .xlsx file")


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(institution_config=args.institution_config,
                                 database=args.database,
                                 ledger_database=args.ledger_database)
        institutions = load_institutions(settings.institution_config)
        institution = _choose(institutions, args.institution)
        profile = load_profile(institution.institution.coefficient_profile)
        check_profile(institution, profile)
        ledger = open_ledger(settings, institution.institution.id,
                             only=len(institutions) == 1)
        try:
            if args.report == "import":
                return _import(args, ledger, institution, profile)
            now = SystemClock().now()
            today = datetime.fromtimestamp(now, institution.institution.tz)
            year = args.year or today.year
            number = _period_number(args, today, year)
            fmt = args.fmt or FORMATS[args.report][0]
            with open_reader(settings) as store:
                content, _media, name = produce(
                    scoped(store, institution), ledger, institution, profile,
                    report=args.report, fmt=fmt, year=year, number=number,
                    lang=args.lang, now=now)
        finally:
            ledger.close()
    except CentralError as exc:
        kind = "configuration error" if isinstance(exc, ConfigError) else "error"
        print(f"{kind}: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError | EntryError | ReportError) else 1
    if args.output is None and fmt in ("html", "json"):
        sys.stdout.write(content.decode())
        return 0
    target = args.output or Path(name)
    target.write_bytes(content)
    print(f"wrote {target} ({len(content):,} bytes)")
    return 0


def _period_number(args: argparse.Namespace, today: datetime, year: int) -> int | None:
    """The month (monthly) or quarter (quarterly) asked for, or the sensible default: the
    current one so far in the current year, the year's last one in an earlier year."""
    if args.report == "quarterly" and args.quarter is not None:
        return int(args.quarter)
    if args.report not in ("monthly", "quarterly"):
        return args.number if isinstance(args.number, int) else None
    if args.number is not None:
        return int(args.number)
    if args.report == "monthly":
        return today.month if year == today.year else 12
    return (today.month - 1) // 3 + 1 if year == today.year else 4


def _choose(institutions: list[InstitutionConfig], wanted: str | None) -> InstitutionConfig:
    """The one institution of the file, or the one `--institution` names in a directory (the
    same per-institution ledger the central uses)."""
    ids = [i.institution.id for i in institutions]
    if wanted is None:
        if len(institutions) == 1:
            return institutions[0]
        raise ConfigError("arguments", [("--institution", None,
                                         f"the config directory holds {len(ids)} "
                                         f"institutions; name one of {', '.join(ids)}")])
    for i in institutions:
        if i.institution.id == wanted:
            return i
    raise ConfigError("arguments", [("--institution", wanted, f"not one of {', '.join(ids)}")])


def _import(args: argparse.Namespace, ledger: Ledger, institution: InstitutionConfig,
            profile: CoefficientProfile) -> int:
    if args.kind is None or args.file is None:
        raise ReportError("import needs a kind (bill, fuel, clearance, hazardous) and --file")
    fmt = args.file.suffix.lower().lstrip(".")
    try:
        with args.file.open("rb") as f:  # streamed: the row cap applies while reading
            done = import_rows(ledger, EntryKind(args.kind), f, fmt, institution, profile,
                               source=str(args.file))
    except OSError as exc:
        raise ReportError(f"--file: cannot read {args.file}: {exc}") from None
    result = done.put
    encoding = f" (read as {done.encoding})" if done.encoding else ""
    print(f"{args.file}: {result.inserted} inserted, {result.updated} updated, "
          f"{result.unchanged} unchanged{encoding}")
    return 0
