"""Edge config with buses and every driver kind: bad configs fail at start-up, before any
I/O, with a message naming the device and the field."""

from __future__ import annotations

import copy
import re
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge.config import EdgeConfig, parse_edge_config
from edge.drivers import registry
from edge.errors import ConfigError

DOCS = Path(__file__).resolve().parents[3] / "docs" / "devices"

BASE: dict[str, Any] = {
    "edge_id": "edge-1", "site": "school",
    "buses": [
        {"id": "gw", "transport": "modbus_tcp", "host": "10.0.0.5", "timeout_s": 1.0},
        {"id": "line", "transport": "serial_over_tcp", "host": "10.0.0.6", "port": 4001},
        {"id": "rs485", "transport": "serial", "device": "/dev/ttyUSB0", "baudrate": 2400,
         "parity": "E"},
        {"id": "lan", "transport": "mqtt", "host": "127.0.0.1"},
    ],
    "devices": [
        {"id": "m1", "driver": "modbus", "bus": "gw", "device_id": 1, "model": "eastron-sdm630",
         "point_intervals": {"voltage_l1_v": 300}},
        {"id": "ac1", "driver": "modbus", "bus": "gw", "device_id": 2,
         "model": "ac-controller-modbus", "revert": {"setpoint_c": 27}},
        {"id": "vrf0", "driver": "modbus", "bus": "line", "device_id": 7,
         "model": "vrf-gateway-modbus", "unit": 0},
        {"id": "vrf1", "driver": "modbus", "bus": "line", "device_id": 7,
         "model": "vrf-gateway-modbus", "unit": 1},
        {"id": "e1", "driver": "dlt645", "bus": "rs485", "address": "123456789012"},
        {"id": "w1", "driver": "cjt188", "bus": "line", "address": "00000000000012"},
        {"id": "p1", "driver": "tasmota", "bus": "lan", "topic": "plug_301"},
        {"id": "p2", "driver": "shelly", "bus": "lan", "prefix": "shellyplusplugs-a8"},
        {"id": "b1", "driver": "bin_fill", "bus": "lan", "topic": "lora/b1/up",
         "category": "有害垃圾", "empty_mm": 900, "full_mm": 150},
        {"id": "o1", "driver": "occupancy", "bus": "lan", "topic": "zigbee2mqtt/pir-301"},
    ],
}


