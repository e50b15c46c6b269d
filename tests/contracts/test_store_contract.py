"""The store contract, run against SQLite and PostgreSQL alike: dedup, interval upsert,
watermark and pending ranges, epochs, dead letters, edge state, failure atomicity and the
reads compliance uses. (The SQLite-only unit tests in tests/unit/central stay as they are.)"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from central.errors import StoreError
from central.institution import MeterKey
from central.pgstore import PgStore
from central.store import Store
from central.storeport import CommandResult, FullStore, Quarantine, StoredEvent, StoredInterval
from protocols.wire import (
    Batch,
    Birth,
    Death,
    DeviceInfo,
    Event,
    IntervalFlag,
    IntervalRecord,
    Notice,
    Severity,
    StreamId,
)
from tests.unit.central.central_helpers import batch, event, interval, local_ms, sample

S1 = StreamId("edge-1", 1)
A = MeterKey("edge-1", "meter-a", "energy_import_kwh")


def test_duplicate_batch_is_stored_once(store: FullStore) -> None:
    b = batch([sample(1), interval(2), event(3)], after=0)
    first = store.store_records(b.stream, b.after, b.seq, b.records, site="s", now=1.0)
    again = store.store_records(b.stream, b.after, b.seq, b.records, site="s", now=2.0)
    assert (first.watermark, first.inserted, first.duplicates) == (3, 3, 0)
    assert (again.watermark, again.inserted, again.duplicates) == (3, 0, 3)
    counts = store.counts()
    assert (counts["samples"], counts["intervals"], counts["events"]) == (1, 1, 1)
    assert store.store_batch(b, "s", now=3.0) == 3


def test_replayed_interval_is_an_idempotent_upsert(store: FullStore) -> None:
    store.store_batch(batch([interval(1, quantity=1.5)], after=0), "s")
    store.store_batch(batch([interval(7, quantity=2.5)], after=1), "s")
    store.store_batch(batch([interval(1, quantity=1.5)], after=0), "s")
    store.store_batch(batch([interval(7, quantity=2.5)], after=1), "s")
    rows = store.rows("intervals")
    assert len(rows) == 1
    assert rows[0][5] == 2.5
    assert rows[0][-1] == 7


def test_interval_of_a_newer_epoch_wins_and_an_older_one_does_not(store: FullStore) -> None:
    store.store_batch(batch([interval(9, quantity=1.0)], after=0, epoch=1), "s")
    store.store_batch(batch([interval(1, quantity=2.0)], after=0, epoch=2), "s")
    store.store_batch(batch([interval(10, quantity=3.0)], after=9, epoch=1), "s")
    assert [r[5] for r in store.rows("intervals")] == [2.0]


def test_two_versions_of_an_interval_in_one_batch_keep_the_newer(store: FullStore) -> None:
    r = store.store_records(S1, 0, 2, [interval(1, quantity=1.0), interval(2, quantity=4.0)],
                            site="s", now=1.0)
    assert r.watermark == 2
    assert [row[5] for row in store.rows("intervals")] == [4.0]


def test_out_of_order_batches_advance_only_when_the_gap_fills(store: FullStore) -> None:
    b1 = batch([sample(1), sample(2), sample(3)], after=0)
    b2 = batch([sample(5)], after=3)
    b3 = batch([sample(7), sample(9)], after=5)
    assert store.store_batch(b3, "s") == 0
    assert store.pending_ranges(S1) == [(5, 9)]
    assert store.store_batch(b2, "s") == 0
    assert store.pending_ranges(S1) == [(3, 5), (5, 9)]
    assert store.store_batch(b1, "s") == 9
    assert store.pending_ranges(S1) == []
    assert store.counts()["samples"] == 6


def test_batch_starting_at_the_last_acknowledged_seq(store: FullStore) -> None:
    assert store.store_batch(batch([sample(1), sample(2)], after=0), "s") == 2
    assert store.store_batch(batch([sample(1), sample(2), sample(4)], after=0), "s") == 4
    assert store.counts()["samples"] == 3


def test_watermark_and_pending_survive_reopen(reopen_store: Callable[..., FullStore]) -> None:
    s = reopen_store()
    s.store_batch(batch([sample(1)], after=0), "s")
    s.store_batch(batch([sample(5)], after=3), "s")
    s.close()
    s = reopen_store()
    assert s.watermark(S1) == 1
    assert s.pending_ranges(S1) == [(3, 5)]
    assert s.store_batch(batch([sample(2), sample(3)], after=1), "s") == 5
    r = reopen_store(readonly=True)
    assert r.watermark(S1) == 5
    with pytest.raises(StoreError):
        r.store_batch(batch([sample(6)], after=5), "s")
    assert s.watermark(S1) == 5


def test_new_epoch_starts_at_zero_and_is_not_a_duplicate(store: FullStore) -> None:
    store.store_batch(batch([sample(1), sample(2)], after=0, epoch=1), "s")
    assert store.store_batch(batch([sample(1)], after=0, epoch=2), "s") == 1
    assert store.watermark(StreamId("edge-1", 1)) == 2
    assert store.counts()["samples"] == 3


def test_quarantine_is_committed_with_the_batch(store: FullStore) -> None:
    q = Quarantine("gg/v1/s/edge-1/telemetry", b'{"bad":1}', "records[1].unit: missing")
    r = store.store_records(S1, 0, 3, [sample(1)], site="s", now=5.0, quarantine=[q])
    assert (r.watermark, r.inserted, r.quarantined) == (3, 1, 1)
    [dl] = store.dead_letters()
    assert (dl.topic, dl.payload, dl.count, dl.first_seen) == (q.topic, q.payload, 1, 5.0)


def test_dead_letters_are_counted_not_duplicated(store: FullStore) -> None:
    q = Quarantine("gg/v1/s/e/telemetry", b"\xff\x00" * 50_000, "not JSON")
    store.dead_letter(q, now=1.0)
    store.dead_letter(q, now=2.0)
    [dl] = store.dead_letters()
    assert dl.count == 2
    assert dl.size == 100_000
    assert dl.payload == q.payload[:64 * 1024]
    assert (dl.first_seen, dl.last_seen) == (1.0, 2.0)
    assert store.counts()["dead_letter_refusals"] == 2


def test_dead_letter_last_seen_never_moves_back(store: FullStore) -> None:
    """A repeat stored with an earlier central clock (a step back) keeps the latest time;
    the two backends once disagreed here (SQLite took the repeat's)."""
    q = Quarantine("gg/v1/s/e/telemetry", b"garbage", "not JSON")
    store.dead_letter(q, now=5.0)
    store.dead_letter(q, now=3.0)
    [dl] = store.dead_letters()
    assert (dl.count, dl.first_seen, dl.last_seen) == (2, 5.0, 5.0)


def test_edges_are_listed_in_byte_order(store: FullStore) -> None:
    """Edge ids sort as bytes on both backends, whatever PostgreSQL's collation."""
    for i, edge in enumerate(["edge-b", "Edge-c", "edge-a", "EDGE-d"]):
        store.store_batch(batch([sample(1)], after=0, edge=edge), "s", now=float(i))
    assert [e.edge for e in store.edges()] == ["EDGE-d", "Edge-c", "edge-a", "edge-b"]


def _make_writes_fail(store: FullStore, backend: str) -> None:
    """Inject a failure in the middle of the next big batch: SQLite's file may not grow
    (a full disk), PostgreSQL's samples trigger raises on seq 150."""
    if isinstance(store, Store):
        (pages,) = store._conn.execute("PRAGMA page_count").fetchone()
        store._conn.execute(f"PRAGMA max_page_count = {pages}")
    else:
        assert isinstance(store, PgStore)
        conn = store._db.get()
        conn.execute("CREATE FUNCTION fail_at_150() RETURNS trigger LANGUAGE plpgsql AS $$ "
                     "BEGIN IF NEW.seq = 150 THEN RAISE EXCEPTION 'disk full (injected)'; "
                     "END IF; RETURN NEW; END $$")
        conn.execute("CREATE TRIGGER fail_at_150 BEFORE INSERT ON samples FOR EACH ROW "
                     "EXECUTE FUNCTION fail_at_150()")


def test_failed_write_rolls_back_everything(store: FullStore, backend: str) -> None:
    store.store_batch(batch([sample(1)], after=0), "s")
    _make_writes_fail(store, backend)
    big = [sample(i, value="x" * 2000) for i in range(2, 200)]
    with pytest.raises(StoreError, match="full"):
        store.store_batch(batch(big, after=1), "s")
    assert store.watermark(S1) == 1
    assert store.counts()["samples"] == 1
    assert store.pending_ranges(S1) == []
    # The store stays usable after the failure.
    assert store.store_batch(batch([sample(2)], after=1), "s") == 2


def test_birth_and_death_keep_the_newest_epoch(store: FullStore) -> None:
    dev = DeviceInfo("meter-a", "modbus", "dds", ("power_w",))
    store.record_birth("s", Birth(StreamId("edge-1", 2), 1000, True, "1.0", (dev,)), now=10.0)
    store.record_death("s", Death(StreamId("edge-1", 1)), now=11.0)  # stale will
    [e] = store.edges()
    assert (e.edge, e.site, e.epoch, e.online, e.software, e.birth_ts) == (
        "edge-1", "s", 2, True, "1.0", 1000)
    assert e.devices == [{"id": "meter-a", "kind": "modbus", "model": "dds",
                          "points": ["power_w"]}]
    store.record_birth("s", Birth(StreamId("edge-1", 1), 900, True, "0.9"), now=12.0)
    assert store.edges()[0].epoch == 2
    store.record_death("s", Death(StreamId("edge-1", 2)), now=13.0)
    [e] = store.edges()
    assert (e.online, e.changed) == (False, 13.0)
    store.store_batch(batch([sample(1)], after=0, edge="edge-2"), "s", now=14.0)
    [_, e2] = store.edges()
    assert (e2.edge, e2.online, e2.epoch, e2.last_seen) == ("edge-2", None, None, 14.0)


def test_interval_sums_prorate_straddling_intervals(store: FullStore) -> None:
    midnight = local_ms(2025, 3, 1)
    hour = 3_600_000
    recs = [
        interval(1, start=midnight - hour, quantity=4.0, duration_s=7200),
        interval(2, start=midnight, quantity=10.0, duration_s=3600),
        interval(3, start=midnight + 23 * hour, quantity=6.0, duration_s=7200),
        interval(4, start=midnight, quantity=1.0, device="water-a", point="water_m3",
                 unit="m3", duration_s=3600),
    ]
    store.store_batch(batch(recs, after=0), "s")
    w = MeterKey("edge-1", "water-a", "water_m3")
    sums = store.interval_sums(midnight, midnight + 24 * hour)
    assert sums == {A: pytest.approx(2.0 + 10.0 + 3.0), w: 1.0}
    other = MeterKey("edge-9", "x", "y")
    assert store.interval_sums(midnight, midnight + hour, [A, other]) == {A: 2.0 + 10.0,
                                                                          other: 0.0}
    days = store.daily_sums(date(2025, 2, 28), date(2025, 3, 2), ZoneInfo("Asia/Shanghai"), [A])
    assert days == {date(2025, 2, 28): {A: 2.0}, date(2025, 3, 1): {A: 15.0},
                    date(2025, 3, 2): {A: 3.0}}
    assert store.interval_sums(midnight, midnight) == {}
    # Compliance's per-meter reads.
    assert store.first_start_of(midnight - 2 * hour, midnight + 24 * hour, [A]) == midnight - hour
    assert store.first_start_of(midnight, midnight + 24 * hour, [w]) == midnight
    assert store.first_start_of(midnight, midnight + 24 * hour, [other]) is None
    assert store.first_interval_start(midnight, midnight + 24 * hour, [A]) == midnight
    assert store.first_interval_start(midnight + 24 * hour, midnight + 48 * hour) is None
    rows = store.interval_rows(midnight, midnight + hour, [A, w])
    assert rows == [(A, midnight - hour, 7200, 4.0), (A, midnight, 3600, 10.0),
                    (w, midnight, 3600, 1.0)]


def test_latest_sample_per_point_and_series(store: FullStore) -> None:
    store.store_batch(batch([sample(1, ts=2000, value=5.0), sample(2, ts=1000, value=9.0),
                             sample(3, point="on", value=True, unit=""),
                             sample(4, point="mode", value="cool", unit="", ts=3000)],
                            after=0), "s")
    latest = store.latest_samples()
    assert latest[MeterKey("edge-1", "meter-a", "power_w")].value == 5.0
    assert latest[MeterKey("edge-1", "meter-a", "on")].value is True
    assert latest[MeterKey("edge-1", "meter-a", "mode")].value == "cool"
    assert set(store.latest_samples(["on"])) == {MeterKey("edge-1", "meter-a", "on")}
    key = MeterKey("edge-1", "meter-a", "power_w")
    assert store.sample_series(key, 1500, 5000) == [(1000, 9.0), (2000, 5.0)]
    assert store.sample_series(key, 0, 1500) == [(1000, 9.0)]
    store.ping()


def test_any_delivery_order_gives_the_same_rows(reopen_store: Callable[..., FullStore]
                                                ) -> None:
    """A fixed permutation-and-duplication storm (the Hypothesis version runs on SQLite in
    tests/unit): the final rows equal those of in-order delivery."""
    chain = [batch([sample(1), interval(2, quantity=1.0)], after=0),
             batch([interval(4, quantity=2.0), event(5)], after=2),
             batch([sample(6, ts=5), interval(8, quantity=3.0, start=1_735_690_500_000)],
                   after=5),
             batch([interval(9, quantity=4.0)], after=8)]
    storm = [chain[3], chain[1], chain[1], chain[0], chain[3], chain[2], chain[0]]
    s = reopen_store()
    for b in storm:
        s.store_batch(b, "site")
    tables = ("samples", "latest", "intervals", "events", "pending")
    got = {t: s.rows(t) for t in tables}
    assert s.watermark(S1) == 9
    assert got["pending"] == []
    assert [r[5] for r in got["intervals"]] == [4.0, 3.0]  # seq 9 replaced seqs 2 and 4
    assert len(got["samples"]) == 2
    assert len(got["events"]) == 1


# -- the API's and the dashboard's reads ------------------------------------------------


def ev(seq: int, ts: int, name: str, data: dict[str, Any] | None = None, *,
       device: str | None = "meter-a", synced: bool = True) -> Event:
    return Event(seq=seq, ts=ts, name=name, severity=Severity.WARNING, device=device,
                 data={} if data is None else data, synced=synced)


def _key(e: StoredEvent) -> tuple[str, int, int]:
    return (e.edge, e.epoch, e.seq)


def test_events_filter_by_edge_name_prefix_and_time(store: FullStore) -> None:
    store.store_batch(batch([ev(1, 1000, "alarm.offline", {"state": "raised"}),
                             ev(2, 2000, "alarmist"),
                             ev(3, 3000, "audit.write", device=None, synced=False),
                             ev(4, 2000, "alarm.standby", {"state": "cleared"})], after=0),
                      "s")
    store.store_batch(batch([ev(2, 2000, "alarm.offline")], after=0, edge="edge-2"), "s")
    store.store_batch(batch([ev(1, 2000, "alarm.offline")], after=0, epoch=2), "s")
    both = ["edge-1", "edge-2"]
    # Newest first by (ts, epoch, seq, edge): equal timestamps keep one order on both.
    assert [_key(e) for e in store.events(both, limit=100)] == [
        ("edge-1", 1, 3), ("edge-1", 2, 1), ("edge-1", 1, 4), ("edge-2", 1, 2),
        ("edge-1", 1, 2), ("edge-1", 1, 1)]
    assert [_key(e) for e in store.events(both, limit=100, newest_first=False)] == [
        ("edge-1", 1, 1), ("edge-1", 1, 2), ("edge-2", 1, 2), ("edge-1", 1, 4),
        ("edge-1", 2, 1), ("edge-1", 1, 3)]
    assert [_key(e) for e in store.events(both, prefix="alarm.", limit=100)] == [
        ("edge-1", 2, 1), ("edge-1", 1, 4), ("edge-2", 1, 2), ("edge-1", 1, 1)]
    assert [_key(e) for e in store.events(["edge-1"], names=["alarmist", "audit.write"],
                                          limit=100)] == [("edge-1", 1, 3), ("edge-1", 1, 2)]
    assert [_key(e) for e in store.events(["edge-2", "edge-9"], limit=100)] == [
        ("edge-2", 1, 2)]
    window = store.events(both, prefix="alarm.", start_ms=1000, end_ms=2000, limit=100)
    assert [_key(e) for e in window] == [("edge-1", 1, 1)]
    assert [_key(e) for e in store.events(None, start_ms=2001, limit=100)] == [
        ("edge-1", 1, 3)]
    assert len(store.events(None, limit=2)) == 2
    assert store.events([], limit=100) == []
    assert store.events(both, names=[], limit=100) == []
    assert store.events(both, names=["alarm.offline"], prefix="audit.", limit=100) == []
    audit, first = store.events(["edge-1"], names=["alarm.offline", "audit.write"],
                                end_ms=3001, limit=2)
    assert audit == StoredEvent("edge-1", 1, 3, 3000, "audit.write", "warning", None, "{}",
                                False)
    assert (first.ts, first.epoch, first.device, first.synced) == (2000, 2, "meter-a", True)
    [offline] = store.events(["edge-1"], names=["alarm.offline"], end_ms=1001, limit=1)
    assert json.loads(offline.data) == {"state": "raised"}


def test_interval_records_of_edges_devices_and_points(store: FullStore) -> None:
    t0 = 1_735_689_600_000
    store.store_batch(batch([
        interval(1, start=t0 + 900_000, quantity=2.0),
        interval(2, start=t0, quantity=1.0, device="meter-b"),
        interval(3, start=t0, quantity=3.0, point="energy_export_kwh"),
        IntervalRecord(seq=4, device="meter-a", point="energy_import_kwh", start=t0,
                       duration_s=900, quantity=0.5, unit="kWh", synced=False,
                       flags=frozenset({IntervalFlag.ESTIMATED, IntervalFlag.GAP}))],
        after=0), "s")
    store.store_batch(batch([interval(1, start=t0)], after=0, edge="edge-2"), "s")
    rows = store.interval_records(["edge-2", "edge-1"], t0, t0 + 3_600_000, limit=100)
    assert [(r.edge, r.device, r.point, r.start) for r in rows] == [
        ("edge-1", "meter-a", "energy_export_kwh", t0),
        ("edge-1", "meter-a", "energy_import_kwh", t0),
        ("edge-1", "meter-b", "energy_import_kwh", t0),
        ("edge-2", "meter-a", "energy_import_kwh", t0),
        ("edge-1", "meter-a", "energy_import_kwh", t0 + 900_000)]
    assert rows[1] == StoredInterval("edge-1", "meter-a", "energy_import_kwh", t0, 900, 0.5,
                                     "kWh", ("estimated", "gap"), False)
    assert (rows[0].flags, rows[0].synced) == ((), True)
    only = store.interval_records(["edge-1"], t0, t0 + 900_000, device="meter-a",
                                  point="energy_import_kwh", limit=100)
    assert [r.quantity for r in only] == [0.5]
    assert [r.device for r in store.interval_records(["edge-1"], t0, t0 + 1, device="meter-b",
                                                     limit=100)] == ["meter-b"]
    assert len(store.interval_records(["edge-1", "edge-2"], t0, t0 + 3_600_000, limit=2)) == 2
    assert store.interval_records([], t0, t0 + 3_600_000, limit=100) == []
    assert store.interval_records(["edge-1"], t0 + 1, t0 + 900_000, limit=100) == []


def test_latest_event_with_a_top_level_key(store: FullStore) -> None:
    assert store.latest_event_with("edge-1", "outbox_depth") is None
    store.store_batch(batch([ev(1, 1000, "uplink.status", {"outbox_depth": 5}),
                             ev(2, 3000, "uplink.status", {"outbox_depth": 7, "sent": 1})],
                            after=0), "s")
    # A newer epoch at an older timestamp does not win; ts decides first.
    store.store_batch(batch([ev(1, 2000, "uplink.status", {"outbox_depth": 6})],
                            after=0, epoch=2), "s")
    # Newer events that mention the key only inside nested data are passed over (more of
    # them than one page of candidates).
    store.store_batch(batch([ev(seq, 4000 + seq, "rule.fired",
                                {"detail": {"outbox_depth": seq}}) for seq in range(3, 43)],
                            after=2), "s")
    store.store_batch(batch([ev(1, 9000, "uplink.status", {"outbox_depth": 99})], after=0,
                            edge="edge-2"), "s")
    assert store.latest_event_with("edge-1", "outbox_depth") == {"outbox_depth": 7, "sent": 1}
    assert store.latest_event_with("edge-2", "outbox_depth") == {"outbox_depth": 99}
    assert store.latest_event_with("edge-1", "detail") == {"detail": {"outbox_depth": 42}}
    assert store.latest_event_with("edge-1", "missing") is None
    assert store.latest_event_with("edge-9", "outbox_depth") is None


def test_command_results_of_an_edge(store: FullStore) -> None:
    store.store_batch(batch([
        ev(1, 3000, "command.result", {"id": "c-1", "status": "applied"}),
        ev(2, 1000, "command.result", {"id": "c-1", "status": "accepted", "detail": "queued"}),
        ev(3, 2000, "command.result", {"id": "c-2", "status": "rejected",
                                       "detail": {"code": 4}}),
        ev(4, 2500, "command.result", {"id": "c-3", "status": 7}),
        ev(5, 2600, "command.result", {"status": "applied"}),
        ev(6, 2700, "audit.write", {"id": "c-1", "status": "applied"})], after=0), "s")
    store.store_batch(batch([ev(1, 500, "command.result", {"id": "c-1", "status": "failed"})],
                            after=0, edge="edge-2"), "s")
    got = store.command_results("edge-1", ["c-1", "c-2", "c-3", "c-9"])
    assert got == [CommandResult("c-1", "accepted", "queued", 1000),
                   CommandResult("c-2", "rejected", '{"code": 4}', 2000),
                   CommandResult("c-3", None, None, 2500),
                   CommandResult("c-1", "applied", None, 3000)]
    assert store.command_results("edge-1", ["c-2"]) == [got[1]]
    assert store.command_results("edge-2", ["c-1"]) == [
        CommandResult("c-1", "failed", None, 500)]
    assert store.command_results("edge-1", []) == []
    assert store.command_results("edge-9", ["c-1"]) == []


def test_edges_report_the_clock_sync_of_the_last_birth(store: FullStore) -> None:
    store.record_birth("s", Birth(StreamId("edge-1", 1), 1000, False, "1.0"), now=1.0)
    store.store_batch(batch([sample(1)], after=0, edge="edge-2"), "s", now=2.0)
    assert [(e.edge, e.synced) for e in store.edges()] == [("edge-1", False), ("edge-2", None)]
    store.record_birth("s", Birth(StreamId("edge-1", 2), 2000, True, "1.0"), now=3.0)
    assert store.edges()[0].synced is True


def test_alarm_events_are_the_alarm_prefix_before_until_in_time_order(store: FullStore
                                                                      ) -> None:
    store.store_batch(batch([ev(1, 3000, "alarm.leak", {"state": "raised"}),
                             ev(2, 1000, "alarm.offline", {"state": "raised"}, device=None),
                             ev(3, 1500, "alarm"), ev(4, 1500, "alarmist"),
                             ev(5, 1500, "alarms.x"), ev(6, 1500, "alarm/x"),
                             ev(7, 4000, "alarm.late")], after=0), "s")
    got = store.alarm_events(4000)
    assert [(e, d, ts, n) for e, d, ts, n, _ in got] == [
        ("edge-1", None, 1000, "alarm.offline"), ("edge-1", "meter-a", 3000, "alarm.leak")]
    assert json.loads(got[0][4]) == {"state": "raised"}


def test_alarm_events_of_some_edges_are_filtered_by_the_query(store: FullStore) -> None:
    for i, edge in enumerate(("edge-1", "edge-2", "edge-3")):
        store.store_batch(batch([ev(1, 1000 + i, "alarm.leak", {"state": "raised"}),
                                 ev(2, 2000, "device_offline")], after=0, edge=edge), "s")
    everything = store.alarm_events(4000)
    assert [e for e, *_ in everything] == ["edge-1", "edge-2", "edge-3"]
    assert store.alarm_events(4000, edges=None) == everything
    assert store.alarm_events(4000, edges=["edge-3", "edge-1", "edge-1", "edge-9"]) == [
        row for row in everything if row[0] in ("edge-1", "edge-3")]
    assert store.alarm_events(4000, edges=iter(["edge-2"])) == [everything[1]]
    assert store.alarm_events(4000, edges=[]) == []
    assert store.alarm_events(1000, edges=["edge-1"]) == []


def test_a_births_notice_is_an_event_outside_the_stream_stored_once(store: FullStore) -> None:
    stream = StreamId("edge-1", 5)
    store.store_batch(Batch(stream, 0, 1, True, (sample(1), sample(2))), "s")
    notice = Notice(4000, "alarm.outbox_disk", Severity.ALARM,
                    {"state": "raised", "disk_pressure": True, "dropped_seqs": [[3, 9]]})
    store.record_notice(stream, notice, now=5.0)
    store.record_notice(stream, notice, now=6.0)  # the same notice in a later birth
    [e] = store.events(["edge-1"], names=["alarm.outbox_disk"], limit=10)
    assert (e.epoch, e.seq, e.ts, e.severity) == (5, -4000, 4000, "alarm")
    assert json.loads(e.data)["dropped_seqs"] == [[3, 9]]
    assert store.watermark(stream) == 2  # the stream is untouched
    assert store.latest_event_with("edge-1", "disk_pressure") == notice.data
