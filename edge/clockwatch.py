"""Turns steps of the edge's wall clock into `clock.jump` events in the outbox.

`SystemClock` counts a step whenever it is read (`jumps`, `last_jump_s`); this task reads it
every second and appends one `clock.jump` event (severity warning) per new step, so the
central sees when and by how much the clock moved next to the readings it affected, not
only a counter on the edge (RELIABILITY.md scenario 12). Clocks without step detection
(the simulation's `VirtualClock`) are left alone.
"""

from __future__ import annotations

import asyncio
import logging

from edge.errors import OutboxError
from edge.outbox import Outbox
from protocols.clock import Clock
from protocols.wire import Event, Severity

log = logging.getLogger(__name__)


def jump_event(clock: Clock, steps: int, jump_s: float) -> Event:
    now = clock.now()
    return Event(seq=0, ts=round(now * 1000), name="clock.jump", severity=Severity.WARNING,
                 data={"jump_s": round(jump_s, 3), "steps": steps, "synced": clock.synced},
                 synced=clock.synced)


async def watch_clock(clock: Clock, outbox: Outbox, *, period_s: float = 1.0) -> None:
    if not isinstance(getattr(clock, "jumps", None), int):
        return
    seen: int = getattr(clock, "jumps")  # noqa: B009 - not part of the Clock port
    while True:
        await asyncio.sleep(period_s)
        clock.now()  # reading the clock is what detects a step
        jumps: int = getattr(clock, "jumps")  # noqa: B009
        if jumps == seen:
            continue
        jump_s: float = getattr(clock, "last_jump_s")  # noqa: B009
        log.warning("wall clock stepped by %+.1f s (%d steps since start)", jump_s, jumps)
        try:
            outbox.append([jump_event(clock, jumps - seen, jump_s)])
        except OutboxError as exc:  # disk full: the outbox's own alarm reports the loss
            log.warning("%s", exc)
        seen = jumps