def edit(path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return doc


def test_every_kind_in_one_config() -> None:
    cfg = parse_edge_config(BASE)
    assert [registry.kind_of(d).name for d in cfg.devices] == [
        "modbus", "modbus", "modbus", "modbus", "dlt645", "cjt188", "tasmota", "shelly",
        "bin_fill", "occupancy"]
    assert cfg.devices[8].category.value == "hazardous"  # type: ignore[union-attr]
    assert cfg.bus_of(cfg.devices[4]).gap_s == pytest.approx(3.5 * 11 / 2400)
    assert cfg.effective_timeout(cfg.devices[0]) == 1.0
    assert cfg.devices[0].interval_of("voltage_l1_v") == 300


CASES: list[tuple[str, Any, str]] = [
    # overlapping registers: two devices at one Modbus address
    ("devices.1.device_id", 1, "devices[1] (id 'ac1').device_id: 1 at 10.0.0.5:502 is already "
                               "used by 'm1' (overlapping input registers 0x0000–0x0000)"),
    ("devices.3.unit", 0, "devices[3] (id 'vrf1').device_id: 7 at 10.0.0.6:4001 is already "
                          "used by 'vrf0' (overlapping holding registers 0x0000–0x0000)"),
    # timeout not shorter than the interval, from the device or from its bus
    ("devices.0.timeout_s", 60, "devices[0] (id 'm1'): timeout_s (60.0) must be shorter"),
    ("devices.0.point_intervals", {"power_w": 1.0},
     "devices[0] (id 'm1').timeout_s: the bus 'gw' timeout of 1 s must be shorter than the "
     "device's shortest poll interval (1 s)"),
    # unknown profile / model / unit
    ("devices.0.model", "acme-9000", "devices[0] (id 'm1').model: register map 'acme-9000'"),
    ("devices.2.unit", None, "devices[2] (id 'vrf0').unit: register map 'vrf-gateway-modbus', "
                             "unit: model 'vrf-gateway-modbus' has 64 unit blocks: set `unit`"),
    ("devices.2.unit", 64, "devices[2] (id 'vrf0').unit: register map 'vrf-gateway-modbus', "
                           "unit: must be 0…63, got 64"),
    # buses
    ("devices.4.bus", "nope", "devices[4] (id 'e1').bus: unknown bus 'nope' (buses: gw, lan, "
                              "line, rs485)"),
    ("devices.4.bus", "lan", "devices[4] (id 'e1').bus: 'lan' is a mqtt bus; driver dlt645 "
                             "needs serial or serial_over_tcp"),
    ("devices.6.bus", "gw", "devices[6] (id 'p1').bus: 'gw' is a modbus_tcp bus; driver "
                            "tasmota needs mqtt"),
    ("buses.2.baudrate", 14400, "buses[2] (id 'rs485').baudrate: must be one of [1200, 2400"),
    ("buses.0.transport", "can", "buses[0] (id 'gw'): Input tag 'can' found using 'transport'"),
    # points, intervals, revert, write allowlist
    ("devices.0.points", ["power_w", "pressure_bar"],
     "devices[0] (id 'm1').points: 'pressure_bar' is not in model 'eastron-sdm630'"),
    ("devices.0.point_intervals", {"pressure_bar": 60},
     "devices[0] (id 'm1').point_intervals: 'pressure_bar' is not a polled point"),
    ("devices.1.revert", {"setpoint_c": 40},
     "devices[1] (id 'ac1').revert.setpoint_c: 40 is above the allowed maximum 30"),
    ("devices.1.revert", {"room_temp_c": 20},
     "devices[1] (id 'ac1').revert.room_temp_c: is not writable"),
    # addresses
    ("devices.4.address", "12345", "devices[4] (id 'e1').address: must be the "
                                   "12-digit meter address or 'auto'"),
    ("devices.5.address", "12", "devices[5] (id 'w1').address: must be the "
                                "14-digit meter address"),
    ("devices.7.prefix", "a/b", "devices[7] (id 'p2').prefix: must be one MQTT "
                                "topic level"),
    ("devices.8.category", "glass", "devices[8] (id 'b1').category: unknown "
                                    "waste category 'glass'"),
    ("devices.8.full_mm", 1000, "devices[8] (id 'b1'): full_mm (1000.0) must be less than "
                                "empty_mm (900.0)"),
    ("devices.9.topic", "zigbee2mqtt/#", "devices[9] (id 'o1').topic: must be a "
                                         "topic without wildcards"),
    ("devices.2.driver", "knx", "devices[2] (id 'vrf0'): Input tag 'knx' found using 'driver' "
                                "does not match any of the expected tags"),
    ("devices.6.id", "b1", "devices[8] (id 'b1').id: duplicate of devices[6]"),
]


@pytest.mark.parametrize(("path", "value", "message"), CASES)
def test_bad_config_names_device_and_field(path: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_edge_config(edit(path, value), source="edge.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("invalid edge config edge.yaml:")


def test_conflicting_addresses_on_one_line() -> None:
    doc = copy.deepcopy(BASE)
    doc["devices"].append({"id": "e2", "driver": "dlt645", "bus": "rs485",
                           "address": "123456789012"})
    doc["devices"].append({"id": "p3", "driver": "tasmota", "bus": "lan", "topic": "plug_301"})
    with pytest.raises(ConfigError) as err:
        parse_edge_config(doc)
    text = str(err.value)
    assert ("devices[10] (id 'e2'): DL/T 645 address 123456789012 on bus 'rs485' is already "
            "used by 'e1'") in text
    assert "devices[11] (id 'p3'): Tasmota topic 'plug_301' on bus 'lan' is already" in text


def test_address_discovery_needs_a_meter_alone_on_its_bus() -> None:
    doc = edit("devices.4.address", "auto")
    parse_edge_config(doc)  # alone on rs485: fine
    doc["devices"].append({"id": "e2", "driver": "dlt645", "bus": "rs485",
                           "address": "000000000002"})
    with pytest.raises(ConfigError, match=r"devices\[4\] \(id 'e1'\).address: 'auto' needs the "
                                          r"meter alone on its bus; 'rs485' also has e2"):
        parse_edge_config(doc)


def test_all_problems_are_reported_at_once() -> None:
    doc = edit("devices.0.model", "acme-9000")
    doc["devices"][4]["bus"] = "nope"
    with pytest.raises(ConfigError) as err:
        parse_edge_config(doc)
    assert "devices[0] (id 'm1').model" in str(err.value)
    assert "devices[4] (id 'e1').bus" in str(err.value)


def test_first_release_form_still_parses() -> None:
    cfg = parse_edge_config({"edge_id": "e", "site": "s", "devices": [
        {"id": "m", "host": "127.0.0.1", "model": "eastron-sdm120"}]})
    device = cfg.devices[0]
    assert getattr(device, "driver", None) == "modbus_tcp"
    assert cfg.bus_of(device).id == "tcp-127.0.0.1-502"
    assert cfg.effective_timeout(device) == 2.0


def test_registry_lists_every_config_model_with_a_docs_page() -> None:
    union = typing.get_args(typing.get_args(EdgeConfig.model_fields["devices"].annotation)[0])
    models = set(typing.get_args(union[0]))
    assert models == {kind.config for kind in registry.DRIVERS.values()}
    for kind in registry.DRIVERS.values():
        assert (DOCS / kind.doc).is_file(), kind.doc
        assert kind.transports


def test_the_sample_configs_in_the_docs_are_valid() -> None:
    """Every device page's YAML, merged into one edge config, validates (maps given by a
    path to the engineer's own file are skipped: they do not exist here)."""
    buses: dict[str, Any] = {}
    devices: list[Any] = []
    for page in sorted(DOCS.glob("*.md")):
        if page.name == "README.md":
            continue
        for block in re.findall(r"```yaml\n(.*?)```", page.read_text(encoding="utf-8"),
                                re.DOTALL):
            doc = yaml.safe_load(block)
            for bus in doc.get("buses", []):
                buses.setdefault(bus["id"], bus)
            devices += [d for d in doc.get("devices", [])
                        if not str(d.get("model", "")).startswith("/")]
    cfg = parse_edge_config({"edge_id": "docs", "site": "docs", "buses": list(buses.values()),
                             "devices": devices}, source="docs/devices")
    assert {registry.kind_of(d).name for d in cfg.devices} == set(registry.DRIVERS)
