"""Which days the figures publisher recomputes: today always, a touched day and every later
day of its year (their year to date rests on it), once more on the next run (the batch may
have been committed after the first), and again after a failed write."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import cast

import pytest

from central.errors import StoreError
from central.figures_export import FiguresPublisher, Tenancy
from central.profile import load_profile
from central.store import Store
from tests.integration import week


class Sink:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.fail = False

    def write_lines(self, lines: Sequence[str]) -> None:
        if self.fail:
            raise StoreError("telemetry write", "down")
        self.lines = list(lines)

    def days(self) -> set[date]:
        return {datetime.fromtimestamp(int(line.rsplit(" ", 1)[1]) / 1000, week.TZ).date()
                for line in self.lines if line.startswith("figure,")}


@pytest.fixture
def publisher(tmp_path: Path) -> Iterator[tuple[FiguresPublisher, Sink]]:
    config = week.institution()
    store = Store(tmp_path / "central.sqlite")
    sink = Sink()
    yield FiguresPublisher(store, [Tenancy(config, load_profile("national"))], sink), sink
    store.close()


NOW = datetime(2026, 4, 3, 12, tzinfo=week.TZ).timestamp()
APR = [date(2026, 4, d) for d in (1, 2, 3)]


def test_a_touched_day_republishes_it_and_every_later_day(
        publisher: tuple[FiguresPublisher, Sink]) -> None:
    pub, sink = publisher
    pub.publish(NOW)
    assert sink.days() == {APR[2]}
    assert any(line.startswith("status,") for line in sink.lines)
    pub.touch("edge-a", [week.START_MS + 3_600_000])
    pub.touch("edge-of-someone-else", [week.START_MS - 86_400_000 * 30])
    pub.publish(NOW)
    assert sink.days() == set(APR)
    pub.publish(NOW)  # once more: the batch may have been committed after the first run
    assert sink.days() == set(APR)
    pub.publish(NOW)
    assert sink.days() == {APR[2]}


def test_a_failed_write_keeps_the_days_marked(publisher: tuple[FiguresPublisher, Sink]
                                              ) -> None:
    pub, sink = publisher
    pub.touch("edge-b", [week.START_MS + 86_400_000 + 1])
    sink.fail = True
    with pytest.raises(StoreError):
        pub.publish(NOW)
    sink.fail = False
    pub.publish(NOW)
    assert sink.days() == set(APR[1:])


def test_co2_is_published_and_a_changed_factor_republishes_the_days_it_touches(
        publisher: tuple[FiguresPublisher, Sink]) -> None:
    """CO₂ is a published field where there is data (absent, never 0, where there is
    none), and a changed factor makes the publisher rewrite the days from its validity on:
    the points in InfluxDB never keep a stale factor."""
    from central.institution import parse_institution
    from tests.unit.central.central_helpers import batch, interval

    pub, sink = publisher
    day2 = week.START_MS + 86_400_000
    store = cast(Store, pub.reader)
    store.store_batch(batch([interval(1, start=day2 + 3_600_000, quantity=10.0,
                                      device="a-main")], after=0, edge="edge-a"), "s")
    pub.publish(NOW)
    pub.publish(NOW)  # the first run's days, once more
    assert sink.days() == {APR[2]}
    today = [x for x in sink.lines if x.startswith("figure,") and "period=ytd" in x
             and "building=_all" in x]
    assert [x.split("t_co2=")[1].split(",")[0] for x in today] == [str(10 * 0.5306 / 1000)]
    pub.publish(NOW)
    assert sink.days() == {APR[2]}  # nothing changed
    data = week.institution().model_dump(mode="json")
    data["carbon"] = {"factors": [{"energy": "electricity", "unit": "kWh",
                                   "kg_co2_per_unit": 0.5, "valid_from": "2026-04-02",
                                   "source": "a corrected factor"}]}
    pub.tenants[0].institution = parse_institution(data)
    pub.publish(NOW)
    assert sink.days() == set(APR[1:])  # from the first metered day the change touches
    assert f"t_co2={10 * 0.5 / 1000}" in "".join(sink.lines)
    pub.publish(NOW)
    assert sink.days() == {APR[2]}
    empty = [x for x in sink.lines if x.startswith("figure,") and "period=day" in x]
    assert empty
    assert all("t_co2" not in x for x in empty)  # today has no data: absent, never 0
