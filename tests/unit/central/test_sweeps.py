"""The one-pass AC setpoint sweep (central/sweeps.py) equals the former quadratic definition,
kept here as the reference, bit for bit; and it handles a month of 1-minute data."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

from hypothesis import example, given, settings
from hypothesis import strategies as st

from central.metrics import ac_compliance
from central.sweeps import ON_VALUES, Samples
from tests.unit.central.central_helpers import local_ms

MIN = 60_000
HOLD = 30 * MIN


def reference_ac_seconds(series: Mapping[str, tuple[Samples, Samples]
                                         | tuple[Samples, Samples, Samples]],
                         start_ms: int, end_ms: int, *, summer_min: float, winter_max: float,
                         cooling: Sequence[str], heating: Sequence[str], max_hold_ms: int
                         ) -> tuple[float, float]:
    """`central.metrics.ac_compliance` as it was before the sweep: for every time step the
    value in force is looked up by scanning the samples from the start (quadratic). Spans
    are summed in integer milliseconds, as the sweep does (exact, whatever the cuts)."""
    cool, heat = set(cooling), set(heating)
    judged = compliant = 0
    for unit_series in series.values():
        setpoints, modes = unit_series[0], unit_series[1]
        ons: Samples = unit_series[2] if len(unit_series) > 2 else ()
        points = sorted({ts for ts, _ in setpoints} | {ts for ts, _ in modes}
                        | {ts for ts, _ in ons} | {start_ms, end_ms})
        points = [p for p in points if start_ms <= p <= end_ms]

        def at(samples: Samples, t: int) -> float | int | bool | str | None:
            value: float | int | bool | str | None = None
            since = None
            for ts, v in samples:
                if ts > t:
                    break
                value, since = v, ts
            if since is None or t - since >= max_hold_ms:
                return None
            return value

        for a, b in itertools.pairwise(points):
            sp, mode = at(setpoints, a), at(modes, a)
            if sp is None or mode is None or isinstance(sp, str | bool):
                continue
            if ons and at(ons, a) not in ON_VALUES:
                continue
            seg_end = b
            for samples in (setpoints, modes, *((ons,) if ons else ())):
                last = max((ts for ts, _ in samples if ts <= a), default=a)
                seg_end = min(seg_end, last + max_hold_ms)
            span = seg_end - a
            if span <= 0:
                continue
            m = str(mode)
            if m in cool:
                judged += span
                compliant += span if float(sp) >= summer_min else 0
            elif m in heat:
                judged += span
                compliant += span if float(sp) <= winter_max else 0
    return judged / 1000, compliant / 1000


def _sweep(series: Mapping[str, tuple[Samples, Samples] | tuple[Samples, Samples, Samples]],
           start_ms: int, end_ms: int, hold: int = HOLD) -> tuple[float, float]:
    r = ac_compliance(series, start_ms, end_ms, summer_min=26.0, winter_max=20.0,
                      cooling=["cool", "dry"], heating=["heat"], max_hold_ms=hold,
                      units=len(series), exempt=0)
    return r.judged_s, r.compliant_s


def _reference(series: Mapping[str, tuple[Samples, Samples] | tuple[Samples, Samples,
                                                                      Samples]],
               start_ms: int, end_ms: int, hold: int = HOLD) -> tuple[float, float]:
    return reference_ac_seconds(series, start_ms, end_ms, summer_min=26.0, winter_max=20.0,
                                cooling=["cool", "dry"], heating=["heat"], max_hold_ms=hold)


# Timestamps on a coarse grid collide often (equal times across and within points), with
# odd milliseconds so spans are not whole seconds (float rounding is compared too). Valid
# values dominate, so most examples judge time; the odd ones cover every refusal.
_ts = st.integers(min_value=-20, max_value=80).map(lambda k: k * 3 * MIN + k % 3)
_Value = st.SearchStrategy[float | int | bool | str]
_setpoint: _Value = st.one_of(st.sampled_from([18.0, 24.0, 26.0, 27.5, 20, 26]),
                              st.floats(min_value=16, max_value=32, allow_nan=False),
                              st.sampled_from([float("nan"), "n/a", True]))
_mode: _Value = st.one_of(
    st.sampled_from(["cool", "heat", "dry"]), st.sampled_from(["fan", "auto", 3, True]))
_on: _Value = st.one_of(st.sampled_from([True, 1, "on", "true", "1", 1.0]),
                        st.sampled_from([False, 0, "off", 2, "0"]))


def _stream(values: st.SearchStrategy[float | int | bool | str]
            ) -> st.SearchStrategy[list[tuple[int, float | int | bool | str]]]:
    return st.lists(st.tuples(_ts, values), max_size=25).map(
        lambda xs: sorted(xs, key=lambda s: s[0]))  # stable: equal times keep list order


_unit = st.one_of(st.tuples(_stream(_setpoint), _stream(_mode)),
                  st.tuples(_stream(_setpoint), _stream(_mode), _stream(_on)))


@settings(max_examples=500, deadline=None)
@example(units={"a/1": ([(0, 24.0), (5 * MIN, 24.0)], [(0, "cool"), (5 * MIN, "cool")],
                        [(0, True)])}, start=0, length=20 * MIN, hold=7 * MIN)  # on expires

@given(units=st.dictionaries(st.sampled_from(["a/1", "a/2", "b/7"]), _unit, max_size=3),
       start=_ts, length=st.integers(min_value=0, max_value=100 * 3 * MIN),
       hold=st.sampled_from([HOLD, 7 * MIN, 9 * MIN + 1, 90 * MIN]))
def test_sweep_equals_the_quadratic_reference(
        units: dict[str, tuple[Samples, Samples] | tuple[Samples, Samples, Samples]],
        start: int, length: int, hold: int) -> None:
    end = start + length
    assert _sweep(units, start, end, hold) == _reference(units, start, end, hold)


def _month(t0: int, days: int) -> tuple[list[tuple[int, float | int | bool | str]],
                                         list[tuple[int, float | int | bool | str]],
                                         list[tuple[int, float | int | bool | str]]]:
    """1-minute samples of one unit: on 08:00–18:00 in cool mode, at 24 °C on odd days and
    26 °C on even days; the controller is silent 12:00–13:00 on the 10th, longer than the
    hold: the 11:59 samples hold until 12:29, so 12:29–13:00 is unknown and not judged."""
    setpoints: list[tuple[int, float | int | bool | str]] = []
    modes: list[tuple[int, float | int | bool | str]] = []
    ons: list[tuple[int, float | int | bool | str]] = []
    for day in range(days):
        for minute in range(24 * 60):
            if day == 9 and 12 * 60 <= minute < 13 * 60:
                continue
            ts = t0 + (day * 24 * 60 + minute) * MIN
            setpoints.append((ts, 24.0 if day % 2 == 0 else 26.0))
            modes.append((ts, "cool"))
            ons.append((ts, 8 * 60 <= minute < 18 * 60))
    return setpoints, modes, ons


def test_a_month_of_one_minute_samples() -> None:
    """43,200 samples per point for 30 days (the size that made a monthly report run for
    minutes): judged time is the on-time minus the unknown half hour, compliant time the
    even days'."""
    t0 = local_ms(2025, 7, 1, 0, 0)
    setpoints, modes, ons = _month(t0, 30)
    assert len(setpoints) == 30 * 24 * 60 - 60
    units = {f"ac-{i}": (setpoints, modes, ons) for i in range(3)}
    judged, compliant = _sweep(units, t0, t0 + 30 * 86_400_000)
    unknown_s = 31 * 60.0  # on the 10th, an even day of the month (26 °C)
    assert judged == 3 * (30 * 10 * 3600.0 - unknown_s)
    assert compliant == 3 * (15 * 10 * 3600.0 - unknown_s)
    # The same data on a slice the quadratic reference can still afford.
    lo, hi = t0 + 9 * 86_400_000 + 11 * 3_600_000, t0 + 9 * 86_400_000 + 15 * 3_600_000
    def cut(v: Samples) -> Samples:
        return [s for s in v if lo - HOLD <= s[0] < hi]

    piece: dict[str, tuple[Samples, Samples, Samples]] = {
        k: (cut(sp), cut(md), cut(on)) for k, (sp, md, on) in units.items()}
    expected = 3 * (4 * 3600.0 - unknown_s)
    assert _sweep(piece, lo, hi) == _reference(piece, lo, hi) == (expected, expected)
