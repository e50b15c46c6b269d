"""What the demo connects the central to: the municipal platform and an alarm receiver.

- `city_config`: one of the example city files (`central/upload/cities/`) pointed at the
  demo's own `simulators.platform_receiver`, with a generated key and the demo's first day
  as the upload start. The uploader (`central.upload.uploader.Uploader`) runs as a task of
  the demo against it, on the demo's clock.
- `notify_config` + `WebhookReceiver`: a `notify.yaml` whose generic JSON webhook points at
  a loopback HTTP receiver (stdlib asyncio) that counts what it was sent, one per
  `Idempotency-Key`.
- `LeakingFlow` + `LEAK_RULE`: a burst pipe on one water meter (extra flow for a few
  simulated hours) and the edge rule that raises `alarm.leak` for it, so a bounded run has
  at least one alarm to route.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import secrets
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from simulators.profile import FlowProfile

DEMO_CITY = "example-15min-55aa.yaml"
WEBHOOK_CHANNEL = "demo-hook"

# The burst pipe: admin-water's flow peaks near 4 m³/h; the leak adds 6 m³/h from one to
# four simulated hours after the start, and the rule alarms on more than 5 m³/h for an hour
# without a break (so ordinary use never trips it).
LEAK_METER = "admin-water"
LEAK_M3H = 6.0
LEAK_FROM_H = 1.0
LEAK_HOURS = 3.0
LEAK_RULE: dict[str, Any] = {"id": "burst-pipe", "type": "water_leak",
                             "devices": [LEAK_METER], "continuous_m3h": 5.0,
                             "continuous_h": 1.0}


class LeakingFlow(FlowProfile):
    """A flow profile with `m3h` added during [t0, t1) (whole minutes): the meter's
    readings, `value_at` and the ground truth `integral` all see it."""

    def __init__(self, inner: FlowProfile, t0: float, t1: float, m3h: float) -> None:
        super().__init__(inner.params, calendar=inner.calendar)
        self.inner = inner  # the ordinary use, integrated on its own
        self.m0, self.m1 = math.floor(t0 / 60), math.floor(t1 / 60)
        self.m3h = m3h

    def minute_value(self, minute: int) -> float:
        extra = self.m3h if self.m0 <= minute < self.m1 else 0.0
        return self.inner.minute_value(minute) + extra

    def integral(self, t0: float, t1: float) -> float:
        base = self.inner.integral(t0, t1)
        overlap = max(0.0, min(t1, self.m1 * 60.0) - max(t0, self.m0 * 60.0))
        return base + self.m3h * overlap / 3600.0


def city_config(workdir: Path, *, port: int, start: date) -> Path:
    """The example city file, pointed at 127.0.0.1:`port`, with a generated key (0600)
    and `start` as the first day to upload; returns the written path."""
    example = resources.files("central.upload").joinpath("cities", DEMO_CITY)
    doc: dict[str, Any] = yaml.safe_load(example.read_text(encoding="utf-8"))
    key = workdir / "platform.key"
    if not key.exists():  # written again with the receiver's port: the same key
        key.touch(mode=0o600)
        key.write_text(secrets.token_hex(16) + "\n", encoding="utf-8")
    doc["platform"] = {"host": "127.0.0.1", "port": port}
    doc["encryption"]["key_file"] = key.name
    doc["start"] = start.isoformat()
    path = workdir / "city.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def notify_config(workdir: Path, *, institution: str, receiver_url: str,
                  dashboard_url: str) -> Path:
    """A notify.yaml routing every alarm of `institution` to the webhook receiver at
    `receiver_url` (kept in a file, like a real webhook's token-bearing address)."""
    url_file = workdir / "webhook.url"
    url_file.touch(mode=0o600)
    url_file.write_text(receiver_url + "\n", encoding="utf-8")
    doc = {"dashboard_url": dashboard_url,
           "channels": {WEBHOOK_CHANNEL: {"kind": "webhook", "url": {"file": str(url_file)}}},
           "institutions": {institution: {"routes": [
               {"name": "all-alarms", "stages": [{"recipients": [WEBHOOK_CHANNEL]}]}]}}}
    path = workdir / "notify.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class WebhookReceiver:
    """A loopback HTTP server that answers every POST with 200 and keeps the JSON bodies,
    one per `Idempotency-Key` (a re-sent message counts once)."""

    host: str = "127.0.0.1"
    port: int = 0
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hook"

    async def __aenter__(self) -> WebhookReceiver:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            lines = head.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in
                       (line.partition(":") for line in lines[1:] if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            status = "200 OK"
            try:
                doc = json.loads(body)
            except ValueError:
                status, doc = "400 Bad Request", None
            if isinstance(doc, dict):
                self.messages[headers.get("idempotency-key") or str(doc.get("key"))] = doc
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: 2\r\nConnection: close\r\n\r\n{{}}".encode())
            await writer.drain()
        except (OSError, ValueError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            writer.close()
