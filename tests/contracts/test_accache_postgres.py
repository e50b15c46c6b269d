"""The per-day AC compliance cache on PostgreSQL (central/pgaccache.py) gives exactly the
uncached sweep, as on SQLite (tests/unit/central/test_accache.py): for random sample streams
with late and replayed samples, after a late sample for a closed day, and read through a
read-only store (the API's reader), which saves the days it computed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from central.pgstore import PgStore
from tests.contracts.pg import APP_PASSWORD, PgServer
from tests.unit.central.test_accache import (
    DAY,
    DAY0,
    HOUR,
    MIN,
    RULE,
    Value,
    Writer,
    _month,
    _sample,
    cached,
    uncached,
)


@pytest.fixture(scope="module")
def dsn(pg_server: PgServer) -> str:
    return pg_server.dsn(pg_server.create_database("acdays"))


@pytest.fixture
def pg(dsn: str) -> Iterator[PgStore]:
    with PgStore(dsn, password=APP_PASSWORD) as store:
        with store._db.use("test") as conn:
            conn.execute("TRUNCATE streams, pending, samples, latest, sample_days, ac_days")
        yield store


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.lists(_sample, min_size=20, max_size=120), late=st.lists(_sample, max_size=30),
       replay=st.integers(min_value=0, max_value=5),
       start=st.integers(min_value=-24, max_value=48).map(lambda h: h * HOUR + h % 7 * 13),
       length=st.integers(min_value=0, max_value=96).map(lambda h: h * HOUR - h % 5 * MIN),
       hold=st.sampled_from([3 * 60 * MIN, 53 * MIN + 1, DAY]))
def test_cached_equals_uncached_with_late_and_replayed_samples(
        pg: PgStore, first: list[tuple[str, str, int, Value]],
        late: list[tuple[str, str, int, Value]], replay: int, start: int, length: int,
        hold: int) -> None:
    with pg._db.use("test") as conn:
        conn.execute("TRUNCATE streams, pending, samples, latest, sample_days, ac_days")
    rule = RULE._replace(max_hold_ms=hold)
    s, e = DAY0 + start, DAY0 + start + length
    w = Writer(pg)  # type: ignore[arg-type]
    w.write(sorted(first, key=lambda r: r[2]))
    assert cached(pg, s, e, rule) == uncached(pg, s, e, rule)  # type: ignore[arg-type]
    w.write(late)
    if w.sent:
        w.replay(replay)
    assert cached(pg, s, e, rule) == uncached(pg, s, e, rule)  # type: ignore[arg-type]
    assert cached(pg, s, e, rule) == uncached(pg, s, e, rule)  # type: ignore[arg-type]


def test_a_late_sample_for_a_closed_day_is_seen_also_by_a_reader(pg: PgStore,
                                                                 dsn: str) -> None:
    w = _month(pg)  # type: ignore[arg-type]
    s, e = DAY0, DAY0 + 31 * DAY - 5 * HOUR
    with PgStore(dsn, password=APP_PASSWORD, readonly=True, migrate=False) as reader:
        before = cached(reader, s, e)  # type: ignore[arg-type]
        assert before == uncached(pg, s, e)  # type: ignore[arg-type]
        assert before[0] == before[1] > 0
        assert len(pg.ac_days.rows()) == 2 * 30  # saved by the read-only reader
        w.write([("ac-1", "setpoint_c", DAY0 + 9 * DAY + 10 * HOUR + 5 * MIN, 24.0)])
        after = cached(reader, s, e)  # type: ignore[arg-type]
        assert after == uncached(pg, s, e)  # type: ignore[arg-type]
        assert after == (before[0], before[1] - 5 * MIN)
