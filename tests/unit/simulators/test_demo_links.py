"""The demo's links: the burst pipe's flow, the city file it uploads with, the notify.yaml
and the loopback webhook receiver that counts what it is sent."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path

import pytest

from central.notify.config import load_notify
from central.upload.city import load_city, read_secret
from simulators.demo_links import (
    LeakingFlow,
    WebhookReceiver,
    city_config,
    notify_config,
)
from simulators.profile import ADMIN, FlowProfile, ProfileParams

T0 = 1_772_380_800.0  # 2026-03-02 00:00 Beijing, a minute boundary


def _flow() -> FlowProfile:
    return FlowProfile(ProfileParams(base=0.12, peak=3.8, shape=ADMIN, seed=106))


def test_the_leak_adds_its_flow_only_inside_its_window() -> None:
    inner = _flow()
    leak = LeakingFlow(inner, T0 + 3600, T0 + 4 * 3600, 6.0)
    assert leak.value_at(T0 + 3599) == inner.value_at(T0 + 3599)
    assert leak.value_at(T0 + 3600) == pytest.approx(inner.value_at(T0 + 3600) + 6.0)
    assert leak.value_at(T0 + 4 * 3600) == inner.value_at(T0 + 4 * 3600)
    # Ground truth: three hours of 6 m³/h more over the day, split anywhere.
    day = leak.integral(T0, T0 + 86_400)
    assert day == pytest.approx(inner.integral(T0, T0 + 86_400) + 18.0, rel=1e-12)
    mid = T0 + 2 * 3600 + 17.5
    assert leak.integral(T0, mid) + leak.integral(mid, T0 + 86_400) == pytest.approx(day)
    assert leak.integral(T0 + 3600, T0 + 3660) == pytest.approx(
        inner.integral(T0 + 3600, T0 + 3660) + 0.1)


def test_the_city_file_keeps_its_key_and_names_the_receiver(tmp_path: Path) -> None:
    first = city_config(tmp_path, port=0, start=date(2026, 3, 2))
    key = (tmp_path / "platform.key").read_text()
    path = city_config(tmp_path, port=40123, start=date(2026, 3, 2))
    assert path == first
    assert (tmp_path / "platform.key").read_text() == key  # the receiver read this one
    assert (tmp_path / "platform.key").stat().st_mode & 0o777 == 0o600
    city = load_city(path)
    assert (city.platform.host, city.platform.port) == ("127.0.0.1", 40123)
    assert city.start == date(2026, 3, 2)
    assert city.period_min == 15
    assert read_secret(city.encryption, str(path)).text == key.strip()


def test_notify_yaml_routes_every_alarm_to_the_webhook(tmp_path: Path) -> None:
    path = notify_config(tmp_path, institution="demo-school",
                         receiver_url="http://127.0.0.1:1/hook",
                         dashboard_url="http://127.0.0.1:8080")
    config = load_notify(path)
    route = config.institutions["demo-school"].routes[0]
    assert route.kinds == []
    assert route.stages[0].recipients == ["demo-hook"]
    assert (tmp_path / "webhook.url").stat().st_mode & 0o777 == 0o600


async def _post(port: int, body: bytes, key: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Idempotency-Key: " + key.encode() + b"\r\nContent-Length: "
                 + str(len(body)).encode() + b"\r\n\r\n" + body)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return answer


async def test_the_receiver_counts_one_message_per_key() -> None:
    async with WebhookReceiver() as hook:
        ok = await _post(hook.port, json.dumps({"title": "漏水"}).encode(), "k1")
        await _post(hook.port, json.dumps({"title": "漏水"}).encode(), "k1")  # a re-send
        await _post(hook.port, json.dumps({"title": "恢复"}).encode(), "k2")
        bad = await _post(hook.port, b"not json", "k3")
    assert ok.startswith(b"HTTP/1.1 200")
    assert bad.startswith(b"HTTP/1.1 400")
    assert sorted(hook.messages) == ["k1", "k2"]
    assert hook.messages["k2"]["title"] == "恢复"
