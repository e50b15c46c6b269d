"""Waste: fill levels, clearances derived from fill drops merged with manual entries,
monthly volumes, the hazardous store log; idempotent under replay and late data."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

import pytest

from central.errors import ConfigError
from central.institution import ClearanceDetection, InstitutionConfig, parse_institution
from central.ledger import Clearance, EntryKind, HazardousMove, SqliteLedger
from central.metrics import waste_for
from central.store import Store
from central.waste import fill_drops
from protocols.wire import Sample
from tests.unit.central.central_helpers import INSTITUTION, SHANGHAI, batch, local_ms, local_ts

RULE = ClearanceDetection()  # 60 % → 15 % within 3,600 s
MIN = 60_000


def school(**extra: Any) -> InstitutionConfig:
    return parse_institution({**INSTITUTION, "bins": [
        {"edge": "edge-1", "device": "bin-k", "building": "A", "category": "kitchen",
         "capacity_l": 240},
        {"edge": "edge-1", "device": "bin-h", "building": "B", "category": "hazardous",
         "capacity_l": 60},
    ], **extra})


@pytest.mark.parametrize(("high", "low", "gap_min", "drops"), [
    (60.0, 15.0, 60, 1),  # both thresholds exactly, window exactly
    (59.9, 15.0, 10, 0),  # never full enough
    (60.0, 15.1, 10, 0),  # not emptied enough
    (80.0, 5.0, 61, 0),  # too slow: a bin that slowly emptied is not a clearance
])
def test_fill_drop_thresholds_on_both_sides(high: float, low: float, gap_min: int,
                                            drops: int) -> None:
    got = fill_drops([(0, 30.0), (MIN, high), (MIN + gap_min * MIN, low)], RULE)
    assert len(got) == drops


def test_one_drop_per_fill_and_noise_is_ignored() -> None:
    samples: list[tuple[int, float | int | bool | str]] = [
        (0, 70.0), (5 * MIN, 85.0), (10 * MIN, 40.0), (12 * MIN, 10.0),  # one clearance
        (20 * MIN, 8.0), (25 * MIN, "bad"), (30 * MIN, 12.0),  # still empty: no second one
        (90 * MIN, 65.0), (100 * MIN, 2.0)]  # filled again and emptied: second clearance
    got = fill_drops(samples, RULE)
    assert [(d.high_pct, d.low_pct, d.low_ms) for d in got] == [(85.0, 10.0, 12 * MIN),
                                                               (65.0, 2.0, 100 * MIN)]


def test_thresholds_are_configurable_and_checked() -> None:
    inst = school(clearance_detection={"full_pct": 80, "empty_pct": 30, "window_s": 600})
    assert inst.clearance_detection.full_pct == 80
    assert fill_drops([(0, 75.0), (MIN, 20.0)], inst.clearance_detection) == []
    with pytest.raises(ConfigError, match="empty_pct"):
        school(clearance_detection={"full_pct": 20, "empty_pct": 30})
    with pytest.raises(ConfigError, match=r"bins\[0\].category"):
        parse_institution({**INSTITUTION, "bins": [
            {"edge": "e", "device": "b", "building": "A", "category": "compost",
             "capacity_l": 1}]})


def fills(seq0: int, device: str, points: list[tuple[int, float]]) -> list[Sample]:
    return [Sample(seq=seq0 + i, ts=ts, device=device, point="fill_pct", value=v, unit="%")
            for i, (ts, v) in enumerate(points)]


T0 = local_ms(2025, 3, 3, 7, 0)
KITCHEN = [(T0, 30.0), (T0 + 60 * MIN, 75.0), (T0 + 70 * MIN, 8.0),  # 240 × 0.67 = 160.8 L
           (T0 + 25 * 60 * MIN, 90.0), (T0 + 25 * 60 * MIN + 5 * MIN, 10.0)]  # 192 L
HAZARD = [(T0, 62.0), (T0 + 30 * MIN, 12.0)]  # 60 × 0.5 = 30 L


def stored_view(deliveries: list[list[Sample]], tmp_ledger: SqliteLedger) -> Any:
    inst = school()
    with Store(":memory:") as store:
        for records in deliveries:
            store.store_batch(batch(records, after=records[0].seq - 1), "s")
        return waste_for(store, tmp_ledger, inst, start=local_ts(2025, 3, 1),
                         end=local_ts(2025, 4, 1), now=local_ts(2025, 3, 4, 12))


def test_waste_view_merges_sensor_and_manual_entries() -> None:
    ledger = SqliteLedger(":memory:")
    # The hauler's manual line for the same kitchen bin 20 minutes after the sensor drop
    # replaces the derived one; the second kitchen clearance stays a sensor line.
    ledger.put(EntryKind.CLEARANCE, [Clearance(
        ref="H-1", time=datetime.fromtimestamp((T0 + 90 * MIN) / 1000, SHANGHAI),
        category="kitchen", point="bin-k", weight_kg=95.0, volume_l=170.0, bins=1,
        hauler="城管清运", vehicle_plate="浙C·00001")])
    ledger.put(EntryKind.HAZARDOUS, [
        HazardousMove(ref="in-1", time=datetime(2025, 2, 1, tzinfo=SHANGHAI), direction="in",
                      item="灯管", quantity=5),
        HazardousMove(ref="out-1", time=datetime(2025, 3, 10, tzinfo=SHANGHAI),
                      direction="out", item="灯管", quantity=3, manifest_no="M-9")])
    view = stored_view([fills(1, "bin-k", KITCHEN) + fills(10, "bin-h", HAZARD)], ledger)
    assert [(c.source, c.category, c.volume_l) for c in view.clearances] == [
        ("sensor", "hazardous", pytest.approx(30.0)),
        ("manual", "kitchen", 170.0),
        ("sensor", "kitchen", pytest.approx(192.0)),
    ]
    assert (view.sensor_clearances, view.manual_clearances) == (2, 1)
    assert view.clearances[2].ref == f"sensor:edge-1/bin-k@{T0 + 25 * 60 * MIN + 5 * MIN}"
    monthly = {(w.month, w.category): w for w in view.monthly}
    assert monthly[("2025-03", "kitchen")].volume_l == pytest.approx(362.0)
    assert monthly[("2025-03", "kitchen")].weight_kg == 95.0
    assert monthly[("2025-03", "kitchen")].clearances == 2
    assert monthly[("2025-03", "hazardous")].volume_l == pytest.approx(30.0)
    levels = {lv.bin: lv for lv in view.levels}
    assert levels["edge-1/bin-k"].fill_pct == 10.0
    assert levels["edge-1/bin-h"].hazardous
    assert levels["edge-1/bin-h"].label_zh == "有害垃圾"
    assert [m.ref for m in view.hazardous_moves] == ["out-1"]
    assert [(h.item, h.balance) for h in view.hazardous] == [("灯管", 2.0)]


def test_replays_and_late_samples_change_the_figures_exactly_once() -> None:
    ledger = SqliteLedger(":memory:")
    samples = fills(1, "bin-k", KITCHEN) + fills(10, "bin-h", HAZARD)
    expected = stored_view([samples], ledger)
    rnd = random.Random(6)
    for _ in range(5):
        # Any split into batches, delivered in any order with replays: the edge's outbox
        # resending after a lost ack, a backlog arriving after live data.
        cuts = sorted(rnd.sample(range(1, len(samples)), 3))
        parts = [samples[a:b] for a, b in zip([0, *cuts], [*cuts, len(samples)], strict=True)]
        order = parts + [rnd.choice(parts) for _ in range(3)]
        rnd.shuffle(order)
        assert stored_view(order, ledger) == expected
    # Before the late samples arrive, the second clearance is not there; after, it is, once.
    early = stored_view([fills(1, "bin-k", KITCHEN[:3])], ledger)
    assert len(early.clearances) == 1
