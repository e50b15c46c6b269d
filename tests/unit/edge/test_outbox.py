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


def test_disk_full_loses_only_that_append_and_raises_an_alarm_after(tmp_path: Path) -> None:
    """SQLITE_FULL, as on a full SD card (max_page_count stands in for the disk here; the
    reliability suite does it with a real full tmpfs)."""
    box = Outbox(tmp_path / "o.sqlite", edge_id="e1")
    box.append([sample(0)])
    (pages,) = box._db.execute("PRAGMA page_count").fetchone()
    box._db.execute(f"PRAGMA max_page_count = {pages}")
    failures = 0
    messages = []
    for i in range(1, 200):
        try:
            box.append([sample(i) for _ in range(20)])
        except OutboxError as exc:
            failures += 1
            messages.append(str(exc))
    assert failures > 0
    assert all("20 records lost" in m for m in messages)
    assert box.write_failures == failures
    stored_before = box.stats().depth
    box._db.execute("PRAGMA max_page_count = 1073741823")  # space freed
    box.append([sample(999)])
    rows = [json.loads(r.body) for r in box.read_after(0, 100_000)]
    assert len(rows) == stored_before + 2
    alarm = rows[-2]
    assert alarm["name"] == "outbox.write_failed"
    assert alarm["severity"] == "alarm"
    assert alarm["data"]["failed_appends"] == failures
    assert alarm["data"]["lost_records"] == 20 * failures
    seqs = [r["seq"] for r in rows]
    assert seqs == sorted(set(seqs)) == list(range(1, len(rows) + 1))  # no hidden seq gap
