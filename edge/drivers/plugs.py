"""Smart plugs over MQTT: Tasmota and Shelly Gen2, with the firmware's own topics.

Reads ask the plug now (Tasmota `STATUS 10` and `POWER`, Shelly `Switch.GetStatus`), so a
reading belongs to its poll slot and a plug that has gone silent is noticed within one
timeout. A Tasmota plug can instead be read from its periodic `tele/<t>/SENSOR`
(`source: telemetry`) when commands to it are not wanted; readings older than
`stale_after_s` then count as offline. The firmware's last will (`tele/<t>/LWT Offline`,
Shelly `<id>/online false`) marks the plug offline at once, without waiting for a timeout.

Writes are absolute (`ON`/`OFF`, `Switch.Set on=true`; never `TOGGLE`) and read back: the
Tasmota `RESULT` answer is the relay state after the command; Shelly is asked again with
`Switch.GetStatus`, because `Switch.Set` only says what the relay *was*.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field, field_validator

from edge.drivers.base import (
    Actuator,
    DeviceConfig,
    MessageHandler,
    PointInfo,
    Priority,
    Reading,
    Seconds,
    WriteResult,
)
from edge.drivers.mqtt import MqttHub
from edge.errors import DeviceError
from protocols import plugs
from protocols.clock import Clock
from protocols.errors import FrameError, WriteRejectedError
from protocols.registermap import PointValue

POINTS = {name: PointInfo(name, unit, name in plugs.CUMULATIVE, writable=name == "on")
          for name, unit in plugs.UNITS.items()}


def _topic_level(value: str) -> str:
    if not value or any(c in value for c in "/+#") or value != value.strip():
        raise ValueError(f"must be one MQTT topic level without / + #, got {value!r}")
    return value


class PlugConfig(DeviceConfig):
    revert_on: bool | None = Field(
        True, description="relay state `revert` restores; null: revert leaves it alone")
    kind_transports = frozenset({"mqtt"})

    def available_points(self) -> dict[str, PointInfo]:
        return dict(POINTS)


class TasmotaConfig(PlugConfig):
    """A Tasmota plug with energy monitoring."""

    driver: Literal["tasmota"]
    topic: str = Field(description="the plug's Tasmota Topic (`tasmota_A1B2C3`)")
    relay: int | None = Field(None, ge=1, le=8, description="POWERn on multi-relay devices")
    source: Literal["query", "telemetry"] = "query"
    stale_after_s: Seconds = Field(
        600, description="source telemetry: older tele/SENSOR means offline")

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        return _topic_level(value)

    @property
    def model_name(self) -> str:
        return "tasmota"


class ShellyConfig(PlugConfig):
    """A Shelly Gen2 plug (Plus Plug S, Plus 1PM …) with RPC over MQTT."""

    driver: Literal["shelly"]
    prefix: str = Field(description="the device's MQTT prefix (`shellyplusplugs-a8032ab1…`)")
    switch: int = Field(0, ge=0, le=3)

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return _topic_level(value)

    @property
    def model_name(self) -> str:
        return "shelly-gen2"


class _PlugDriver(Actuator[PlugConfig, MqttHub]):
    def __init__(self, config: PlugConfig, hub: MqttHub, clock: Clock) -> None:
        super().__init__(config, hub, clock)
        self.online: bool | None = None  # from the firmware's last will / online topic

    def check_write(self, point: str, value: object) -> PointValue:
        if point != "on":
            raise WriteRejectedError(self.model, point, "only `on` can be written on a plug")
        if not isinstance(value, bool):
            raise WriteRejectedError(self.model, point, f"must be true or false, got {value!r}")
        return value

    def revert_values(self) -> dict[str, PointValue]:
        return {} if self.config.revert_on is None else {"on": self.config.revert_on}

    def _check_online(self) -> None:
        if self.online is False:
            raise DeviceError(self.id, "the plug announced itself offline (last will)")


class TasmotaDriver(_PlugDriver):
    kind = "tasmota"
    config: TasmotaConfig

    def __init__(self, config: TasmotaConfig, hub: MqttHub, clock: Clock) -> None:
        super().__init__(config, hub, clock)
        self.topics = plugs.TasmotaTopics(config.topic)
        self._tele: plugs.PlugReading | None = None
        self._tele_at: float | None = None
        self._power: bool | None = None
        self.bad_messages = 0

    def subscriptions(self) -> Mapping[str, MessageHandler]:
        return {f"tele/{self.config.topic}/+": self._on_tele,
                f"stat/{self.config.topic}/+": self._on_stat}

    def _on_tele(self, topic: str, payload: bytes) -> None:
        try:
            if topic == self.topics.lwt:
                self.online = payload.strip() == b"Online"
            elif topic == self.topics.sensor:
                self._tele = plugs.parse_tasmota_sensor(payload)
                self._tele_at = self.clock.now()
            elif topic == self.topics.state:
                state = plugs.parse_tasmota_power(payload, relay=self.config.relay)
                if state is not None:
                    self._power = state
        except FrameError:
            self.bad_messages += 1

    def _on_stat(self, topic: str, payload: bytes) -> None:
        if topic == self.topics.result:
            try:
                state = plugs.parse_tasmota_power(payload, relay=self.config.relay)
            except FrameError:
                self.bad_messages += 1
                return
            if state is not None:
                self._power = state

    def _match_power(self, payload: bytes) -> bool | None:
        return plugs.parse_tasmota_power(payload, relay=self.config.relay)

    async def read(self, points: frozenset[str], slot: float) -> Reading:
        self._check_online()
        cfg = self.config
        if cfg.source == "telemetry":
            if self._tele is None or self._tele_at is None:
                raise DeviceError(self.id, f"no {self.topics.sensor} received yet")
            age = self.clock.now() - self._tele_at
            if age > cfg.stale_after_s:
                raise DeviceError(self.id, f"last {self.topics.sensor} is {age:.0f} s old")
            reading = self._tele if self._power is None else self._tele.merged(
                plugs.PlugReading(on=self._power))
        else:
            reading = plugs.PlugReading()
            async with self.hub.session(Priority.POLL, device=self.id):
                if points - {"on"}:
                    reading = await self.hub.request(
                        self.topics.status_command, b"10", reply_topic=self.topics.status10,
                        match=plugs.parse_tasmota_sensor, device=self.id,
                        timeout_s=self.timeout_s, what="STATUS 10")
                if "on" in points:
                    state = await self.hub.request(
                        self._power_topic(), b"", reply_topic=self.topics.result,
                        match=self._match_power, device=self.id, timeout_s=self.timeout_s,
                        what="POWER")
                    reading = reading.merged(plugs.PlugReading(on=state))
        values = {k: v for k, v in reading.values().items() if k in points}
        return Reading(values=dict(values))

    def _power_topic(self) -> str:
        key = plugs.tasmota_power_key(self.config.relay)
        return f"cmnd/{self.config.topic}/{key}"

    async def write(self, point: str, value: PointValue) -> WriteResult:
        self._check_online()
        async with self.hub.session(Priority.WRITE, device=self.id):
            state = await self.hub.request(
                self._power_topic(), plugs.tasmota_power_payload(bool(value)),
                reply_topic=self.topics.result, match=self._match_power, device=self.id,
                timeout_s=self.timeout_s, what=f"POWER {'ON' if value else 'OFF'}")
        self._power = state
        return WriteResult(self.id, point, value, state, state is value)


class ShellyDriver(_PlugDriver):
    kind = "shelly"
    config: ShellyConfig

    def subscriptions(self) -> Mapping[str, MessageHandler]:
        return {f"{self.config.prefix}/online": self._on_online}

    def _on_online(self, topic: str, payload: bytes) -> None:
        self.online = payload.strip().lower() == b"true"

    async def _rpc(self, method: str, params: dict[str, object], what: str) -> plugs.ShellyResponse:
        rid = self.hub.next_request_id()

        def match(payload: bytes) -> plugs.ShellyResponse | None:
            if plugs.shelly_answer_id(payload) != rid:
                return None
            return plugs.parse_shelly_response(payload)

        return await self.hub.request(
            f"{self.config.prefix}/rpc",
            plugs.shelly_request(method, dict(params), request_id=rid, src=self.hub.reply_prefix),
            reply_topic=f"{self.hub.reply_prefix}/rpc", match=match, device=self.id,
            timeout_s=self.timeout_s, what=what)

    async def _status(self) -> plugs.PlugReading:
        method, params = plugs.shelly_switch_get_status(switch=self.config.switch)
        answer = await self._rpc(method, params, method)
        try:
            return plugs.parse_shelly_switch_status(answer.result)
        except FrameError as exc:
            raise DeviceError(self.id, str(exc)) from None

    async def read(self, points: frozenset[str], slot: float) -> Reading:
        self._check_online()
        async with self.hub.session(Priority.POLL, device=self.id):
            reading = await self._status()
        return Reading(values={k: v for k, v in reading.values().items() if k in points})

    async def write(self, point: str, value: PointValue) -> WriteResult:
        self._check_online()
        method, params = plugs.shelly_switch_set(on=bool(value), switch=self.config.switch)
        async with self.hub.session(Priority.WRITE, device=self.id):
            await self._rpc(method, params, f"{method} on={bool(value)}")
            back = (await self._status()).on
        return WriteResult(self.id, point, value, back, back is value)
