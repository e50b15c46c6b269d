"""The uploader's link against the test receiver: a refused login (wrong key, reversed MD5
order, a platform that fails every login) sends no data and says why in the log; the
`run()` loop heartbeats an idle link and keeps the platform's clock answer."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from central.institution import InstitutionConfig
from central.reader import TenantReader
from central.store import Store
from central.upload.city import CityConfig, Secret, wire_settings
from central.upload.state import UploadState
from central.upload.uploader import Uploader
from protocols.platform.codec import PlatformCodec
from protocols.platform.crypto import Md5Order
from simulators.platform_receiver import Mode, PlatformReceiver, ReceiverSettings
from tests.faults.test_platform_upload import INSTITUTION, KEYS, T0, Feed, SimClock

pytestmark = pytest.mark.integration
TZ = ZoneInfo("Asia/Shanghai")
KEY = "0123456789abcdef"


def _city(port: int, **changes: object) -> CityConfig:
    doc = {"city": "T", "platform": {"host": "127.0.0.1", "port": port}, "framing": "1F1F",
           "period_min": 60, "timeout_s": 2.0, "encryption": {"key_env": "X"},
           "start": datetime.fromtimestamp(T0 / 1000, TZ).date(),
           "buildings": {"teaching": {"building_id": "330302D101"},
                         "admin": {"building_id": "330302A101"}}}
    return CityConfig.model_validate({**doc, **changes})


def _uploader(tmp_path: Path, city: CityConfig, key: str, clock: SimClock
              ) -> tuple[Uploader, UploadState, Store]:
    institution = InstitutionConfig.model_validate(INSTITUTION)
    store = Store(tmp_path / "central.sqlite")
    feed = Feed(store)
    for edge in ("edge-1", "edge-2"):
        feed.put(edge, T0, T0 + 86_400_000)
    secret = Secret(key, key.encode())
    state = UploadState(tmp_path / "upload.sqlite")
    up = Uploader(TenantReader(store, institution), institution, city, secret, state, clock,
                  codec=PlatformCodec(wire_settings(city, secret)))
    return up, state, store


@pytest.mark.parametrize(("why", "key", "order", "mode"), [
    ("wrong key", "fedcba9876543210", "sequence+key", Mode.NORMAL),
    ("md5 order reversed", KEY, "key+sequence", Mode.NORMAL),
    ("platform fails logins", KEY, "sequence+key", Mode.FAIL),
])
async def test_refused_login_sends_nothing_and_logs_why(
        tmp_path: Path, why: str, key: str, order: str, mode: Mode) -> None:
    rx_settings = ReceiverSettings(framing="1F1F", key_text=KEY, key=KEY.encode(),
                                   iv=KEY.encode())
    clock = SimClock(T0 / 1000 + 86_400)
    async with PlatformReceiver(rx_settings, tmp_path / "rx.sqlite", mode=mode) as rx:
        # The uploader encrypts data with `key`; the receiver would refuse to decrypt it,
        # but a wrong key must already fail at the handshake.
        city = _city(rx.port, md5_order=Md5Order(order))
        up, state, store = _uploader(tmp_path, city, key, clock)
        assert await up.run_pass() == 0
        await up.close()
        assert rx.received() == []
        assert rx.event_counts().get("login_failed", 0) == len(KEYS)
        errors = {s.building: s.last_error for s in up.status()}
        for building in KEYS:
            err = errors[building]
            assert err is not None
            assert (err.operation, err.outcome) == ("continuous", "refused")
            assert "login refused" in err.detail
        state.close()
        store.close()


class SteppingClock(SimClock):
    """Each sleep costs a few real milliseconds, so the loop under test cannot spin."""

    async def sleep_until(self, when: float) -> None:
        await asyncio.sleep(0.005)
        self.t = max(self.t, when)


async def test_run_loop_uploads_and_heartbeats_an_idle_link(tmp_path: Path) -> None:
    rx_settings = ReceiverSettings(framing="1F1F", key_text=KEY, key=KEY.encode(),
                                   iv=KEY.encode())
    clock = SteppingClock(T0 / 1000 + 86_400 + 600)
    async with PlatformReceiver(rx_settings, tmp_path / "rx.sqlite",
                                clock=lambda: 1_800_000_000.0) as rx:
        up, state, store = _uploader(tmp_path, _city(rx.port, heartbeat_s=60), KEY, clock)
        task = asyncio.create_task(up.run(poll_s=60))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not task.done():
            await asyncio.sleep(0.01)
            if rx.event_counts().get("heartbeat", 0) >= 2 and len(rx.received()) >= 48:
                break
        task.cancel()  # the loop ends when cancelled, whatever it was doing
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)
        assert len(rx.received()) == 48  # a day of hours, two buildings
        assert rx.event_counts().get("heartbeat", 0) >= 2
        expected = datetime.fromtimestamp(1_800_000_000).strftime("%Y%m%d%H%M%S")
        assert {s.platform_time for s in up.status()} == {expected}
        assert all(s.backlog == 0 for s in up.status())
        state.close()
        store.close()


async def test_cancel_ends_a_busy_run_loop(tmp_path: Path) -> None:
    """Regression: with `asyncio.wait_for` around the exchange (Python 3.11), a cancel that
    arrived as the platform answered was swallowed and the loop ran on. An instant clock
    keeps the loop exchanging heartbeats all the time, so the cancel lands mid-exchange."""
    rx_settings = ReceiverSettings(framing="1F1F", key_text=KEY, key=KEY.encode(),
                                   iv=KEY.encode())
    async with PlatformReceiver(rx_settings, tmp_path / "rx.sqlite") as rx:
        for attempt in range(5):
            clock = SimClock(T0 / 1000 + 86_400 + 600)
            path = tmp_path / str(attempt)
            path.mkdir()
            up, state, store = _uploader(path, _city(rx.port), KEY, clock)
            task = asyncio.create_task(up.run(poll_s=60))
            await asyncio.sleep(0.2)
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=20)
            assert task in done, "the cancelled run loop did not end"
            assert task.cancelled()
            state.close()
            store.close()
