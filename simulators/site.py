"""A small simulated plant room to commission: what `greenguard edge probe | scan | read`
are tested against and what their documented examples were captured from.

- a Modbus TCP gateway with an SDM120 (unit 1), an SDM630 (unit 2), an SDM120 variant that
  lacks the power-factor register (unit 3: exception 02) and an ADL400 (unit 4);
- an RS-485 line on a pty at 2400 baud with an SDM120 at unit 7 (a master at any other
  baud rate is not understood; parity N, since Linux ptys may refuse PARENB);
- a DL/T 645 line and a CJ/T 188 line behind transparent serial servers, one meter each.

`python -m simulators.site` serves it on the real clock and prints the endpoints (JSON)
and a matching edge.yaml; stop it with Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import yaml

from protocols.clock import Clock, SystemClock
from protocols.registermap import load_register_map
from simulators.cjt188_meter import Cjt188Responder, SimulatedWaterMeter
from simulators.dlt645_meter import Dlt645Responder, SimulatedDlt645Meter
from simulators.meters import TimeSource
from simulators.modbus_bus import ModbusDeviceServer
from simulators.modbus_devices import ProfileMeter
from simulators.profile import FlowProfile, PowerProfile, ProfileParams
from simulators.serial_bus import RtuResponder, SerialLineServer

RTU_BAUDRATE = 2400
DLT645_ADDRESS = "240512000187"
CJT188_ADDRESS = "11223344556677"


@dataclass
class Site:
    gateway_port: int
    rtu_path: str
    dlt645_port: int
    cjt188_port: int
    meters: dict[str, ProfileMeter]
    dlt645: SimulatedDlt645Meter
    water: SimulatedWaterMeter

    def endpoints(self) -> dict[str, Any]:
        return {"gateway": f"127.0.0.1:{self.gateway_port}", "rtu": self.rtu_path,
                "rtu_baudrate": RTU_BAUDRATE, "dlt645": f"127.0.0.1:{self.dlt645_port}",
                "cjt188": f"127.0.0.1:{self.cjt188_port}"}

    def edge_config(self) -> dict[str, Any]:
        """An edge.yaml for the site, with one mistake to find: unit 9 does not exist."""
        return {
            "edge_id": "edge-plantroom", "site": "school",
            "buses": [
                {"id": "gw", "transport": "modbus_tcp", "host": "127.0.0.1",
                 "port": self.gateway_port, "timeout_s": 0.5},
                {"id": "rs485", "transport": "serial", "device": self.rtu_path,
                 "baudrate": RTU_BAUDRATE, "parity": "N", "timeout_s": 0.5},
                {"id": "dlt", "transport": "serial_over_tcp", "host": "127.0.0.1",
                 "port": self.dlt645_port, "timeout_s": 0.5},
                {"id": "water", "transport": "serial_over_tcp", "host": "127.0.0.1",
                 "port": self.cjt188_port, "timeout_s": 0.5},
            ],
            "devices": [
                {"id": "main-sdm120", "bus": "gw", "device_id": 1, "model": "eastron-sdm120"},
                {"id": "lab-sdm120", "bus": "gw", "device_id": 3, "model": "eastron-sdm120"},
                {"id": "dorm-adl400", "bus": "gw", "device_id": 4, "model": "acrel-adl400"},
                {"id": "wrong-unit", "bus": "gw", "device_id": 9, "model": "eastron-sdm120"},
                {"id": "rtu-sdm120", "bus": "rs485", "device_id": 7,
                 "model": "eastron-sdm120", "points": ["voltage_v", "energy_import_kwh"]},
                {"id": "canteen-645", "driver": "dlt645", "bus": "dlt",
                 "address": DLT645_ADDRESS},
                {"id": "canteen-water", "driver": "cjt188", "bus": "water",
                 "address": CJT188_ADDRESS},
            ],
        }


def _power(seed: int) -> PowerProfile:
    return PowerProfile(ProfileParams(base=800.0, peak=2600.0, seed=seed))


@contextlib.asynccontextmanager
async def serving(clock: TimeSource, start: float) -> AsyncIterator[Site]:
    def meter(model: str, unit: int, initial: float) -> ProfileMeter:
        return ProfileMeter(name=f"unit{unit}", register_map=load_register_map(model),
                            device_id=unit, clock=clock, profile=_power(unit), start=start,
                            initial=initial)
    meters = {"sdm120": meter("eastron-sdm120", 1, 1523.4),
              "sdm630": meter("eastron-sdm630", 2, 88231.5),
              "lacking": meter("eastron-sdm120", 3, 12.0),
              "adl400": meter("acrel-adl400", 4, 4410.2)}
    meters["lacking"].missing_points = {"power_factor"}
    rtu = meter("eastron-sdm120", 7, 5.0)
    dlt = SimulatedDlt645Meter(address=DLT645_ADDRESS, profile=_power(6), clock=clock,
                               start=start, initial_kwh=31207.55)
    water = SimulatedWaterMeter(address=CJT188_ADDRESS, profile=FlowProfile(
        ProfileParams(base=0.2, peak=1.5, seed=7)), clock=clock, start=start,
        initial_m3=842.31)
    async with ModbusDeviceServer(list(meters.values()), framing="tcp", clock=clock) as gw, \
            SerialLineServer(RtuResponder([rtu]), transport="pty",
                             line_baudrate=RTU_BAUDRATE) as line, \
            SerialLineServer(Dlt645Responder([dlt]), transport="tcp") as dl, \
            SerialLineServer(Cjt188Responder([water]), transport="tcp") as wl:
        yield Site(gw.port, line.path, dl.port, wl.port, meters | {"rtu": rtu}, dlt, water)


async def _main(clock: Clock) -> None:
    async with serving(clock, clock.now()) as site:
        print(json.dumps(site.endpoints()), flush=True)
        print(yaml.safe_dump(site.edge_config(), sort_keys=False), flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(_main(SystemClock()))
    except KeyboardInterrupt:
        sys.exit(0)
