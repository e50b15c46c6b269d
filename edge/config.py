"""Edge agent configuration (YAML), validated completely at start-up, before any I/O.

Validation reads the packaged register maps (data files) but never opens a connection.
Errors name the device and the field, e.g. ``devices[1] (id 'b2-power').timeout_s: ...``.

The file has `buses:` (one per serial port, TCP gateway or device broker: each becomes one
hub with its own lock, frame gap and timeouts) and `devices:` (each names its `driver`
kind — see `edge.drivers.registry` — and its `bus`). A Modbus TCP meter may still be given
with `host`/`port` and `driver: modbus_tcp` instead of a bus, as in the first releases;
such devices share an implicit bus per host and port.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from edge.drivers.base import DeviceConfig, Identifier, Seconds, Strict
from edge.drivers.cjt188 import Cjt188Config
from edge.drivers.dlt645 import Dlt645Config
from edge.drivers.links import BAUDRATES, rtu_silence_s
from edge.drivers.modbus import ModbusConfig
from edge.drivers.plugs import ShellyConfig, TasmotaConfig
from edge.drivers.registry import ALIASES, DRIVERS, DeviceConfigUnion, kind_of
from edge.drivers.sensors import BinFillConfig, OccupancyConfig
from edge.errors import ConfigError
from edge.rules.calendar import CalendarConfig
from edge.rules.config import RulesConfig
from protocols.errors import RegisterMapError
from protocols.fullwidth import structural_fullwidth


class MqttSettings(Strict):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    keepalive_s: int = Field(30, ge=5, le=3600)
    username: str | None = None
    password: str | None = None
    protocol: Literal["5", "3.1.1"] = Field(
        "5", description="MQTT 5 makes refused publishes visible (PUBACK reason codes); "
                         "3.1.1 for brokers without it, such as the demo's amqtt")
    # TLS to the production broker (deploy/mosquitto): ca_file verifies the broker; the
    # client certificate's CN is this edge's MQTT identity (`greenguard certs`).
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    # The central's control key (`greenguard certs` or the central's first start print it):
    # acks and commands are acted on only when signed by it (edge/control.py). None: not
    # checked, as before signing existed; a warning at start says so.
    central_public_key: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{43}$")
    # This edge's own Ed25519 key: batches, births and deaths are sent signed with it, and a
    # central whose institution file lists its public key (`edge_keys`) refuses anything
    # else for this edge. Created (0600, with `<file>.pub`) at first start when missing.
    signing_key_file: Path | None = None

    @field_validator("ca_file", "cert_file", "key_file")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {str(value)!r}")
        return value

    @model_validator(mode="after")
    def _tls_complete(self) -> MqttSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (the edge's certificate "
                             "and its private key)")
        if self.cert_file is not None and self.ca_file is None:
            raise ValueError("cert_file needs ca_file (the CA that signed the broker)")
        return self


class UplinkSettings(Strict):
    batch_max_records: int = Field(500, ge=1, le=10_000)
    max_in_flight_batches: int = Field(32, ge=1, le=1000)
    resend_after_s: float = Field(15.0, gt=0)
    linger_s: float = Field(
        0.25, ge=0, le=60, description="wait this long to fill a partial live batch")
    replay_records_per_s: int = Field(
        50_000, ge=1, description="backlog replay rate after a reconnect; live data goes first")


class MetricsSettings(Strict):
    """Where the agent serves Prometheus metrics (edge/prom.py); absent: not served."""

    host: str = Field("127.0.0.1", min_length=1,
                      description="listen address; 0.0.0.0 exposes it to the network")
    port: int = Field(9464, ge=1, le=65535)


class OutboxSettings(Strict):
    path: str = "outbox.sqlite"
    max_rows: int = Field(1_000_000, ge=100)
    min_free_bytes: int | None = Field(
        None, ge=64 << 10,
        description="high-water mark: below this much free space (filesystem plus the "
                    "outbox's free pages) new records are refused and counted by seq; "
                    "default 4 MiB, or an eighth of a smaller volume")
    reserve_bytes: int | None = Field(
        None, ge=0,
        description="preallocated next to the outbox and released when the disk is full, "
                    "so acknowledgements can still delete rows; 0: none; default 1 MiB, or "
                    "a sixteenth of a smaller volume")


# -- buses ------------------------------------------------------------------------------


class BusBase(Strict):
    id: Identifier
    timeout_s: Seconds = Field(1.0, description="per request, unless the device sets its own")
    frame_gap_s: float | None = Field(None, ge=0, le=5,
                                      description="silence between frames; default per "
                                                  "transport")
    backoff_max_s: Seconds = Field(600, description="longest wait between retries of a "
                                                    "failing device")
    max_pending_writes: int = Field(16, ge=1, le=1000)

    def default_gap(self) -> float:
        return 0.0

    @property
    def gap_s(self) -> float:
        return self.frame_gap_s if self.frame_gap_s is not None else self.default_gap()

    @property
    def place(self) -> str:
        return self.id


class ModbusTcpBus(BusBase):
    """A Modbus TCP device or a protocol-converting (TCP ↔ RTU) gateway."""

    transport: Literal["modbus_tcp"]
    host: str
    port: int = Field(502, ge=1, le=65535)

    @property
    def place(self) -> str:
        return f"{self.host}:{self.port}"


class SerialOverTcpBus(BusBase):
    """A transparent serial server: RTU, DL/T 645 or CJ/T 188 frames over TCP."""

    transport: Literal["serial_over_tcp"]
    host: str
    port: int = Field(4001, ge=1, le=65535)

    def default_gap(self) -> float:
        return 0.02  # room for the server to turn the RS-485 line around

    @property
    def place(self) -> str:
        return f"{self.host}:{self.port}"


class SerialBus(BusBase):
    """A local serial port with an RS-485 (or M-Bus) adapter."""

    transport: Literal["serial"]
    device: str = Field(description="e.g. /dev/ttyUSB0")
    baudrate: int = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1

    @field_validator("baudrate")
    @classmethod
    def _baud(cls, value: int) -> int:
        if value not in BAUDRATES:
            raise ValueError(f"must be one of {sorted(BAUDRATES)}, got {value}")
        return value

    def default_gap(self) -> float:
        return rtu_silence_s(self.baudrate, parity=self.parity, stopbits=self.stopbits)

    @property
    def place(self) -> str:
        return self.device


class MqttBus(BusBase):
    """A device broker where plugs and sensors publish."""

    transport: Literal["mqtt"]
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    keepalive_s: int = Field(30, ge=5, le=3600)
    max_queued_messages: int = Field(1000, ge=10, le=100_000)

    @property
    def place(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


BusConfig = Annotated[ModbusTcpBus | SerialOverTcpBus | SerialBus | MqttBus,
                      Field(discriminator="transport")]

# Re-exported for users of the config models.
__all__ = ["BinFillConfig", "BusConfig", "Cjt188Config", "DeviceConfig", "Dlt645Config",
           "EdgeConfig", "ModbusConfig", "ModbusTcpBus", "MqttBus", "OccupancyConfig",
           "SerialBus", "SerialOverTcpBus", "ShellyConfig", "TasmotaConfig",
           "load_edge_config", "parse_edge_config"]

ModbusTcpDevice = ModbusConfig  # the name of the first releases


def implicit_bus_id(device: ModbusConfig) -> str:
    """The bus a `host`/`port` device gets (shared by devices with the same endpoint)."""
    return f"tcp-{device.host}-{device.port}".replace(":", "-")


class EdgeConfig(Strict):
    edge_id: Identifier
    site: Identifier
    interval_s: int = Field(900, ge=60, le=86_400, description="interval record length")
    mqtt: MqttSettings = MqttSettings()
    uplink: UplinkSettings = UplinkSettings()
    outbox: OutboxSettings = OutboxSettings()
    metrics: MetricsSettings | None = None
    buses: list[BusConfig] = Field(default_factory=list)
    devices: list[DeviceConfigUnion] = Field(min_length=1)
    calendar: CalendarConfig = CalendarConfig()
    rules: RulesConfig | None = Field(None, description="local rules; none: no actuation")

    @field_validator("interval_s")
    @classmethod
    def _interval_divides_day(cls, value: int) -> int:
        if 86_400 % value:
            raise ValueError(f"must divide a day (86400 s), got {value}")
        return value

    @field_validator("devices", mode="before")
    @classmethod
    def _default_driver(cls, value: Any) -> Any:
        # A device without `driver` is a Modbus device (the only kind of the first releases).
        if isinstance(value, list):
            return [dict(item, driver="modbus" if "bus" in item else "modbus_tcp")
                    if isinstance(item, dict) and "driver" not in item else item
                    for item in value]
        return value

    def bus_of(self, device: DeviceConfig) -> BusConfig:
        """The bus a device is on (an implicit Modbus TCP bus for the `host` form)."""
        if isinstance(device, ModbusConfig) and device.host is not None:
            return ModbusTcpBus(transport="modbus_tcp", id=implicit_bus_id(device),
                                host=device.host, port=device.port,
                                timeout_s=device.timeout_s or 2.0)
        for bus in self.buses:
            if bus.id == device.bus:
                return bus
        raise KeyError(device.bus)

    def effective_timeout(self, device: DeviceConfig) -> float:
        return device.timeout_s if device.timeout_s is not None else self.bus_of(device).timeout_s

    @model_validator(mode="after")
    def _cross_checks(self) -> EdgeConfig:
        problems = list(self._problems())
        if problems:
            raise ValueError("\n  ".join(problems))
        return self

    def _problems(self) -> Iterator[str]:
        seen_bus: dict[str, int] = {}
        for i, bus in enumerate(self.buses):
            if bus.id in seen_bus:
                yield f"buses[{i}] (id {bus.id!r}).id: duplicate of buses[{seen_bus[bus.id]}]"
            seen_bus[bus.id] = i
        buses = {bus.id: bus for bus in self.buses}
        seen_ids: dict[str, int] = {}
        # (bus, unit) → [(table, first, end, device)] for overlap checks
        footprints: dict[tuple[str, int], list[tuple[str, int, int, str]]] = {}
        addresses: dict[tuple[str, str], str] = {}
        per_bus: dict[str, list[str]] = {}
        for i, dev in enumerate(self.devices):
            where = f"devices[{i}] (id {dev.id!r})"
            if dev.id in seen_ids:
                yield f"{where}.id: duplicate of devices[{seen_ids[dev.id]}]"
            seen_ids[dev.id] = i
            kind = kind_of(dev)
            if not (isinstance(dev, ModbusConfig) and dev.host is not None):
                if dev.bus is None:
                    yield f"{where}.bus: missing; driver {kind.name} needs one of the buses"
                    continue
                named = buses.get(dev.bus)
                if named is None:
                    known = ", ".join(sorted(buses)) or "none defined"
                    yield f"{where}.bus: unknown bus {dev.bus!r} (buses: {known})"
                    continue
                if named.transport not in kind.transports:
                    yield (f"{where}.bus: {dev.bus!r} is a {named.transport} bus; driver "
                           f"{kind.name} needs {' or '.join(sorted(kind.transports))}")
                    continue
            bus = self.bus_of(dev)
            per_bus.setdefault(bus.id, []).append(dev.id)
            try:
                problems = dev.check_points()
            except RegisterMapError as exc:
                field = "unit" if exc.field == "unit" else "model"
                yield f"{where}.{field}: {exc}"
                continue
            for problem in problems:
                yield f"{where}.{problem}"
            timeout = self.effective_timeout(dev)
            intervals = [dev.poll_interval_s, *dev.point_intervals.values()]
            if dev.timeout_s is None and timeout >= min(intervals):
                yield (f"{where}.timeout_s: the bus {bus.id!r} timeout of {timeout:g} s must be "
                       f"shorter than the device's shortest poll interval "
                       f"({min(intervals):g} s); set a shorter timeout_s")
            if isinstance(dev, ModbusConfig):
                yield from self._overlaps(where, dev, bus, footprints)
            key = _address_key(dev)
            if key is not None:
                slot = (bus.id, key)
                if slot in addresses:
                    yield f"{where}: {key} on bus {bus.id!r} is already used by {addresses[slot]!r}"
                addresses.setdefault(slot, dev.id)
        yield from self._rule_problems(seen_ids)
        for i, dev in enumerate(self.devices):
            if isinstance(dev, Dlt645Config) and dev.address == "auto" and dev.bus is not None:
                others = [d for d in per_bus.get(dev.bus, []) if d != dev.id]
                if others:
                    yield (f"devices[{i}] (id {dev.id!r}).address: 'auto' needs the meter alone "
                           f"on its bus; {dev.bus!r} also has {', '.join(others)}")

    def _rule_problems(self, known: dict[str, int]) -> Iterator[str]:
        """Every device id the rules name must be a configured device."""
        if self.rules is None:
            return
        names = ", ".join(sorted(known))
        named = [("rules.protected", d) for d in self.rules.protected]
        named += [("rules.devices", d) for d in self.rules.devices]
        for i, rule in enumerate(self.rules.rules):
            where = f"rules.rules[{i}] (id {rule.id!r})"
            named += [(f"{where}.devices", d) for d in rule.devices or []]
            named += [(f"{where}.exempt", d) for d in rule.exempt]
        for where, device in named:
            if device not in known:
                yield f"{where}: unknown device {device!r} (devices: {names})"

    @staticmethod
    def _overlaps(where: str, dev: ModbusConfig, bus: BusConfig,
                  footprints: dict[tuple[str, int], list[tuple[str, int, int, str]]]
                  ) -> Iterator[str]:
        placed = footprints.setdefault((bus.id, dev.device_id), [])
        clash = None
        for table, first, end in dev.footprint():
            for other_table, o_first, o_end, other in placed:
                if table.value == other_table and first < o_end and o_first < end:
                    clash = (other, table.value, max(first, o_first), min(end, o_end) - 1)
                    break
            if clash:
                break
        if clash is not None:
            other, table_name, a, b = clash
            yield (f"{where}.device_id: {dev.device_id} at {bus.place} is already used by "
                   f"{other!r} (overlapping {table_name} registers 0x{a:04X}–0x{b:04X})")
            return
        placed.extend((t.value, a, b, dev.id) for t, a, b in dev.footprint())


def _address_key(dev: DeviceConfig) -> str | None:
    """What must be unique per bus besides Modbus registers."""
    if isinstance(dev, Dlt645Config) and dev.address != "auto":
        return f"DL/T 645 address {dev.address}"
    if isinstance(dev, Cjt188Config):
        return f"CJ/T 188 address {dev.address}"
    if isinstance(dev, TasmotaConfig):
        return f"Tasmota topic {dev.topic!r}" + ("" if dev.relay is None else f" relay {dev.relay}")
    if isinstance(dev, ShellyConfig):
        return f"Shelly prefix {dev.prefix!r} switch {dev.switch}"
    if isinstance(dev, BinFillConfig | OccupancyConfig):
        return f"topic {dev.topic!r}"
    return None


# -- error messages ---------------------------------------------------------------------

_TAG_VALUES = frozenset({*DRIVERS, *ALIASES, "modbus_tcp", "serial_over_tcp", "serial", "mqtt"})


def _location(loc: tuple[int | str, ...], data: Any) -> str:
    """`devices.1.modbus.timeout_s` → `devices[1] (id 'b2-power').timeout_s`."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            node = node[item] if isinstance(node, list) and item < len(node) else None
            if isinstance(node, dict) and "id" in node:
                label += f" (id {node['id']!r})"
            parts.append(label)
            continue
        if isinstance(node, dict) and item not in node and item in _TAG_VALUES:
            continue  # the discriminator's tag pydantic adds to the location
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
    hints = "".join(f"\n  {f}" for f in structural_fullwidth(text))
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"edge config {p} is not valid YAML:{hints}\n{exc}") from None
    try:
        return parse_edge_config(data, source=str(p))
    except ConfigError as exc:
        if not hints:
            raise
        raise ConfigError(f"{exc}\n  probably because of full-width punctuation:{hints}") from None

