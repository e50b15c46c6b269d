"""Load profiles: exact integrals, calendar awareness, reproducibility."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.profile import (
    ADMIN,
    DORMITORY,
    TEACHING,
    DateRange,
    DayKind,
    FlowProfile,
    PowerProfile,
    ProfileParams,
    WorkCalendar,
    is_china_working_day,
    local_date,
    local_day_start,
)

PARAMS = ProfileParams(base=5_000.0, peak=80_000.0, shape=TEACHING, seed=7)
PROFILE = PowerProfile(PARAMS)  # module-level: its day cache makes the property tests fast

T_2025 = local_day_start(dt.date(2025, 1, 1))
T_2028 = local_day_start(dt.date(2028, 1, 1))


def at(day: dt.date, hour: float) -> float:
    return local_day_start(day) + hour * 3600.0


# -- time zone helpers ---------------------------------------------------------------


def test_local_day_start_is_midnight_in_shanghai() -> None:
    # 2026-01-01T00:00+08:00 == 2025-12-31T16:00Z
    assert local_day_start(dt.date(2026, 1, 1)) == 1_767_196_800.0
    assert local_date(1_767_196_800.0) == dt.date(2026, 1, 1)
    assert local_date(1_767_196_799.999) == dt.date(2025, 12, 31)


# -- exactness -----------------------------------------------------------------------

times = st.floats(min_value=T_2025, max_value=T_2028, allow_nan=False, allow_infinity=False)
# Times on or next to minute boundaries, where off-by-one mistakes live.
boundary_times = st.builds(
    lambda minute, frac: minute * 60 + frac,
    st.integers(min_value=int(T_2025 // 60), max_value=int(T_2028 // 60)),
    st.sampled_from([0.0, 1e-6, 0.5, 59.999999]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(times, boundary_times), min_size=3, max_size=3))
def test_integral_is_additive(points: list[float]) -> None:
    a, b, c = sorted(points)
    whole = PROFILE.integral(a, c)
    parts = PROFILE.integral(a, b) + PROFILE.integral(b, c)
    assert math.isclose(parts, whole, rel_tol=1e-9, abs_tol=1e-12)


@settings(max_examples=100, deadline=None)
@given(times)
def test_value_is_constant_within_a_minute(t: float) -> None:
    minute_start = math.floor(t / 60) * 60.0
    value = PROFILE.value_at(minute_start)
    assert PROFILE.value_at(t) == value
    assert PROFILE.value_at(minute_start + 59.999) == value
    # A partial minute integrates the constant exactly.
    assert PROFILE.integral(minute_start + 10.0, minute_start + 50.0) == pytest.approx(
        value * 40.0 / 3_600_000.0, rel=1e-15
    )


def test_integral_of_a_day_is_the_sum_of_its_minutes() -> None:
    day = dt.date(2025, 3, 5)
    start = local_day_start(day)
    by_minute = math.fsum(PROFILE.value_at(start + 60.0 * i) * 60.0 for i in range(1440))
    assert PROFILE.integral(start, start + 86_400.0) == pytest.approx(
        by_minute / 3_600_000.0, rel=1e-12
    )


def test_year_integral_matches_sum_of_days() -> None:
    days = [dt.date(2025, 1, 1) + dt.timedelta(days=i) for i in range(365)]
    per_day = PROFILE.totals_by_day(days)
    year = PROFILE.integral(T_2025, local_day_start(dt.date(2026, 1, 1)))
    assert year == pytest.approx(math.fsum(per_day.values()), rel=1e-12)


def test_integral_of_empty_interval_is_zero_and_reversed_is_an_error() -> None:
    assert PROFILE.integral(T_2025 + 17.3, T_2025 + 17.3) == 0.0
    with pytest.raises(ValueError, match="t0 <= t1"):
        PROFILE.integral(T_2025 + 1, T_2025)
    with pytest.raises(ValueError, match="finite"):
        PROFILE.integral(T_2025, math.inf)


def test_integral_does_not_depend_on_earlier_calls() -> None:
    late = (at(dt.date(2026, 5, 1), 3.2), at(dt.date(2026, 6, 1), 15.7))
    early = (at(dt.date(2025, 2, 1), 8.0), at(dt.date(2025, 9, 1), 9.5))
    first = PowerProfile(PARAMS)
    second = PowerProfile(PARAMS)
    results_first = [first.integral(*late), first.integral(*early)]
    results_second = [second.integral(*early), second.integral(*late)][::-1]
    assert results_first == results_second


def test_flow_profile_integrates_cubic_metres() -> None:
    flow = FlowProfile(ProfileParams(base=2.0, peak=2.0, variation=0.0))
    assert flow.integral(T_2025, T_2025 + 1800.0) == pytest.approx(1.0, rel=1e-15)
    assert (flow.unit, flow.total_unit) == ("m3/h", "m3")


def test_power_profile_integrates_kilowatt_hours() -> None:
    power = PowerProfile(ProfileParams(base=1000.0, peak=1000.0, variation=0.0))
    assert power.integral(T_2025, T_2025 + 3 * 86_400.0) == pytest.approx(72.0, rel=1e-14)


# -- shape, calendar and variation -----------------------------------------------------


def test_school_day_shape_night_base_and_teaching_peak() -> None:
    day = dt.date(2025, 3, 5)  # Wednesday
    assert PROFILE.value_at(at(day, 3.0)) == pytest.approx(PARAMS.base, rel=PARAMS.variation)
    assert PROFILE.value_at(at(day, 10.0)) == pytest.approx(PARAMS.peak, rel=PARAMS.variation)
    # lunch break and evening study sit between
    assert PROFILE.value_at(at(day, 13.0)) < 0.5 * PARAMS.peak
    assert 0.5 * PARAMS.peak < PROFILE.value_at(at(day, 20.0)) < PARAMS.peak
    assert PROFILE.value_at(at(day, 23.0)) < 1.2 * PARAMS.base


def test_working_day_and_weekend_differ() -> None:
    wednesday, saturday = dt.date(2025, 3, 5), dt.date(2025, 3, 8)
    assert PROFILE.day_kind(at(wednesday, 12)) is DayKind.WORKDAY
    assert PROFILE.day_kind(at(saturday, 12)) is DayKind.REST_DAY
    totals = PROFILE.totals_by_day([wednesday, saturday])
    assert totals[saturday] < 0.6 * totals[wednesday]
    assert PROFILE.value_at(at(saturday, 10)) < 0.5 * PROFILE.value_at(at(wednesday, 10))


def test_make_up_saturday_2026_02_14_is_a_working_day() -> None:
    make_up, sunday = dt.date(2026, 2, 14), dt.date(2026, 2, 15)
    assert make_up.weekday() == 5
    assert is_china_working_day(make_up)
    assert PROFILE.day_kind(at(make_up, 10)) is DayKind.WORKDAY
    assert PROFILE.value_at(at(make_up, 10)) == pytest.approx(PARAMS.peak, rel=PARAMS.variation)
    totals = PROFILE.totals_by_day([make_up, sunday, dt.date(2026, 2, 12)])
    assert totals[make_up] == pytest.approx(totals[dt.date(2026, 2, 12)], rel=0.05)
    assert totals[sunday] < 0.6 * totals[make_up]


def test_statutory_holiday_is_a_rest_day() -> None:
    assert not is_china_working_day(dt.date(2025, 10, 1))  # National Day, Wednesday
    assert PROFILE.day_kind(at(dt.date(2025, 10, 1), 10)) is DayKind.REST_DAY


def test_years_without_published_schedule_fall_back_to_monday_to_friday() -> None:
    assert is_china_working_day(dt.date(2030, 10, 1))  # a Tuesday; 2030 is not published
    assert not is_china_working_day(dt.date(2030, 10, 5))  # Saturday


def test_vacation_overrides_working_days() -> None:
    calendar = WorkCalendar((DateRange(dt.date(2025, 7, 5), dt.date(2025, 8, 31)),))
    profile = PowerProfile(PARAMS, calendar=calendar)
    assert profile.day_kind(at(dt.date(2025, 7, 9), 10)) is DayKind.VACATION
    assert profile.day_kind(at(dt.date(2025, 9, 1), 10)) is DayKind.WORKDAY
    assert profile.value_at(at(dt.date(2025, 7, 9), 10)) < 0.3 * PARAMS.peak


def test_same_seed_reproduces_and_other_seed_differs() -> None:
    t = at(dt.date(2025, 4, 2), 10.5)
    again = PowerProfile(ProfileParams(base=5_000.0, peak=80_000.0, shape=TEACHING, seed=7))
    other = PowerProfile(ProfileParams(base=5_000.0, peak=80_000.0, shape=TEACHING, seed=8))
    assert again.value_at(t) == PROFILE.value_at(t)
    assert other.value_at(t) != PROFILE.value_at(t)


def test_neighbouring_minutes_vary_within_bounds() -> None:
    start = at(dt.date(2025, 4, 2), 9.0)
    values = [PROFILE.value_at(start + 60.0 * i) for i in range(60)]
    assert len(set(values)) > 50
    low, high = PARAMS.peak * (1 - PARAMS.variation), PARAMS.peak * (1 + PARAMS.variation)
    assert all(low <= v <= high for v in values)


@pytest.mark.parametrize("shape", [TEACHING, DORMITORY, ADMIN])
def test_builtin_shapes_are_valid(shape: tuple[tuple[float, float], ...]) -> None:
    ProfileParams(base=1.0, peak=2.0, shape=shape)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base": -1.0, "peak": 2.0}, "base"),
        ({"base": 3.0, "peak": 2.0}, "peak"),
        ({"base": 1.0, "peak": 2.0, "variation": 1.0}, "variation"),
        ({"base": 1.0, "peak": 2.0, "rest_day_factor": 1.5}, "rest_day_factor"),
        ({"base": 1.0, "peak": 2.0, "shape": ((0.0, 0.0), (25.0, 1.0))}, r"shape\[1\]: hour"),
        ({"base": 1.0, "peak": 2.0, "shape": ((8.0, 0.0), (7.0, 1.0))}, "must not decrease"),
        ({"base": 1.0, "peak": 2.0, "shape": ((0.0, 0.0), (9.0, 1.2))}, "fraction"),
        ({"base": 1.0, "peak": 2.0, "shape": ((0.0, 0.0),)}, "two keypoints"),
    ],
)
def test_params_are_validated(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ProfileParams(**kwargs)  # type: ignore[arg-type]


def test_date_range_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        DateRange(dt.date(2025, 2, 1), dt.date(2025, 1, 1))
