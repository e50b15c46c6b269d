"""One injectable clock for edge, central and simulators.

Everything that needs "now" or has to wait for a point in time asks a `Clock`, never
`time.time()` or `asyncio.sleep()` directly, so a simulated week of an institution runs in
seconds in CI through the same code paths as production.

Times are POSIX seconds (UTC) as floats.

- `SystemClock` is the production clock.
- `VirtualClock` is the simulation clock. Time stands still while the registered
  *participants* (the edge's polling loops) work; when every participant is waiting in
  `sleep_until`, the clock jumps to the earliest wake-up. A device read therefore happens at
  exactly the simulated instant it was scheduled for, which is what lets tests compare the
  central's figures with the simulator's ground truth to the meter's resolution. With a
  `speed`, jumps are paced so that simulated time runs at most `speed` times real time.
  Tasks that are not participants (uplink, ingest, HTTP) run in real time and only read
  `now()`.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
import math
import os
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    """The port every component uses for time."""

    def now(self) -> float:
        """Current UTC time, POSIX seconds."""
        ...

    @property
    def synced(self) -> bool:
        """Whether the clock is believed correct (NTP or platform sync)."""
        ...

    async def sleep_until(self, when: float) -> None:
        """Return once `now() >= when`."""
        ...

    def register(self) -> None:
        """Declare a task whose waits gate simulated time (a no-op on real clocks)."""
        ...

    def unregister(self) -> None:
        ...


# No reading greenguard takes can be older than its first release: a wall clock before this
# is a Pi that booted without its RTC or network time (it shows 1970), not the past.
PLAUSIBLE_FLOOR = 1_704_067_200.0  # 2024-01-01T00:00:00Z
# A change of the wall clock against the monotonic clock beyond this is a step (NTP, a person).
JUMP_TOLERANCE_S = 2.0


class SystemClock:
    """Wall-clock time that knows when not to trust itself.

    `synced` is False while the wall clock is before `PLAUSIBLE_FLOOR` or when whoever checks
    NTP says so (`set_synced`); readings taken then carry `synced: false` and the central
    counts them. Steps of the wall clock (forward or backward, e.g. NTP correcting a
    2-day-fast clock) are counted in `jumps` with the last one's size in `last_jump_s`.
    """

    def __init__(self, *, synced: bool = True,
                 wall: Callable[[], float] | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._synced = synced
        self._wall: Callable[[], float] = wall if wall is not None else _wall_from_environment()
        self._monotonic = monotonic
        self._offset = self._wall() - monotonic()
        self.jumps = 0
        self.last_jump_s = 0.0
        # (wall time after the step, step in seconds) of the latest steps, for whoever
        # reports them one by one (edge/clockwatch.py); bounded.
        self.recent_jumps: collections.deque[tuple[float, float]] = collections.deque(
            maxlen=64)

    def now(self) -> float:
        wall = self._wall()
        offset = wall - self._monotonic()
        step = offset - self._offset
        if abs(step) > JUMP_TOLERANCE_S:
            self.jumps += 1
            self.last_jump_s = step
            self.recent_jumps.append((wall, step))
        self._offset = offset
        return wall

    @property
    def synced(self) -> bool:
        return self._synced and self._wall() >= PLAUSIBLE_FLOOR

    def set_synced(self, value: bool) -> None:
        self._synced = value

    def register(self) -> None:
        pass

    def unregister(self) -> None:
        pass

    async def sleep_until(self, when: float) -> None:
        """Return at `when` on the wall clock, or early when the wall clock steps: a 1 h step
        backwards must not stall a poller for an hour; it re-plans from `now()`."""
        jumps = self.jumps
        delay = when - self.now()
        while delay > 0 and self.jumps == jumps:
            await asyncio.sleep(min(delay, 1.0))
            delay = when - self.now()


class VirtualClock:
    """Discrete-event simulated time shared by all components of one process."""

    def __init__(self, start: float, *, speed: float | None = None) -> None:
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed!r}")
        self._now = float(start)
        self._speed = speed
        self._participants = 0
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()
        self._changed = asyncio.Event()
        self._real_anchor: float | None = None
        self._sim_anchor = self._now

    def now(self) -> float:
        return self._now

    @property
    def synced(self) -> bool:
        return True

    @property
    def speed(self) -> float | None:
        return self._speed

    def register(self) -> None:
        """Declare one more task whose waits gate the advance of time."""
        self._participants += 1
        self._changed.set()

    def unregister(self) -> None:
        self._participants -= 1
        self._changed.set()

    async def sleep_until(self, when: float) -> None:
        if when <= self._now:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (when, next(self._counter), fut))
        self._changed.set()
        try:
            await fut
        finally:
            if not fut.done():
                fut.cancel()
            self._changed.set()

    async def settled(self) -> None:
        """Return once every participant is waiting for a future time (no poll under way)."""
        while self._waiting() < self._participants:
            self._changed.clear()
            await self._changed.wait()

    def _waiting(self) -> int:
        return sum(1 for _, _, fut in self._heap if not fut.done())

    async def run(self, until: float | None = None) -> None:
        """Advance time forever (or up to `until`); run this as one task of the process."""
        loop = asyncio.get_running_loop()
        self._real_anchor = loop.time()
        self._sim_anchor = self._now
        while until is None or self._now < until:
            # Drop cancelled sleepers, then wait until every participant is asleep.
            while self._heap and self._heap[0][2].done():
                heapq.heappop(self._heap)
            if not self._heap or self._waiting() < self._participants:
                self._changed.clear()
                await self._changed.wait()
                continue
            target = self._heap[0][0]
            if until is not None and target > until:
                target = until
            if self._speed is not None:
                real_due = self._real_anchor + (target - self._sim_anchor) / self._speed
                delay = real_due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            self._now = max(self._now, target)
            while self._heap and self._heap[0][0] <= self._now:
                _, _, fut = heapq.heappop(self._heap)
                if not fut.done():
                    fut.set_result(None)
            # Let the woken tasks run up to their next await before re-checking.
            await asyncio.sleep(0)


# For the reliability suite only: a process-level test shifts the wall clock of a running
# edge (to 1970, two days ahead, one hour back) by writing an offset in seconds to the file
# this variable names. Never set in production; without it the wall clock is time.time.
TEST_CLOCK_OFFSET_FILE = "GREENGUARD_TEST_CLOCK_OFFSET_FILE"


def _wall_from_environment() -> Callable[[], float]:
    path = os.environ.get(TEST_CLOCK_OFFSET_FILE)
    if not path:
        return time.time
    state = {"offset": 0.0, "checked": -math.inf}

    def wall() -> float:
        mono = time.monotonic()
        if mono - state["checked"] >= 0.1:  # re-read at most ten times a second
            state["checked"] = mono
            try:
                with open(path, encoding="utf-8") as f:
                    state["offset"] = float(f.read())
            except (OSError, ValueError):
                pass  # keep the last offset while the file is being rewritten
        return time.time() + state["offset"]

    return wall
