"""The in-tree driver kinds, in one greppable place (Telegraf's plugin registry).

Each kind: a pydantic config model (the `driver:` value selects it), the driver class with
`read()` (and, for actuators, absolute `write()` and `revert()`), and the bus transports
it can run on. The edge config's `devices:` union is built from this table, so adding a
kind is: write its module, add one line here, add a page under docs/devices/.

| kind      | transports                          | actuator             | docs/devices/   |
|-----------|-------------------------------------|----------------------|-----------------|
| modbus    | modbus_tcp, serial_over_tcp, serial | maps with `write:`   | modbus.md,      |
|           |                                     |                      | modbus-ac.md    |
| dlt645    | serial_over_tcp, serial             | no                   | dlt645.md       |
| cjt188    | serial_over_tcp, serial             | no                   | cjt188.md       |
| tasmota   | mqtt                                | yes                  | tasmota.md      |
| shelly    | mqtt                                | yes                  | shelly.md       |
| bin_fill  | mqtt                                | no                   | bin-fill.md     |
| occupancy | mqtt                                | no                   | occupancy.md    |

`modbus_tcp` is accepted as the driver name of a `modbus` device given by `host`/`port`
(the form of the first releases).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field

from edge.drivers.base import DeviceConfig, Driver
from edge.drivers.cjt188 import Cjt188Config, Cjt188Driver
from edge.drivers.dlt645 import Dlt645Config, Dlt645Driver
from edge.drivers.modbus import ModbusConfig, ModbusDriver, group_units
from edge.drivers.plugs import ShellyConfig, ShellyDriver, TasmotaConfig, TasmotaDriver
from edge.drivers.sensors import BinFillConfig, BinFillDriver, OccupancyConfig, OccupancyDriver
from protocols.clock import Clock

AnyDriver = Driver[Any, Any]


@dataclass(frozen=True, slots=True)
class DriverKind:
    name: str
    config: type[DeviceConfig]
    driver: Callable[[Any, Any, Clock], AnyDriver]
    transports: frozenset[str]
    actuator: bool
    doc: str  # page under docs/devices/


DRIVERS: dict[str, DriverKind] = {
    kind.name: kind
    for kind in (
        DriverKind("modbus", ModbusConfig, ModbusDriver, ModbusConfig.kind_transports, True,
                   "modbus.md"),
        DriverKind("dlt645", Dlt645Config, Dlt645Driver, Dlt645Config.kind_transports, False,
                   "dlt645.md"),
        DriverKind("cjt188", Cjt188Config, Cjt188Driver, Cjt188Config.kind_transports, False,
                   "cjt188.md"),
        DriverKind("tasmota", TasmotaConfig, TasmotaDriver, TasmotaConfig.kind_transports, True,
                   "tasmota.md"),
        DriverKind("shelly", ShellyConfig, ShellyDriver, ShellyConfig.kind_transports, True,
                   "shelly.md"),
        DriverKind("bin_fill", BinFillConfig, BinFillDriver, BinFillConfig.kind_transports,
                   False, "bin-fill.md"),
        DriverKind("occupancy", OccupancyConfig, OccupancyDriver,
                   OccupancyConfig.kind_transports, False, "occupancy.md"),
    )
}
ALIASES = {"modbus_tcp": "modbus"}

DeviceConfigUnion = Annotated[
    ModbusConfig | Dlt645Config | Cjt188Config | TasmotaConfig | ShellyConfig | BinFillConfig
    | OccupancyConfig,
    Field(discriminator="driver"),
]
"""The `devices:` entries of the edge config; keep in step with `DRIVERS` (a test does)."""


def kind_of(config: DeviceConfig) -> DriverKind:
    name = str(getattr(config, "driver", ""))
    return DRIVERS[ALIASES.get(name, name)]


def build(config: DeviceConfig, hub: Any, clock: Clock) -> AnyDriver:
    return kind_of(config).driver(config, hub, clock)


def link(drivers: list[AnyDriver]) -> None:
    """Cross-device wiring after all drivers exist (devices sharing one Modbus address)."""
    group_units([d for d in drivers if isinstance(d, ModbusDriver)])
