"""`greenguard report import-history`: a meter's historical series into the store."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
import yaml

from central.institution import MeterKey, parse_institution
from central.store import Store
from simulators.cli import main
from tests.unit.central.central_helpers import INSTITUTION, batch, interval, local_ms


def _setup(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "institution.yaml"
    config.write_text(yaml.safe_dump(INSTITUTION, allow_unicode=True), encoding="utf-8")
    return config, tmp_path / "central.sqlite"


def _run(config: Path, db: Path, file: Path, *extra: str) -> int:
    return main(["report", "import-history", "--config", str(config), "--db", str(db),
                 "--meter", "edge-1/meter-a/energy_import_kwh", "--file", str(file), *extra])


CSV = ("start,duration_s,quantity\n"
       "2020-03-01T00:00,3600,10.5\n"
       "2020-03-01T01:00,3600,9.5\n"
       "2020-03-01T02:00,3600,8\n")


def _sum(db: Path) -> float:
    with Store(db, readonly=True) as store:
        sums = store.interval_sums(local_ms(2020, 3, 1), local_ms(2020, 3, 2),
                                   [MeterKey("edge-1", "meter-a", "energy_import_kwh")])
    return sum(sums.values())


def test_import_is_idempotent_and_corrections_replace(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    config, db = _setup(tmp_path)
    series = tmp_path / "series.csv"
    series.write_text(CSV, encoding="utf-8")
    assert _run(config, db, series) == 0
    assert "3 rows: 3 inserted, 0 updated, 0 unchanged, 0 kept" in capsys.readouterr().out
    assert _sum(db) == pytest.approx(28.0)
    assert _run(config, db, series) == 0  # the same file again changes nothing
    assert "3 rows: 0 inserted, 0 updated, 3 unchanged" in capsys.readouterr().out
    assert _sum(db) == pytest.approx(28.0)
    series.write_text(CSV.replace("9.5", "11.5"), encoding="utf-8")  # a corrected file
    assert _run(config, db, series) == 0
    assert "1 updated, 2 unchanged" in capsys.readouterr().out
    assert _sum(db) == pytest.approx(30.0)
    with Store(db, readonly=True) as store:  # the figures read it through the rollups too
        key = MeterKey("edge-1", "meter-a", "energy_import_kwh")
        tz = parse_institution(INSTITUTION).institution.tz
        assert sum(store.period_sums(local_ms(2020, 3, 1), local_ms(2020, 3, 2), tz,
                                     [key]).values()) == pytest.approx(30.0)
        assert not [e for e in store.edges() if e.last_seen]  # not "heard from"


def test_bad_rows_refuse_the_file_naming_row_field_and_value(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, db = _setup(tmp_path)
    series = tmp_path / "bad.csv"
    series.write_text("start,end,quantity,unit\n"
                      "2020-03-01T00:00,2020-03-01T01:00,10,kWh\n"
                      "2020-03-01T01:00,2020-03-01T02:00,abc,kWh\n"
                      "2020-03-01T01:30,2020-03-01T02:30,3,kWh\n"
                      "2020-13-01T00:00,2020-03-01T02:00,3,kWh\n"
                      "2020-03-02T00:00,2020-03-02T01:00,3,m3\n", encoding="utf-8")
    assert _run(config, db, series) == 2
    err = capsys.readouterr().err
    assert "row 3.quantity: a number from 0 to 1e+09 is required (got 'abc')" in err
    assert "row 5.start" in err
    assert "'2020-13-01T00:00'" in err
    assert "row 6.unit: the meter counts in kWh (got 'm3')" in err
    with Store(db) as store:  # nothing of the file is stored
        assert store.counts().get("intervals", 0) == 0


def test_overlap_inside_the_file_and_with_stored_metering(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, db = _setup(tmp_path)
    with Store(db) as store:  # the edge metered 01:00–01:15 itself
        store.store_batch(batch([interval(1, start=local_ms(2020, 3, 1, 1), quantity=2.0)],
                                after=0), "demo-school")
    overlap = tmp_path / "overlap.csv"
    overlap.write_text("start,duration_s,quantity\n2020-03-01T00:30,3600,5\n", encoding="utf-8")
    assert _run(config, db, overlap) == 2
    assert "row 2.start" in capsys.readouterr().err
    same = tmp_path / "same.csv"  # the edge's own interval: its record wins
    same.write_text("start,quantity\n2020-03-01T01:00,7\n2020-03-01T01:15,1\n",
                    encoding="utf-8")
    assert _run(config, db, same, "--duration", "900") == 0
    assert "2 rows: 1 inserted, 0 updated, 0 unchanged, 1 kept" in capsys.readouterr().out
    assert _sum(db) == pytest.approx(3.0)
    inside = tmp_path / "inside.csv"
    inside.write_text("start,duration_s,quantity\n2020-03-02T00:00,3600,1\n"
                      "2020-03-02T00:30,3600,1\n", encoding="utf-8")
    assert _run(config, db, inside) == 2
    assert "row 3.start" in capsys.readouterr().err


def test_xlsx_with_datetimes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import datetime

    config, db = _setup(tmp_path)
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["start", "end", "quantity"])
    for h in range(24):
        sheet.append([datetime(2020, 3, 1, h), datetime(2020, 3, 1, h) .replace(hour=h) +
                      (datetime(2020, 3, 1, 1) - datetime(2020, 3, 1, 0)), 1.25])
    path = tmp_path / "day.xlsx"
    book.save(path)
    assert _run(config, db, path) == 0
    assert "24 rows: 24 inserted" in capsys.readouterr().out
    assert _sum(db) == pytest.approx(30.0)


DOCS = Path(__file__).resolve().parents[3] / "docs" / "templates"


def test_the_documented_templates_import(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """docs/templates: a base year's monthly bills (36 rows) and a day of hourly history
    import as documented, and again without a change."""
    from datetime import date

    from central.baseyear import figure_set
    from central.comparison import DaySpan
    from central.ledger import SqliteLedger
    from central.profile import load_profile

    config, db = _setup(tmp_path)
    bills = ["report", "import", "bill", "--config", str(config), "--db", str(db),
             "--file", str(DOCS / "base-year-bills-2020.csv")]
    assert main(bills) == 0
    assert "36 inserted, 0 updated, 0 unchanged" in capsys.readouterr().out
    assert main(bills) == 0
    assert "0 inserted, 0 updated, 36 unchanged" in capsys.readouterr().out
    assert _run(config, db, DOCS / "history-series.csv") == 0
    assert "24 rows: 24 inserted" in capsys.readouterr().out
    inst = parse_institution(INSTITUTION)
    ledger = SqliteLedger(tmp_path / "central.ledger.sqlite")
    with Store(db, readonly=True) as store:
        year = figure_set(store, ledger, inst, load_profile("national"),
                          DaySpan(date(2020, 1, 1), date(2021, 1, 1)))
    ledger.close()
    by_type = {t.energy.value: (t.covered_days, t.quantity) for t in year.types}
    assert by_type["water"] == pytest.approx((366, 17_300))
    assert by_type["natural_gas"] == pytest.approx((366, 24_700))
    # The history meters 2 March: March's electricity bill counts only before the meter's
    # first record in its period (1 March), so 2–31 March are not covered (30 days: on 2
    # March meter-b, the other electricity main meter, recorded nothing), and electricity is
    # 11 months of bills, 1/31 of March's and the day's 2,384.5 kWh.
    assert by_type["electricity"] == pytest.approx((336, (
        52_000 + 36_000 + 43_000 / 31 + 2_384.5 + 38_000 + 41_000 + 52_000 + 33_000
        + 23_000 + 45_000 + 40_000 + 42_000 + 56_000)))


def test_meter_spec_and_unknown_meter(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    config, db = _setup(tmp_path)
    series = tmp_path / "series.csv"
    series.write_text(CSV, encoding="utf-8")
    short = ["report", "import-history", "--config", str(config), "--db", str(db),
             "--file", str(series)]
    assert main([*short, "--meter", "edge-1/meter-a"]) == 0  # one meter on the device
    assert "3 inserted" in capsys.readouterr().out
    assert main([*short, "--meter", "edge-1/nope/energy_import_kwh"]) == 2
    err = capsys.readouterr().err
    assert "meter: no such meter (configured: edge-1/meter-a/energy_import_kwh" in err
    assert "(got 'edge-1/nope/energy_import_kwh')" in err
    odd = tmp_path / "odd.txt"
    odd.write_text(CSV, encoding="utf-8")
    assert main([*short[:-1], str(odd), "--meter", "edge-1/meter-a"]) == 2
    assert "format: must be csv or xlsx (got 'txt')" in capsys.readouterr().err
