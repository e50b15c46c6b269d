"""Edge agent configuration (YAML), validated completely at start-up, before any I/O.

Validation reads the packaged register maps (data files) but never opens a connection.
Errors name the device and the field, e.g. ``devices[1] (id 'b2-power').timeout_s: ...``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edge.errors import ConfigError
from protocols.errors import RegisterMapError
from protocols.registermap import RegisterMap, load_register_map

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    keepalive_s: int = Field(30, ge=5, le=3600)
    username: str | None = None
    password: str | None = None
    protocol: Literal["5", "3.1.1"] = Field(
        "5", description="MQTT 5 makes refused publishes visible (PUBACK reason codes); "
                         "3.1.1 for brokers without it, such as the demo's amqtt")


class UplinkSettings(_Strict):
    batch_max_records: int = Field(500, ge=1, le=10_000)
    max_in_flight_batches: int = Field(8, ge=1, le=1000)
    resend_after_s: float = Field(15.0, gt=0)
    linger_s: float = Field(
        0.25, ge=0, le=60, description="wait this long to fill a partial live batch")
    replay_records_per_s: int = Field(
        50_000, ge=1, description="backlog replay rate after a reconnect; live data goes first")


class OutboxSettings(_Strict):
    path: str = "outbox.sqlite"
    max_rows: int = Field(1_000_000, ge=100)


class ModbusTcpDevice(_Strict):
    """A meter reached over Modbus TCP (directly or through a TCP gateway)."""

    id: Identifier
    driver: Literal["modbus_tcp"] = "modbus_tcp"
    host: str
    port: int = Field(502, ge=1, le=65535)
    device_id: int = Field(1, ge=0, le=247, description="Modbus unit id on the bus")
    model: str = Field(description="register map: a built-in name or a path to a YAML file")
    points: list[str] | None = Field(None, description="subset of the map's points; all by default")
    poll_interval_s: float = Field(60.0, gt=0, le=86_400)
    timeout_s: float = Field(2.0, gt=0)
    gap_after_s: float | None = Field(
        None, gt=0, description="readings further apart than this flag intervals as gap"
    )
    building: str | None = None
    zone: str | None = None
    item_code: str | None = Field(None, pattern=r"^\d{2}[A-Z0-9]\d{2}$")

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> ModbusTcpDevice:
        if self.timeout_s >= self.poll_interval_s:
            raise ValueError(
                f"timeout_s ({self.timeout_s}) must be shorter than poll_interval_s "
                f"({self.poll_interval_s})"
            )
        return self

    def register_map(self) -> RegisterMap:
        return load_register_map(self.model)

    @property
    def max_gap_s(self) -> float:
        return self.gap_after_s if self.gap_after_s is not None else 2.5 * self.poll_interval_s


DeviceConfig = ModbusTcpDevice


class EdgeConfig(_Strict):
    edge_id: Identifier
    site: Identifier
    interval_s: int = Field(900, ge=60, le=86_400, description="interval record length")
    mqtt: MqttSettings = MqttSettings()
    uplink: UplinkSettings = UplinkSettings()
    outbox: OutboxSettings = OutboxSettings()
    devices: list[DeviceConfig] = Field(min_length=1)

    @field_validator("interval_s")
    @classmethod
    def _interval_divides_day(cls, value: int) -> int:
        if 86_400 % value:
            raise ValueError(f"must divide a day (86400 s) evenly, got {value}")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> EdgeConfig:
        seen_ids: dict[str, int] = {}
        seen_addr: dict[tuple[str, int, int], str] = {}
        for i, dev in enumerate(self.devices):
            where = f"devices[{i}] (id {dev.id!r})"
            if dev.id in seen_ids:
                raise ValueError(f"{where}.id: duplicate of devices[{seen_ids[dev.id]}]")
            seen_ids[dev.id] = i
            addr = (dev.host, dev.port, dev.device_id)
            if addr in seen_addr:
                raise ValueError(
                    f"{where}.device_id: {dev.device_id} at {dev.host}:{dev.port} is already "
                    f"used by {seen_addr[addr]!r}"
                )
            seen_addr[addr] = dev.id
            try:
                rmap = dev.register_map()
            except RegisterMapError as exc:
                raise ValueError(f"{where}.model: {exc}") from None
            names = {p.name for p in rmap.points}
            for point in dev.points or []:
                if point not in names:
                    raise ValueError(
                        f"{where}.points: {point!r} is not in model {dev.model!r} "
                        f"(has {', '.join(sorted(names))})"
                    )
        return self


def _location(loc: tuple[int | str, ...], data: Any) -> str:
    """`devices.1.timeout_s` → `devices[1] (id 'b2-power').timeout_s`."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            node = node[item] if isinstance(node, list) and item < len(node) else None
            if isinstance(node, dict) and "id" in node:
                label += f" (id {node['id']!r})"
            parts.append(label)
        else:
            node = node.get(item) if isinstance(node, dict) else None
            parts.append(f".{item}" if parts else str(item))
    return "".join(parts)


def _format(exc: ValidationError, data: Any) -> str:
    lines = []
    for err in exc.errors():
        loc = _location(err["loc"], data)
        value = err.get("input")
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "value_error":  # cross-field checks already name field and value
            lines.append(f"  {loc + ': ' if loc else ''}{msg}")
        else:
            lines.append(f"  {loc or '<root>'}: {msg} (got {shown})")
    return "\n".join(lines)


def parse_edge_config(data: Any, *, source: str = "<config>") -> EdgeConfig:
    try:
        return EdgeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid edge config {source}:\n{_format(exc, data)}") from None


def load_edge_config(path: str | Path) -> EdgeConfig:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read edge config {p}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"edge config {p} is not valid YAML: {exc}") from None
    return parse_edge_config(data, source=str(p))
