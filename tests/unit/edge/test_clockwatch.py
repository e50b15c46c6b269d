"""Each step of the wall clock becomes one `clock.jump` event in the outbox."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from edge.clockwatch import watch_clock
from edge.outbox import Outbox
from protocols.clock import SystemClock, VirtualClock


async def test_a_step_back_is_appended_as_a_clock_jump_event(tmp_path: Path) -> None:
    shift = [0.0]
    clock = SystemClock(wall=lambda: time.time() + shift[0])
    outbox = Outbox(tmp_path / "outbox.sqlite", edge_id="edge-1")
    task = asyncio.create_task(watch_clock(clock, outbox, period_s=0.02))
    try:
        await asyncio.sleep(0.1)
        assert outbox.last_seq == 0  # no step, no event
        shift[0] = -3600.0
        async with asyncio.timeout(5):
            while outbox.last_seq == 0:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
    finally:
        task.cancel()
    [row] = outbox.read_after(0, 10)
    event = json.loads(row.body)
    assert event["name"] == "clock.jump"
    assert event["severity"] == "warning"
    assert abs(event["data"]["jump_s"] + 3600) < 1
    assert event["ts"] > 0
    outbox.close()


async def test_a_clock_without_step_detection_is_not_watched(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite", edge_id="edge-1")
    async with asyncio.timeout(1):
        await watch_clock(VirtualClock(1_750_000_000.0), outbox)  # returns at once
    outbox.close()


async def test_two_steps_between_checks_are_two_events(tmp_path: Path) -> None:
    shift = [0.0]
    clock = SystemClock(wall=lambda: time.time() + shift[0])
    outbox = Outbox(tmp_path / "outbox.sqlite", edge_id="edge-1")
    task = asyncio.create_task(watch_clock(clock, outbox, period_s=0.5))
    try:
        shift[0] = 1_000 - time.time()  # to 1970 ...
        clock.now()  # ... noticed by a poller reading the clock
        shift[0] = 2 * 86_400.0  # ... then two days ahead
        clock.now()
        async with asyncio.timeout(5):
            while outbox.last_seq < 2:
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
    events = [json.loads(r.body) for r in outbox.read_after(0, 10)]
    assert [e["name"] for e in events] == ["clock.jump", "clock.jump"]
    assert events[0]["ts"] < 2_000_000  # noticed at 1970, and stamped so
    assert events[0]["synced"] is False
    assert events[1]["data"]["jump_s"] > 50 * 365 * 86_400
    outbox.close()
