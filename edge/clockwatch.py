"""Turns steps of the edge's wall clock into `clock.jump` events in the outbox.

`SystemClock` notices a step whenever it is read and keeps the latest ones
(`recent_jumps`: wall time after the step, step in seconds); this task reads the clock every
second and appends one `clock.jump` event (severity warning) per step, timestamped when it
was noticed, so the central sees when and by how much the clock moved next to the readings
it affected, not only a counter on the edge (RELIABILITY.md scenario 12). Clocks without
step detection (the simulation's `VirtualClock`) are left alone.
"""

from __future__ import annotations

import asyncio
import collections
import logging

from edge.errors import OutboxError
from edge.outbox import Outbox
from protocols.clock import PLAUSIBLE_FLOOR, Clock
from protocols.wire import Event, Severity

log = logging.getLogger(__name__)


def jump_event(at: float, jump_s: float, synced: bool) -> Event:
    return Event(seq=0, ts=round(at * 1000), name="clock.jump", severity=Severity.WARNING,
                 data={"jump_s": round(jump_s, 3), "synced": synced}, synced=synced)


async def watch_clock(clock: Clock, outbox: Outbox, *, period_s: float = 1.0) -> None:
    steps = getattr(clock, "recent_jumps", None)
    if not isinstance(steps, collections.deque):
        return
    while True:
        await asyncio.sleep(period_s)
        clock.now()  # reading the clock is what notices a step
        events = []
        while steps:
            at, jump_s = steps.popleft()
            log.warning("wall clock stepped by %+.1f s", jump_s)
            events.append(jump_event(at, jump_s, clock.synced and at >= PLAUSIBLE_FLOOR))
        if events:
            try:
                outbox.append(events)
            except OutboxError as exc:  # disk full: the outbox's own alarm reports the loss
                log.warning("%s", exc)
