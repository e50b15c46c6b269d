"""Outbox: seq assignment, ack deletes, persistence across reopen, bounded overflow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.errors import OutboxError
from edge.intervals import MeterState
from edge.outbox import Outbox
from protocols.wire import Channel, Event, IntervalFlag, IntervalRecord, Sample, Severity


def sample(ts: int = 0) -> Sample:
    return Sample(0, ts, "m1", "power_w", 1.5, "W")


def test_seq_is_strictly_increasing_and_survives_reopen(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", edge_id="e1")
    assert box.append([sample(), sample()]) == [1, 2]
    stream = box.stream
    box.close()
    box = Outbox(tmp_path / "o.sqlite", edge_id="e1")
    assert box.stream == stream
    assert box.append([sample()]) == [3]
    assert [json.loads(r.body)["seq"] for r in box.read_after(0, 10)] == [1, 2, 3]


def test_events_go_to_the_events_channel(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", edge_id="e1")
    box.append([sample(), Event(0, 1, "device.offline", Severity.WARNING, "m1")])
    assert [r.channel for r in box.read_after(0, 10)] == [Channel.TELEMETRY, Channel.EVENTS]


def test_ack_deletes_only_up_to_the_acknowledged_seq(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", edge_id="e1")
    box.append([sample(i) for i in range(10)])
    assert box.ack(4) == 4
    assert box.ack(3) == 0  # stale ack
    assert [r.seq for r in box.read_after(0, 100)] == list(range(5, 11))
    box.close()
    box = Outbox(tmp_path / "o.sqlite", edge_id="e1")
    assert box.acked_upto == 4
    assert box.stats().depth == 6


def test_ack_beyond_last_seq_is_clamped(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", edge_id="e1")
    box.append([sample()])
    box.ack(99)
    assert box.acked_upto == 1
    assert box.append([sample()]) == [2]


def test_meter_state_is_stored_with_the_records(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", edge_id="e1")
    state = MeterState(10, 5.5, 0, 1.25, {IntervalFlag.GAP})
    box.append([IntervalRecord(0, "m1", "energy_import_kwh", 0, 900, 1.0, "kWh")],
               meter_states=[("m1", "energy_import_kwh", state)])
    box.close()
    again = Outbox(tmp_path / "o.sqlite", edge_id="e1").meter_states()
    assert again == {("m1", "energy_import_kwh"): state}


def test_wiped_outbox_is_a_new_stream(tmp_path: Path) -> None:
    first = Outbox(tmp_path / "a.sqlite", edge_id="e1", epoch=1)
    second = Outbox(tmp_path / "b.sqlite", edge_id="e1", epoch=2)
    assert first.stream != second.stream


def test_outbox_of_another_edge_is_refused(tmp_path: Path) -> None:
    Outbox(tmp_path / "o.sqlite", edge_id="e1").close()
    with pytest.raises(OutboxError, match="belongs to edge 'e1'"):
        Outbox(tmp_path / "o.sqlite", edge_id="e2")


def test_overflow_drops_samples_first_and_leaves_a_counted_gap_marker(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", edge_id="e1", max_rows=100)
    box.append([IntervalRecord(0, "m1", "energy_import_kwh", 0, 900, 1.0, "kWh")])
    box.append([sample(i) for i in range(150)])
    stats = box.stats()
    assert stats.depth <= 100
    kinds = [json.loads(r.body)["kind"] for r in box.read_after(0, 1000)]
    assert kinds[0] == "interval"  # the interval record survived
    markers = [json.loads(r.body) for r in box.read_after(0, 1000) if r.channel is Channel.EVENTS]
    assert markers
    assert all(m["name"] == "outbox.overflow" for m in markers)
    dropped = sum(m["data"]["dropped_samples"] for m in markers)
    assert dropped == stats.dropped_samples
    assert stats.depth + stats.dropped_samples + stats.dropped_other == 151 + len(markers)


def test_disk_full_refuses_records_by_seq_and_reports_the_exact_ranges(tmp_path: Path) -> None:
    """SQLITE_FULL, as on a full SD card (max_page_count stands in for the disk here; the
    reliability suite and tests/integration/test_outbox_disk.py use a real full tmpfs)."""
    box = Outbox(tmp_path / "o.sqlite", edge_id="e1", reserve_bytes=0)
    box.append([sample(0)], now=1000.0)
    (pages,) = box._db.execute("PRAGMA page_count").fetchone()
    box._db.execute(f"PRAGMA max_page_count = {pages}")
    t = 1000.0
    for i in range(1, 200):  # never raises: refused records are counted, not thrown
        t += 0.5
        box.append([sample(i) for _ in range(20)], now=t)
    st = box.disk_status
    assert st.pressure
    assert box.write_failures >= 1
    assert box.refused_records == st.dropped_records > 0
    refused = {q for a, b in st.dropped_seqs for q in range(a, b + 1)}
    stored_before = {json.loads(r.body)["seq"] for r in box.read_after(0, 100_000)}
    assert not refused & stored_before
    version = st.version
    box._db.execute("PRAGMA max_page_count = 1073741823")  # space freed
    box.append([sample(999)], now=t + 0.5)  # within the retry pause: still refused
    box.append([sample(1000)], now=t + 10)
    assert not st.pressure
    assert st.version > version
    rows = [json.loads(r.body) for r in box.read_after(0, 100_000)]
    alarm = rows[-2]
    assert alarm["name"] == "outbox.disk_full"
    assert alarm["severity"] == "alarm"
    in_stream = {q for a, b in alarm["data"]["dropped_seqs"] for q in range(a, b + 1)}
    assert in_stream == {q for a, b in st.dropped_seqs for q in range(a, b + 1)}
    assert alarm["data"]["dropped_records"] == len(in_stream) == box.refused_records
    seqs = [r["seq"] for r in rows]
    assert seqs == sorted(set(seqs))
    # every seq ever given is stored or named in a dropped range: no hidden gap
    assert set(seqs) | in_stream == set(range(1, seqs[-1] + 1))
    box.append([sample(1001)], now=t + 11)  # the report is written once
    assert [r["name"] for r in (json.loads(x.body) for x in box.read_after(0, 100_000))
            if r.get("name") == "outbox.disk_full"] == ["outbox.disk_full"]


def test_dropped_ranges_survive_a_restart_during_pressure(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", edge_id="e1", reserve_bytes=0,
                 min_free_bytes=1 << 62)  # a mark no disk reaches: everything is refused
    assert box.append([sample(1), sample(2)], now=1.0) == []
    assert box.disk_status.pressure
    assert box.disk_status.dropped_seqs == [[1, 2]]
    box.close()
    box = Outbox(tmp_path / "o.sqlite", edge_id="e1", reserve_bytes=0,
                 min_free_bytes=64 << 10)
    assert box.disk_status.pressure
    assert box.disk_status.dropped_seqs == [[1, 2]]
    assert box.append([sample(3)], now=2.0) == [4]
    first = json.loads(box.read_after(0, 10)[0].body)
    assert first["name"] == "outbox.disk_full"
    assert first["data"]["dropped_seqs"] == [[1, 2]]


def test_ack_moves_on_even_when_the_delete_cannot_be_written(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", edge_id="e1", reserve_bytes=0)
    box.append([sample(i) for i in range(10)])
    box._db.execute("PRAGMA query_only = 1")  # every write fails, reads work
    assert box.ack(6) == 0
    assert box.acked_upto == 6
    assert box.ack_write_failures == 1
    assert [json.loads(r.body)["seq"] for r in box.read_after(box.acked_upto, 10)] == [
        7, 8, 9, 10]
    box._db.execute("PRAGMA query_only = 0")
    box.ack(8)
    assert box.stats().depth == 2
