"""A hand-driven clock and a small routing configuration for the notifier tests."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from central.notify.config import NotifyConfig, parse_notify
from central.notify.notifier import AlarmSignal

T0 = dt.datetime(2026, 6, 1, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()


class ManualClock:
    """Virtual time moved by the test; `sleep_until` yields until the test moves it."""

    def __init__(self, now: float = T0) -> None:
        self.t = now

    def now(self) -> float:
        return self.t

    @property
    def synced(self) -> bool:
        return True

    async def sleep_until(self, when: float) -> None:
        while self.t < when:
            await asyncio.sleep(0.001)

    def register(self) -> None:
        pass

    def unregister(self) -> None:
        pass

    def advance(self, seconds: float) -> None:
        self.t += seconds


def config(**overrides: Any) -> NotifyConfig:
    data: dict[str, Any] = {
        "dashboard_url": "http://dash.example",
        "channels": {"ops": {"kind": "webhook", "url": {"env": "NOTIFY_TEST_URL"}},
                     "boss": {"kind": "webhook", "url": {"env": "NOTIFY_TEST_URL"}}},
        "flap_window_s": 300,
        "retry": {"initial_s": 30, "max_s": 600, "give_up_after_h": 24},
        "institutions": {"school": {
            "recipients": {"liaison": ["ops"], "director": ["boss"]},
            "quiet_hours": {"start": "22:00", "end": "07:00"},
            "routes": [{"name": "all", "stages": [
                {"recipients": ["liaison"]},
                {"after_min": 30, "recipients": ["director"]}],
                "repeat_every_min": 60, "max_reminders": 2}]}}}
    data.update(overrides)
    return parse_notify(data)


def signal(state: str, ts: float, kind: str = "leak", device: str = "water-1",
           **data: Any) -> AlarmSignal:
    return AlarmSignal(institution="school", edge="edge-1", device=device, kind=kind,
                       state=state, ts_ms=int(ts * 1000), rule=f"{kind}-rule",
                       point="water_m3", building="教学楼", room="101",
                       data={"flow": 0.4, **data})
