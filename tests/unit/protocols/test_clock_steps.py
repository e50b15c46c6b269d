"""A step of the wall clock ends a `SystemClock.sleep_until` early (a 1 h step back must not
stall a poller for an hour), and the reliability suite's offset file shifts the wall clock."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from protocols.clock import TEST_CLOCK_OFFSET_FILE, SystemClock


async def test_a_step_back_ends_the_sleep_instead_of_waiting_it_out() -> None:
    shift = [0.0]
    clock = SystemClock(wall=lambda: time.time() + shift[0])
    target = clock.now() + 3.0
    sleeper = asyncio.create_task(clock.sleep_until(target))
    await asyncio.sleep(0.2)
    shift[0] = -3600.0  # NTP corrects a fast clock by an hour
    async with asyncio.timeout(2.5):  # well before the 3 s, let alone the hour
        await sleeper
    assert clock.jumps == 1
    assert clock.last_jump_s == pytest.approx(-3600, abs=1)


async def test_without_a_step_the_sleep_lasts_until_the_wall_clock_time() -> None:
    clock = SystemClock()
    target = clock.now() + 0.3
    await clock.sleep_until(target)
    assert clock.now() >= target
    assert clock.jumps == 0


def test_the_offset_file_shifts_the_wall_clock(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "offset"
    path.write_text(str(2 * 86_400), encoding="utf-8")
    monkeypatch.setenv(TEST_CLOCK_OFFSET_FILE, str(path))
    clock = SystemClock()
    assert clock.now() == pytest.approx(time.time() + 2 * 86_400, abs=1)
    path.write_text("", encoding="utf-8")  # half written: the last offset holds
    time.sleep(0.15)
    assert clock.now() == pytest.approx(time.time() + 2 * 86_400, abs=1)


def test_without_the_variable_the_wall_clock_is_real(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TEST_CLOCK_OFFSET_FILE, raising=False)
    assert SystemClock().now() == pytest.approx(time.time(), abs=1)
