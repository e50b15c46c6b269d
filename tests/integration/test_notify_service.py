"""The central with notify.yaml against a real Mosquitto: a leak event published by an edge
is stored, acknowledged, and reaches a loopback WeCom robot once; the API shows it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from central.auth import Authenticator, Role, TokenStore
from central.config import CentralSettings
from protocols.wire import Batch, Event, Severity
from tests.conftest import Broker
from tests.integration.test_central_ingest import (
    STREAM,
    acks_until,
    central,
    edge,
    send,
    settings,  # noqa: F401 - the fixture
)
from tests.unit.central.central_helpers import TEST_SECRET
from tests.unit.central.notify.receivers import BotReceiver, serve

pytestmark = pytest.mark.integration


def leak(seq: int) -> Event:
    return Event(seq, 1_750_000_000_000 + seq, "alarm.leak", Severity.ALARM, "m1",
                 {"state": "raised", "rule": "leak", "point": "water_m3", "flow": 0.5})


async def test_a_leak_reaches_the_robot_once_and_the_api_shows_it(
        mosquitto: Broker, settings: CentralSettings, tmp_path: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    with serve(BotReceiver()) as rx:
        notify = tmp_path / "notify.yaml"
        notify.write_text(f"""
channels:
  ops: {{kind: wecom, key: {{env: GG_IT_WECOM}}, url: "{rx.url('/cgi-bin/webhook/send')}"}}
institutions:
  demo:
    routes: [{{name: all, stages: [{{recipients: [ops]}}]}}]
""", encoding="utf-8")
        monkeypatch.setenv("GG_IT_WECOM", "wk-1")
        configured = settings.model_copy(update={"notify_config": notify})
        async with central(configured), edge(mosquitto) as client:
            await send(client, Batch(STREAM, 0, 1_750_000_000_000, True, (leak(1),)))
            await acks_until(client, 1)
            await send(client, Batch(STREAM, 0, 1_750_000_000_000, True, (leak(1),)))
            await acks_until(client, 1)
            async with asyncio.timeout(15):
                while not rx.received:
                    await asyncio.sleep(0.05)
            tokens = TokenStore(configured.auth_path)
            _, raw = Authenticator(TEST_SECRET, tokens).issue("it", Role.VIEWER)
            tokens.close()
            async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{configured.http_port}",
                    headers={"Authorization": f"Bearer {raw}"}) as http:
                episodes = (await http.get("/api/v1/institutions/demo/notify/episodes")).json()
            await asyncio.sleep(0.3)  # time for a second (wrong) message to arrive
    [got] = rx.received
    assert "漏水 · 教学楼" in got.body["markdown"]["content"]
    [episode] = episodes
    assert (episode["state"], episode["device"]) == ("notified", "m1")
