"""The one projection (`central.projection.project`), golden figures by hand: the minimum of
data, the calendar method with a school vacation, the previous year's profile, bills over
their own periods, and the case of the issue: a December with no data scores nothing."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from central.energy import EnergyType
from central.period import Period
from central.projection import BillSpan, TypeInput, project
from tests.unit.central.central_helpers import SHANGHAI, local_ts

YEAR = Period.year(2025, SHANGHAI)
ELEC = EnergyType.ELECTRICITY
VACATION = (date(2025, 7, 10), date(2025, 8, 31))  # a school's summer vacation


def school_day(d: date) -> bool:
    return d.weekday() < 5 and not VACATION[0] <= d <= VACATION[1]


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def metered(first: date, last: date, work: float, off: float) -> TypeInput:
    """Whole days first…last metered: `work` per school day, `off` per other day."""
    daily = {d: work if school_day(d) else off for d in days(first, last)}
    return TypeInput(ELEC, metered=sum(daily.values()), configured=True,
                     since=Period.day(first, SHANGHAI).start, daily=daily)


def test_less_than_the_minimum_projects_nothing() -> None:
    t = metered(date(2025, 1, 1), date(2025, 1, 29), 100.0, 20.0)  # 29 whole days
    p = project([t], year=YEAR, until=local_ts(2025, 1, 30), min_days=30,
                is_working_day=school_day)
    assert p.status == "insufficient"
    assert p.energy_kgce is None
    assert p.note_zh.startswith("数据不足，暂不预测")
    t = metered(date(2025, 1, 1), date(2025, 1, 30), 100.0, 20.0)  # 30: enough
    p = project([t], year=YEAR, until=local_ts(2025, 1, 31), min_days=30,
                is_working_day=school_day)
    assert p.status == "provisional"
    assert p.types[0].method == "calendar"


def test_calendar_method_fills_school_days_and_days_off_at_their_own_rates() -> None:
    t = metered(date(2025, 1, 1), date(2025, 3, 31), 100.0, 20.0)
    p = project([t], year=YEAR, until=local_ts(2025, 4, 1), min_days=30,
                is_working_day=school_day)
    rest = days(date(2025, 4, 1), date(2025, 12, 31))
    school = sum(1 for d in rest if school_day(d))
    expected = t.metered + 100.0 * school + 20.0 * (len(rest) - school)
    assert p.energy_kgce == pytest.approx(expected, rel=1e-12)
    # The vacation counts as days off: less than a weekday-only calendar would give.
    weekdays = sum(1 for d in rest if d.weekday() < 5)
    assert school < weekdays


def test_previous_year_profile_carries_the_season() -> None:
    prev = {d: (300.0 if d.month in (7, 8) else 100.0)
            for d in days(date(2024, 1, 1), date(2024, 12, 31))}
    t = metered(date(2025, 1, 1), date(2025, 3, 31), 110.0, 110.0)
    t.previous = prev
    p = project([t], year=YEAR, until=local_ts(2025, 4, 1), min_days=30,
                is_working_day=school_day)
    assert p.types[0].method == "previous_year"
    # This year runs at 1.1 × last year; the rest of the year follows last year's shape.
    rest = days(date(2025, 4, 1), date(2025, 12, 31))
    expected = t.metered + sum(1.1 * (300.0 if d.month in (7, 8) else 100.0) for d in rest)
    assert p.energy_kgce == pytest.approx(expected, rel=1e-12)


def test_bills_project_over_their_own_periods_when_metering_is_too_short() -> None:
    # Bills for January–November, then 18 minutes of metering on 1 December.
    jan_nov = Period.days(date(2025, 1, 1), date(2025, 11, 30), SHANGHAI)
    since = local_ts(2025, 12, 1, 8, 0)
    until = since + 18 * 60
    t = TypeInput(ELEC, metered=5.0, configured=True, since=since,
                  daily={date(2025, 12, 1): 5.0},
                  bills=[BillSpan(ELEC, jan_nov, 33_400.0)])
    p = project([t], year=YEAR, until=until, min_days=30, is_working_day=school_day)
    assert p.types[0].method == "bills"
    # 100 per billed day; December (31 days less the 18 metered minutes) at that rate.
    assert p.energy_kgce == pytest.approx(33_400 + 5 + 100 * (31 - 18 / 1440), rel=1e-9)
    assert p.energy_kgce / 12_000 < 3.3  # nothing like 14,663 kgce/m²


def test_a_december_without_any_data_is_not_scored() -> None:
    t = TypeInput(ELEC, configured=True)  # a meter, no record, no bill
    p = project([t, TypeInput(EnergyType.WATER, configured=True)], year=YEAR,
                until=local_ts(2025, 12, 20), min_days=30)
    assert p.status == "insufficient"
    assert (p.energy_kgce, p.water_m3) == (None, None)


def test_a_whole_metered_year_is_final_and_equals_the_actuals() -> None:
    t = metered(date(2025, 1, 1), date(2025, 12, 31), 100.0, 20.0)
    p = project([t], year=YEAR, until=YEAR.end + 86_400, min_days=30,
                is_working_day=school_day)
    assert p.status == "final"
    assert p.energy_kgce == pytest.approx(t.metered, rel=1e-12)


# -- through the store: compliance_for, the one call every page and report makes ---------

def _hourly(store: object, first: date, n_days: int, kwh_per_hour: float) -> None:
    from central.store import Store
    from protocols.wire import Batch, IntervalRecord, StreamId

    assert isinstance(store, Store)
    t0 = int(Period.day(first, SHANGHAI).start * 1000)
    records = tuple(
        IntervalRecord(seq=i + 1, device=device, point=point, start=t0 + h * 3_600_000,
                       duration_s=3600, quantity=q, unit=unit)
        for i, (h, (device, point, q, unit)) in enumerate(
            (h, spec) for h in range(n_days * 24)
            for spec in (("meter-a", "energy_import_kwh", kwh_per_hour, "kWh"),
                         ("water-a", "water_m3", 0.1, "m3"))))
    store.store_batch(Batch(StreamId("edge-1", 1), 0, 0, True, records), "site", now=0.0)


def test_december_with_no_data_scores_nothing_and_a_month_of_data_scores(
        tmp_path: object) -> None:
    from central.institution import parse_institution
    from central.ledger import SqliteLedger
    from central.metrics import compliance_for
    from central.profile import load_profile
    from central.store import Store
    from tests.unit.central.central_helpers import INSTITUTION

    inst, profile = parse_institution(INSTITUTION), load_profile("national")
    with Store(":memory:") as store:
        ledger = SqliteLedger(":memory:")
        r = compliance_for(store, inst, profile, now=local_ts(2025, 12, 20), year=2025,
                           ledger=ledger)
        assert r.score is None  # not 10 / 10
        assert all(i.status == "insufficient" and i.met is None for i in r.items)
        _hourly(store, date(2025, 11, 1), 40, 2.0)  # 1 Nov – 10 Dec, 48 kWh a day
        r = compliance_for(store, inst, profile, now=local_ts(2025, 12, 11), year=2025,
                           ledger=ledger)
        assert r.projection.status == "provisional"
        assert r.score is not None
        [elec] = [t for t in r.projection.types if t.energy is ELEC]
        assert elec.method == "calendar"
        # Metering began on 1 November: the days before it are filled at the metered rate.
        assert r.projected_energy_kgce == pytest.approx(365 * 48 * 0.1229, rel=1e-9)
        ledger.close()


def test_the_previous_year_in_the_store_carries_its_season_into_the_projection() -> None:
    from central.institution import parse_institution
    from central.metrics import compliance_for
    from central.profile import load_profile
    from central.store import Store
    from tests.unit.central.central_helpers import INSTITUTION

    inst, profile = parse_institution(INSTITUTION), load_profile("national")
    with Store(":memory:") as store:
        _hourly(store, date(2024, 1, 1), 366, 2.0)  # 2024: 48 kWh every day
        _hourly(store, date(2025, 1, 1), 59, 3.0)  # 2025 so far: 72 kWh a day, 1.5 ×
        r = compliance_for(store, inst, profile, now=local_ts(2025, 3, 1), year=2025)
    [elec] = [t for t in r.projection.types if t.energy is ELEC]
    assert elec.method == "previous_year"
    assert r.projected_energy_kgce == pytest.approx(365 * 72 * 0.1229, rel=1e-9)
