"""Validation and import of ledger entries (JSON from the API, CSV or XLSX files).

Every row is checked — shape, then the registry (known building, vehicle, waste category; a
unit the profile can convert) — before anything is stored, and every problem is reported with
its row number, field and value. One bad row refuses the whole file: an energy office that
imports a month of fuel receipts must never wonder which half went in.

Files are read as streams (CSV row by row, XLSX with openpyxl's read-only mode), so the row
cap and, for XLSX, a decompression check refuse an oversized file while it is being read,
never after it is all in memory. CSV may be UTF-8 (with or without a BOM) or GBK/GB18030 as
Chinese Excel saves it; the encoding found is reported.

Files have a header row with the field names of the entry model (`ref`, `energy`,
`period_start`…; see docs/compliance.md). Empty cells are absent fields. Times without a
zone are local to the institution. Rows are numbered as a spreadsheet shows them (the
header is row 1).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import time
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

from pydantic import ValidationError

from central import codes
from central.energy import EnergyType
from central.errors import EntryError, Problem, ProfileError
from central.institution import InstitutionConfig
from central.ledger import (
    MODELS,
    Bill,
    Clearance,
    EntryKind,
    FuelEntry,
    Ledger,
    PutResult,
    _Entry,
    local_datetime,
)
from central.profile import CoefficientProfile
from central.validation import problems_from

MAX_ROWS = 100_000  # an import larger than this is refused, not truncated


def _normalise(raw: Mapping[str, Any], tz_key: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key is None or value is None or (isinstance(value, str) and not value.strip()):
            continue
        name = str(key).strip()
        if name == "time":
            if isinstance(value, str):
                with contextlib.suppress(ValueError):  # the model reports a bad one by name
                    value = datetime.fromisoformat(value.strip())
            if isinstance(value, datetime):
                value = local_datetime(value, tz_key)
        elif isinstance(value, datetime) and name in ("period_start", "period_end", "day"):
            value = value.date()  # spreadsheets store dates as datetimes
        out[name] = value
    return out


def _registry_problems(entry: _Entry, institution: InstitutionConfig,
                       profile: CoefficientProfile) -> list[tuple[str, Any, str]]:
    buildings = {b.id for b in institution.buildings}
    out: list[tuple[str, Any, str]] = []
    if isinstance(entry, Bill | Clearance) and entry.building is not None \
            and entry.building not in buildings:
        out.append(("building", entry.building,
                    f"unknown building (known: {', '.join(sorted(buildings))})"))
    if isinstance(entry, Bill):
        if entry.energy is EnergyType.WATER:
            if entry.unit not in (None, "m3"):
                out.append(("unit", entry.unit, "water is counted in m3"))
        elif entry.unit is None and entry.energy is not EnergyType.ELECTRICITY:
            out.append(("unit", None, f"a {entry.energy.value} bill needs its unit (m3, kg, "
                        "L, MJ, GJ…): none is assumed"))
        else:
            try:
                profile.kgce_per_unit(entry.energy, entry.unit)
            except ProfileError as exc:
                out.extend((f, v, r) for f, v, r in exc.problems)
    if isinstance(entry, FuelEntry):
        vehicles = {v.id for v in institution.vehicles}
        if entry.vehicle not in vehicles:
            known = ", ".join(sorted(vehicles)) or "none configured"
            out.append(("vehicle", entry.vehicle, f"unknown vehicle (known: {known})"))
    if isinstance(entry, Clearance):
        categories = codes.waste().categories
        category = categories.get(entry.category)
        if category is None:
            out.append(("category", entry.category,
                        f"unknown waste category (known: {', '.join(categories)})"))
        elif category.hazardous and not entry.manifest_no:
            out.append(("manifest_no", None, "hazardous waste needs a manifest number"))
    return out


def _overlaps(a: Bill, b: Bill) -> bool:
    return (a.energy is b.energy and a.building == b.building
            and a.period_start <= b.period_end and b.period_start <= a.period_end)


def bill_overlap_problems(bills: Sequence[tuple[str, Bill]], stored: Sequence[Bill]
                          ) -> list[Problem]:
    """A bill of the same energy, building and overlapping days as another bill (stored, or
    earlier in the same import) under another ref is refused unless it `replaces` that bill
    or is a `supplement`: the same invoice typed twice must not count twice."""
    incoming = {b.ref for _, b in bills}
    known = {b.ref: b for b in stored}
    replaced = {b.replaces for b in [*stored, *(b for _, b in bills)] if b.replaces}
    problems: list[Problem] = []
    earlier: list[Bill] = []
    for where, bill in bills:
        if bill.replaces is not None and bill.replaces not in known \
                and bill.replaces not in incoming:
            problems.append((f"{where}.replaces", bill.replaces, "no bill with this ref"))
        if not bill.supplement:
            others = [o for o in known.values() if o.ref not in incoming] + earlier
            for o in others:
                if o.ref == bill.ref or o.ref in replaced or not _overlaps(o, bill):
                    continue
                problems.append((
                    f"{where}.period_start", f"{bill.period_start}…{bill.period_end}",
                    f"overlaps bill {o.ref!r} ({o.energy.value}, building "
                    f"{o.building or '—'}, {o.period_start}…{o.period_end}); set "
                    f"replaces: {o.ref} to correct it, or supplement: true to add to it"))
        earlier.append(bill)
    return problems


def validate_entries(kind: EntryKind, rows: Iterable[Mapping[str, Any]],
                     institution: InstitutionConfig, profile: CoefficientProfile, *,
                     source: str, row_label: str = "row", first_row: int = 2,
                     ledger: Ledger | None = None) -> list[_Entry]:
    """All rows as entries, or `EntryError` listing every problem of every row. `rows` may
    be a stream: it is read once, and refused at row MAX_ROWS + 1. With the `ledger`, bills
    are checked against the bills stored in it (`bill_overlap_problems`)."""
    if isinstance(rows, Sized) and len(rows) > MAX_ROWS:
        raise EntryError(source, [("<rows>", len(rows), f"more than {MAX_ROWS} rows")])
    model = MODELS[kind]
    tz_key = institution.institution.timezone
    problems: list[Problem] = []
    entries: list[_Entry] = []
    wheres: list[str] = []
    refs: dict[str, int] = {}
    for i, raw in enumerate(rows):
        if i >= MAX_ROWS:
            raise EntryError(source, [("<rows>", f"more than {MAX_ROWS}",
                                       f"more than {MAX_ROWS} rows")])
        n = i + first_row
        where = f"{row_label}[{n}]" if row_label.isidentifier() and row_label != "row" \
            else f"{row_label} {n}"
        try:
            entry = model.model_validate(_normalise(raw, tz_key))
        except ValidationError as exc:
            problems.extend((f"{where}.{f}" if f != "<root>" else where, v, r)
                            for f, v, r in problems_from(exc))
            continue
        if entry.ref in refs:
            problems.append((f"{where}.ref", entry.ref,
                             f"the same ref is already in row {refs[entry.ref]}"))
        refs[entry.ref] = n
        problems.extend((f"{where}.{f}", v, r)
                        for f, v, r in _registry_problems(entry, institution, profile))
        entries.append(entry)
        wheres.append(where)
    if kind is EntryKind.BILL:
        problems.extend(bill_overlap_problems(
            [(w, e) for w, e in zip(wheres, entries, strict=True) if isinstance(e, Bill)],
            ledger.all_bills() if ledger is not None else []))
    if problems:
        raise EntryError(source, problems)
    return entries


CSV_ENCODINGS = ("utf-8", "gb18030")  # GB18030 is a superset of GBK (Chinese Excel)
MAX_XLSX_UNPACKED = 512 * 1024 * 1024  # every member of the workbook together, unpacked
MAX_XLSX_RATIO = 100  # unpacked : packed, for any member over 1 MiB unpacked
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ImportResult:
    put: PutResult
    rows: int
    encoding: str | None  # CSV only: utf-8, utf-8-sig (with a BOM) or gb18030


def _as_file(data: bytes | BinaryIO) -> BinaryIO:
    return io.BytesIO(data) if isinstance(data, bytes | bytearray) else data


def sniff_encoding(f: BinaryIO, source: str) -> str:
    """The CSV's encoding: UTF-8 (with or without Excel's BOM), else GB18030/GBK as saved by
    Chinese Excel. The whole file is checked in chunks before a row is parsed."""
    f.seek(0)
    if f.read(3) == codecs.BOM_UTF8:
        return "utf-8-sig"
    for encoding in CSV_ENCODINGS:
        f.seek(0)
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            while chunk := f.read(_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise EntryError(source, [("<file>", "encoding", "CSV must be UTF-8 or GBK/GB18030 "
                                                     "(as Excel saves it)")])


YIELD_EVERY_ROWS = 200  # an import thread lets the event loop run this often (see below)


def _capped(rows: Iterator[dict[str, Any]], source: str) -> Iterator[dict[str, Any]]:
    """Refuse the file at row MAX_ROWS + 1, while reading: nothing past it is parsed.

    Every YIELD_EVERY_ROWS rows the reading thread sleeps a millisecond. Parsing and
    validating are pure Python and hold the GIL; the event loop that runs MQTT ingest
    needs the GIL back after each of its socket calls and would otherwise wait up to the
    interpreter's switch interval (5 ms) every time, which added up to seconds of ack
    delay during a large import. The pause costs about 0.5 s per 100,000 rows."""
    for n, row in enumerate(rows, start=1):
        if n > MAX_ROWS:
            raise EntryError(source, [("<rows>", f"more than {MAX_ROWS}",
                                       f"more than {MAX_ROWS} rows; split the file")])
        if n % YIELD_EVERY_ROWS == 0:
            time.sleep(0.001)
        yield row


def iter_csv(data: bytes | BinaryIO, source: str) -> tuple[str, Iterator[dict[str, Any]]]:
    """(encoding, rows): rows are read one by one from the file, never all at once."""
    f = _as_file(data)
    encoding = sniff_encoding(f, source)
    f.seek(0)
    text = io.TextIOWrapper(f, encoding=encoding, newline="")
    reader = csv.DictReader(text)

    def rows() -> Iterator[dict[str, Any]]:
        try:
            if not reader.fieldnames:
                raise EntryError(source, [("<header>", None, "no header row")])
            for n, r in enumerate(reader, start=2):
                if None in r:
                    raise EntryError(source, [(f"row {n}", r[None],
                                               "more cells than header fields")])
                yield dict(r)
        except csv.Error as exc:  # e.g. a stray NUL or a quote never closed
            raise EntryError(source, [(f"line {reader.line_num}", str(exc),
                                       "not readable as CSV")]) from None
        finally:
            text.detach()  # the caller owns the binary file

    return encoding, _capped(rows(), source)


def check_xlsx_zip(f: BinaryIO, source: str) -> None:
    """Refuse a workbook whose members unpack to far more than a spreadsheet needs (a zip
    bomb: 334 kB that unpack to a million rows), from the zip directory, before parsing.
    A directory that lies is caught by the row cap while reading."""
    f.seek(0)
    try:
        with zipfile.ZipFile(f) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise EntryError(source, [("<file>", type(exc).__name__,
                                   f"not an XLSX workbook: {exc}")]) from None
    total = 0
    for info in infos:
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _CHUNK and ratio > MAX_XLSX_RATIO:
            raise EntryError(source, [(info.filename, f"{info.file_size} bytes unpacked",
                                       f"compressed {ratio:.0f}:1 (at most {MAX_XLSX_RATIO}:1"
                                       "): refused as a possible zip bomb")])
    if total > MAX_XLSX_UNPACKED:
        raise EntryError(source, [("<file>", f"{total} bytes unpacked",
                                   f"more than {MAX_XLSX_UNPACKED} bytes unpacked")])


def iter_xlsx(data: bytes | BinaryIO, source: str) -> Iterator[dict[str, Any]]:
    """Rows of the first sheet, streamed by openpyxl's read-only mode."""
    import openpyxl  # only the central's report/import paths need it

    f = _as_file(data)
    check_xlsx_zip(f, source)
    f.seek(0)
    try:
        book = openpyxl.load_workbook(f, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, KeyError, ValueError… on bad files
        raise EntryError(source, [("<file>", type(exc).__name__,
                                   f"not an XLSX workbook: {exc}")]) from None

    def rows() -> Iterator[dict[str, Any]]:
        try:
            sheet = book.worksheets[0]
            it = sheet.iter_rows(values_only=True)
            header = next(it, None)
            if header is None or not any(header):
                raise EntryError(source, [("<header>", None, "no header row")])
            names = [str(h).strip() if h is not None else None for h in header]
            for values in it:
                if values is None or all(v is None for v in values):
                    continue
                yield {n: v for n, v in zip(names, values, strict=False) if n}
        finally:
            book.close()

    return _capped(rows(), source)


def parse_xlsx(data: bytes | BinaryIO, source: str) -> list[dict[str, Any]]:
    return list(iter_xlsx(data, source))


def read_rows(data: bytes | BinaryIO, fmt: str, source: str
              ) -> tuple[str | None, Iterable[Any]]:
    """The rows of a CSV (with the encoding it was read in) or XLSX file, streamed; any
    other format is an `EntryError` naming it."""
    if fmt == "csv":
        return iter_csv(data, source)
    if fmt == "xlsx":
        return None, iter_xlsx(data, source)
    raise EntryError(source, [("format", fmt, "must be csv or xlsx")])


def import_rows(ledger: Ledger, kind: EntryKind, data: bytes | BinaryIO, fmt: str,
                institution: InstitutionConfig, profile: CoefficientProfile, *,
                source: str) -> ImportResult:
    """Read, validate every row (streamed, capped), then store all in one transaction, or
    raise `EntryError`. Blocking: the API runs it in a worker thread."""
    encoding, rows = read_rows(data, fmt, source)
    entries = validate_entries(kind, rows, institution, profile, source=source,
                               ledger=ledger)
    return ImportResult(ledger.put(kind, entries), len(entries), encoding)


def add_entries(ledger: Ledger, kind: EntryKind, rows: Sequence[Mapping[str, Any]],
                institution: InstitutionConfig, profile: CoefficientProfile) -> PutResult:
    entries = validate_entries(kind, rows, institution, profile, source=f"{kind} entries",
                               row_label="entries", first_row=0, ledger=ledger)
    return ledger.put(kind, entries)

