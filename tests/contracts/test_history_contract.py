"""Historical interval series (central/history.py) through the store port, on SQLite and
PostgreSQL alike: the epoch-0 stream, edge records winning, idempotence, the rollups."""

from __future__ import annotations

import pytest

from central.errors import EntryError
from central.history import HISTORY_EPOCH, import_history
from central.institution import MeterKey, parse_institution
from central.profile import load_profile
from central.storeport import FullStore
from protocols.wire import StreamId
from tests.unit.central.central_helpers import INSTITUTION, SHANGHAI, batch, interval, local_ms

A = MeterKey("edge-1", "meter-a", "energy_import_kwh")
CSV = (b"start,duration_s,quantity\n2020-03-01T00:00,900,1.5\n2020-03-01T00:15,900,2.5\n"
       b"2020-03-01T00:30,900,3\n")


def test_history_import_on_either_store(store: FullStore) -> None:
    inst = parse_institution(INSTITUTION)
    profile = load_profile("national")
    # the edge itself metered 00:30–00:45 (its installation epoch is far above 0)
    store.store_batch(batch([interval(1, start=local_ms(2020, 3, 1, 0, 30), quantity=9.0,
                                      duration_s=900)], after=0, epoch=1_700_000_000_000),
                      "demo-school", now=5.0)
    first = import_history(store, inst, profile, "edge-1/meter-a", CSV, "csv", source="s.csv")
    assert (first.inserted, first.updated, first.unchanged, first.kept) == (2, 0, 0, 1)
    again = import_history(store, inst, profile, "edge-1/meter-a", CSV, "csv", source="s.csv")
    assert (again.inserted, again.updated, again.unchanged, again.kept) == (0, 0, 2, 1)
    # seqs 1..3, then 4: the row kept for the edge's record is offered (and kept) again
    assert store.watermark(StreamId("edge-1", HISTORY_EPOCH)) == 4
    day = (local_ms(2020, 3, 1), local_ms(2020, 3, 2))
    assert store.period_sums(*day, SHANGHAI, [A])[A] == pytest.approx(1.5 + 2.5 + 9.0)
    assert store.interval_sums(*day, [A])[A] == pytest.approx(13.0)
    edge = next(e for e in store.edges() if e.edge == "edge-1")
    assert edge.last_seen == 5.0  # the import did not make the edge look alive
    # hourly rows over 15-minute intervals would count twice: refused
    with pytest.raises(EntryError, match=r"row 2\.duration_s: the stored interval at this "
                       r"start lasts 900 s \(got 3600\)"):
        import_history(store, inst, profile, "edge-1/meter-a",
                       b"start,duration_s,quantity\n2020-03-01T00:00,3600,4\n", "csv",
                       source="h.csv")
    with pytest.raises(EntryError, match=r"row 2\.start: overlaps an interval already "
                       r"stored for this meter from 2020-03-01T00:00:00\+08:00"):
        import_history(store, inst, profile, "edge-1/meter-a",
                       b"start,duration_s,quantity\n2020-03-01T00:05,600,4\n", "csv",
                       source="h.csv")
    assert store.period_sums(*day, SHANGHAI, [A])[A] == pytest.approx(13.0)
