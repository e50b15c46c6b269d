"""`scan --write-config FILE`: what a scan found, as the `buses:` and `devices:` of an
edge.yaml, to paste into the edge's config (edge_id, site and mqtt stay the engineer's)."""

from __future__ import annotations

from typing import Any

import yaml

from edge.commission.scan import AddressFound, SettingResult
from edge.commission.wire import WiredBus
from edge.config import ModbusTcpBus, SerialBus, SerialOverTcpBus
from protocols.registermap import load_register_map


def _flow(data: dict[str, Any]) -> str:
    text: str = yaml.safe_dump(data, default_flow_style=True, sort_keys=False, width=200)
    return text.strip()


def bus_entry(bus: WiredBus) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": bus.id, "transport": bus.transport}
    if isinstance(bus, ModbusTcpBus | SerialOverTcpBus):
        entry |= {"host": bus.host, "port": bus.port}
    elif isinstance(bus, SerialBus):
        entry |= {"device": bus.device, "baudrate": bus.baudrate, "parity": bus.parity,
                  "stopbits": bus.stopbits}
    entry["timeout_s"] = bus.timeout_s
    return entry


def modbus_fragment(result: SettingResult) -> str:
    bus = result.bus
    lines = ["# From `greenguard edge scan modbus`: check each id and model, then merge into",
             "# the edge's config (docs/devices/modbus.md).",
             "buses:", f"  - {_flow(bus_entry(bus))}", "devices:"]
    for found in result.found:
        lines += [f"  - id: {bus.id}-unit-{found.unit}", "    driver: modbus",
                  f"    bus: {bus.id}", f"    device_id: {found.unit}"]
        if found.matches:
            best = found.matches[0]
            others = [m.model for m in found.matches[1:]]
            comment = f"   # also decodes as {', '.join(others)}" if others else ""
            if best.unverified:
                comment = "   # every field verified: false: check against the manual"
            lines.append(f"    model: {best.model}{comment}")
            if best.refused:
                kept = [p.name for p in load_register_map(best.model).points
                        if p.name not in best.refused]
                lines.append(f"    points: [{', '.join(kept)}]   # refuses "
                             f"{', '.join(best.refused)}")
        else:
            lines.append("    model: SET-ME   # no built-in map matched: write one "
                         "(docs/register-maps.md)")
    return "\n".join(lines) + "\n"


def address_fragment(found: AddressFound) -> str:
    assert found.address is not None
    bus = found.bus
    doc = "dlt645" if found.protocol == "dlt645" else "cjt188"
    lines = [f"# From `greenguard edge scan {found.protocol}`: merge into the edge's config "
             f"(docs/devices/{doc}.md).",
             "buses:", f"  - {_flow(bus_entry(bus))}", "devices:",
             f"  - id: {bus.id}-{found.address}", f"    driver: {found.protocol}",
             f"    bus: {bus.id}", f"    address: \"{found.address}\""]
    if found.protocol == "cjt188" and found.meter_type == 0x11:
        lines.append("    meter_type: hot_water")
    return "\n".join(lines) + "\n"
