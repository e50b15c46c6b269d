"""Scenario 12 at the central: records from a wrong or unsynced clock are flagged and
counted, never silently dropped: unsynced and far-past ones are stored, future ones beyond
the tolerance quarantined (dead letters), so they cannot become latest values."""

from __future__ import annotations

import json
from pathlib import Path

from central.ingest import CLOCK_FUTURE_S, Ingestor, IngestStats
from central.store import Store
from protocols.clock import VirtualClock
from protocols.wire import Event, IntervalRecord, Sample, Severity, encode
from tests.unit.central.central_helpers import batch

NOW = 1_790_000_000.0  # 2026-09-22
NOW_MS = int(NOW * 1000)
TOPIC = "gg/v1/site-1/edge-1/telemetry"


def test_clock_problems_are_counted_and_future_records_quarantined(tmp_path: Path) -> None:
    store = Store(tmp_path / "central.sqlite")
    stats = IngestStats()
    ingestor = Ingestor(store, VirtualClock(NOW), stats)
    records = [
        Sample(1, NOW_MS, "m1", "power_w", 1.0, "W"),  # fine
        Sample(2, 86_400_000, "m1", "power_w", 2.0, "W", synced=False),  # 1970, unsynced
        Sample(3, NOW_MS + (2 * 86_400_000), "m1", "power_w", 3.0, "W"),  # +2 days
        Sample(4, NOW_MS - 3_600_000, "m1", "power_w", 4.0, "W", synced=False),  # 1 h back
        IntervalRecord(5, "m1", "energy_import_kwh", NOW_MS + int(CLOCK_FUTURE_S * 2000), 900,
                       1.0, "kWh"),  # an interval that starts in the future
        Event(6, NOW_MS + 2 * 86_400_000, "clock.jump", Severity.WARNING, None,
              {"jump_s": 172_800}),  # the edge's own evidence of the step: kept
    ]
    out = ingestor.handle(TOPIC, encode(batch(records, after=0)))
    assert out is not None
    assert out.ack.upto == 6  # acknowledged: stored or quarantined, nothing dropped
    assert (stats.clock_unsynced, stats.clock_future, stats.clock_far_past) == (2, 3, 1)
    assert [r[4] for r in store.rows("events")] == ["clock.jump"]
    assert [r[2] for r in store.rows("samples")] == [1, 2, 4]
    assert store.rows("intervals") == []
    held = store.dead_letters()
    assert len(held) == 2
    assert all("after the central's clock" in d.error for d in held)
    assert sorted(json.loads(d.payload)["seq"] for d in held) == [3, 5]
    assert stats.dead_letters == 2
    store.close()
