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
    assert event["data"]["steps"] == 1
    outbox.close()


async def test_a_clock_without_step_detection_is_not_watched(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite", edge_id="edge-1")
    async with asyncio.timeout(1):
        await watch_clock(VirtualClock(1_750_000_000.0), outbox)  # returns at once
    outbox.close()
