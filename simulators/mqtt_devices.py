"""MQTT device firmware imitations on a real broker: Tasmota and Shelly Gen2 plugs, a
LoRaWAN ultrasonic bin sensor (as its network server publishes it) and a zigbee2mqtt PIR.

They follow the topics and payloads of the real firmware (see `protocols.plugs` and
`protocols.sensors`), announce themselves with retained online messages and a last will,
and publish periodic telemetry on the injected clock. A device with periodic telemetry
registers with the clock while it runs (like the edge's pollers), so on a `VirtualClock`
its messages go out at exact simulated instants (on start, then every `period_s`, shifted
by `phase_s`: a negative phase lands each message shortly before a poll slot).

Plug energy is exact: the relay's on-periods times the load, accumulated at every switch.
Faults: `silent` (the device stops answering and publishing, as when its Wi-Fi drops;
the broker would publish its will when the connection times out, which a test can do by
publishing the will payload itself), `garble` (answers and telemetry become invalid
JSON), `delay_s`.

Use as `async with plug.running(host, port): ...`; it returns once subscribed and, for
devices with periodic telemetry, registered with the clock and past its first message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiomqtt

from protocols import plugs
from protocols.clock import Clock
from protocols.sensors import (
    BinGeometry,
    OccupancyReading,
    bin_uplink_payload,
    occupancy_payload,
)


class MqttDevice:
    """Connection, fault switches and the periodic loop shared by the imitations."""

    will_topic: str = ""
    will_payload: bytes = b""
    online_payload: bytes = b""

    def __init__(self, *, name: str, clock: Clock, period_s: float | None = None,
                 phase_s: float = 0.0) -> None:
        self.name = name
        self.clock = clock
        self.period_s = period_s
        self.phase_s = phase_s
        self.silent = False
        self.garble = False
        self.delay_s = 0.0
        self.published = 0
        self.requests = 0
        self._client: aiomqtt.Client | None = None
        self._ready = asyncio.Event()

    def subscriptions(self) -> list[str]:
        return []

    async def handle(self, topic: str, payload: bytes) -> None:
        """Answer one message (subclasses)."""

    async def periodic(self) -> None:
        """Publish telemetry (subclasses)."""

    async def publish(self, topic: str, payload: bytes | str, *, retain: bool = False) -> None:
        if self._client is None or self.silent:
            return
        data = payload.encode() if isinstance(payload, str) else payload
        if self.garble:
            data = data[: max(1, len(data) // 2)] + b"\x00{"
        await self._client.publish(topic, data, qos=0, retain=retain)
        self.published += 1

    @contextlib.asynccontextmanager
    async def running(self, host: str, port: int) -> AsyncIterator[MqttDevice]:
        task = asyncio.create_task(self._run(host, port), name=f"sim {self.name}")
        try:
            async with asyncio.timeout(10):
                await self._ready.wait()
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, host: str, port: int) -> None:
        will = (aiomqtt.Will(self.will_topic, self.will_payload, qos=1, retain=True)
                if self.will_topic else None)
        async with aiomqtt.Client(host, port, identifier=f"sim-{self.name}", will=will,
                                  keepalive=5) as client:
            self._client = client
            for topic in self.subscriptions():
                await client.subscribe(topic, qos=0)
            if self.will_topic:
                await client.publish(self.will_topic, self.online_payload, qos=1, retain=True)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._receive(client))
                if self.period_s is not None:
                    tg.create_task(self._tick())
                else:
                    self._ready.set()

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            if self.silent:
                continue
            self.requests += 1
            payload = message.payload if isinstance(message.payload, bytes | bytearray) else b""
            if self.delay_s > 0:
                await asyncio.sleep(self.delay_s)
            await self.handle(str(message.topic), bytes(payload))

    async def _tick(self) -> None:
        """Publish on start, then at `k × period_s + phase_s` of the clock."""
        assert self.period_s is not None
        self.clock.register()
        try:
            if not self.silent:
                await self.periodic()
            self._ready.set()  # joined the clock and said hello: simulated time may run
            period, phase = self.period_s, self.phase_s
            due = math.floor((self.clock.now() - phase) / period + 1) * period + phase
            while True:
                await self.clock.sleep_until(due)
                if not self.silent:
                    await self.periodic()
                due += period
        finally:
            self.clock.unregister()


def _tasmota_time(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S")


class SimulatedTasmotaPlug(MqttDevice):
    """Tasmota with energy monitoring (Sonoff POW, Gosund/NOUS plugs)."""

    def __init__(self, *, topic: str, clock: Clock, load_w: float = 60.0, on: bool = True,
                 tele_period_s: float | None = 300.0, initial_kwh: float = 0.0) -> None:
        super().__init__(name=f"tasmota-{topic}", clock=clock, period_s=tele_period_s)
        self.topics = plugs.TasmotaTopics(topic)
        self.will_topic = self.topics.lwt
        self.will_payload = b"Offline"
        self.online_payload = b"Online"
        self.load_w = load_w
        self.on = on
        self._anchor_t = clock.now()
        self._anchor_kwh = initial_kwh
        self.commands: list[str] = []

    def energy_kwh(self, t: float) -> float:
        power = self.load_w if self.on else 0.0
        return self._anchor_kwh + power * max(0.0, t - self._anchor_t) / 3_600_000

    def switch(self, on: bool) -> None:
        now = self.clock.now()
        self._anchor_kwh = self.energy_kwh(now)
        self._anchor_t = now
        self.on = on

    def reading(self) -> plugs.PlugReading:
        now = self.clock.now()
        power = self.load_w if self.on else 0.0
        return plugs.PlugReading(on=self.on, power_w=float(round(power)),
                                 energy_import_kwh=round(self.energy_kwh(now), 3),
                                 voltage_v=230.0, current_a=round(power / (230 * 0.95), 3),
                                 power_factor=0.95 if self.on else 0.0)

    def subscriptions(self) -> list[str]:
        return [f"cmnd/{self.topics.topic}/#"]

    def _state(self) -> str:
        return "ON" if self.on else "OFF"

    async def handle(self, topic: str, payload: bytes) -> None:
        command = topic.rsplit("/", 1)[-1].upper()
        text = payload.decode("utf-8", "replace").strip().upper()
        self.commands.append(f"{command} {text}".strip())
        if command == "POWER":
            if text in ("ON", "1"):
                self.switch(True)
            elif text in ("OFF", "0"):
                self.switch(False)
            elif text in ("TOGGLE", "2"):
                self.switch(not self.on)
            await self.publish(self.topics.result, json.dumps({"POWER": self._state()}))
            await self.publish(f"stat/{self.topics.topic}/POWER", self._state())
        elif command == "STATUS" and text in ("8", "10"):
            sensor = json.loads(plugs.tasmota_sensor_payload(
                self.reading(), time=_tasmota_time(self.clock.now())))
            await self.publish(f"stat/{self.topics.topic}/STATUS{text}",
                               json.dumps({"StatusSNS": sensor}))

    async def periodic(self) -> None:
        now = self.clock.now()
        await self.publish(self.topics.sensor,
                           plugs.tasmota_sensor_payload(self.reading(), time=_tasmota_time(now)))
        await self.publish(self.topics.state, json.dumps(
            {"Time": _tasmota_time(now), "POWER": self._state()}))


class SimulatedShellyPlug(MqttDevice):
    """A Shelly Gen2 plug (Plus Plug S) answering RPC over MQTT."""

    def __init__(self, *, prefix: str, clock: Clock, load_w: float = 45.0, on: bool = True,
                 initial_wh: float = 0.0) -> None:
        super().__init__(name=prefix, clock=clock)
        self.prefix = prefix
        self.will_topic = f"{prefix}/online"
        self.will_payload = b"false"
        self.online_payload = b"true"
        self.load_w = load_w
        self.on = on
        self._anchor_t = clock.now()
        self._anchor_wh = initial_wh
        self.calls: list[str] = []

    def energy_wh(self, t: float) -> float:
        power = self.load_w if self.on else 0.0
        return self._anchor_wh + power * max(0.0, t - self._anchor_t) / 3600

    def switch(self, on: bool) -> None:
        now = self.clock.now()
        self._anchor_wh = self.energy_wh(now)
        self._anchor_t = now
        self.on = on

    def status(self) -> dict[str, Any]:
        power = self.load_w if self.on else 0.0
        return {"id": 0, "source": "MQTT", "output": self.on, "apower": round(power, 1),
                "voltage": 229.8, "current": round(power / 229.8, 3), "pf": 0.97,
                "aenergy": {"total": round(self.energy_wh(self.clock.now()), 3),
                            "by_minute": [0.0, 0.0, 0.0],
                            "minute_ts": int(self.clock.now())},
                "temperature": {"tC": 35.2, "tF": 95.4}}

    def subscriptions(self) -> list[str]:
        return [f"{self.prefix}/rpc"]

    async def handle(self, topic: str, payload: bytes) -> None:
        try:
            request = json.loads(payload)
            rid, src, method = request["id"], request["src"], request["method"]
            params = request.get("params") or {}
        except (ValueError, KeyError, TypeError):
            return  # the real device ignores what it cannot parse
        self.calls.append(method)
        answer: bytes
        if method == "Switch.GetStatus" and params.get("id", 0) == 0:
            answer = plugs.shelly_response(rid, src=self.prefix, dst=src, result=self.status())
        elif method == "Switch.Set" and isinstance(params.get("on"), bool):
            was_on = self.on
            self.switch(params["on"])
            answer = plugs.shelly_response(rid, src=self.prefix, dst=src,
                                           result={"was_on": was_on})
        elif method in ("Switch.GetStatus", "Switch.Set"):
            answer = plugs.shelly_response(rid, src=self.prefix, dst=src,
                                           error=(-103, "Invalid argument"))
        else:
            answer = plugs.shelly_response(rid, src=self.prefix, dst=src,
                                           error=(404, f"No handler for {method}"))
        await self.publish(f"{src}/rpc", answer)


class SimulatedBinSensor(MqttDevice):
    """A LoRaWAN ultrasonic bin sensor as its network server publishes it."""

    def __init__(self, *, topic: str, dev_eui: str, clock: Clock, geometry: BinGeometry,
                 fill_pct: float = 40.0, battery_pct: float = 90.0,
                 period_s: float = 600.0, phase_s: float = 0.0) -> None:
        super().__init__(name=f"bin-{dev_eui}", clock=clock, period_s=period_s,
                         phase_s=phase_s)
        self.topic = topic
        self.dev_eui = dev_eui
        self.geometry = geometry
        self.fill_pct = fill_pct
        self.battery_pct = battery_pct
        self.distance_override_mm: float | None = None  # e.g. an echo off the wall

    def payload(self) -> bytes:
        distance = (self.distance_override_mm if self.distance_override_mm is not None
                    else self.geometry.distance_for(self.fill_pct))
        return bin_uplink_payload(distance_mm=distance, battery_pct=self.battery_pct,
                                  dev_eui=self.dev_eui)

    async def uplink(self) -> None:
        await self.publish(self.topic, self.payload())

    async def periodic(self) -> None:
        await self.uplink()


class SimulatedZigbeePir(MqttDevice):
    """A zigbee2mqtt occupancy sensor: publishes on change and periodically."""

    def __init__(self, *, topic: str, clock: Clock, occupied: bool = False,
                 battery_pct: float = 100.0, illuminance_lx: float = 250.0,
                 period_s: float = 600.0, phase_s: float = 0.0) -> None:
        super().__init__(name=topic.replace("/", "-"), clock=clock, period_s=period_s,
                         phase_s=phase_s)
        self.topic = topic
        self.occupied = occupied
        self.battery_pct = battery_pct
        self.illuminance_lx = illuminance_lx

    def reading(self) -> OccupancyReading:
        return OccupancyReading(self.occupied, self.battery_pct, self.illuminance_lx)

    async def set_occupied(self, occupied: bool) -> None:
        self.occupied = occupied
        await self.publish(self.topic, occupancy_payload(self.reading()))

    async def periodic(self) -> None:
        await self.publish(self.topic, occupancy_payload(self.reading()))
