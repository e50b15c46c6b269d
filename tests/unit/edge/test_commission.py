"""Pure parts of the commissioning commands: decoding a range every way, unit lists,
flags turned into buses, and the config fragment a scan writes."""

from __future__ import annotations

import argparse
import struct

import pytest
import yaml

from edge.commission.cli import UsageError, buses, parse_units
from edge.commission.fragment import modbus_fragment
from edge.commission.read import decodings
from edge.commission.scan import MapMatch, SettingResult, UnitFound
from edge.config import ModbusTcpBus, SerialBus, parse_edge_config
from protocols.registermap import DataType


def test_decodings_show_the_plausible_reading_among_all_orders() -> None:
    registers = list(struct.unpack(">HH", struct.pack(">f", 230.1)))
    rows = {(d.type, d.byte_order, d.word_order): d.value for d in decodings(registers)}
    assert rows[(DataType.FLOAT32, "big", "big")] == 230.1
    assert rows[(DataType.FLOAT32, "big", "little")] != 230.1
    assert rows[(DataType.UINT16, "big", "big")] == registers[0]
    assert len(rows) == 2 * 2 + 3 * 4  # 16-bit: 2 byte orders; 32-bit: 4 orders
    only = decodings([0x0001, 0xE240], types=[DataType.UINT32], scale=0.1)
    assert (only[0].byte_order, only[0].word_order, only[0].value) == ("big", "big", 12345.6)
    assert {d.type for d in decodings([7])} == {DataType.UINT16, DataType.INT16}


def test_units_and_their_errors() -> None:
    assert parse_units("1-3,7,2") == [1, 2, 3, 7]
    with pytest.raises(UsageError, match="--units: '300' must lie within 0-247"):
        parse_units("300")
    with pytest.raises(UsageError, match="--units: 'x' is not a unit id"):
        parse_units("x")


def _args(**kw: object) -> argparse.Namespace:
    base: dict[str, object] = {"host": None, "serial": None, "port": None,
                               "transport": "modbus_tcp", "baudrate": "9600", "parity": "N",
                               "stopbits": 1, "timeout": 0.5, "bus_id": "bus1"}
    return argparse.Namespace(**(base | kw))


def test_serial_settings_to_try_and_bad_flags() -> None:
    settings = buses(_args(serial="/dev/ttyUSB0", baudrate="9600,2400", parity="N,e"))
    assert [(b.baudrate, b.parity) for b in settings if isinstance(b, SerialBus)] == [
        (9600, "N"), (9600, "E"), (2400, "N"), (2400, "E")]
    assert isinstance(buses(_args(host="10.0.0.5"))[0], ModbusTcpBus)
    with pytest.raises(UsageError, match="--baudrate: must be one of"):
        buses(_args(serial="/dev/ttyUSB0", baudrate="9601"))
    with pytest.raises(UsageError, match="--parity"):
        buses(_args(serial="/dev/ttyUSB0", parity="X"))


def test_fragment_is_a_valid_config_and_leaves_refused_points_out() -> None:
    bus = ModbusTcpBus(transport="modbus_tcp", id="gw", host="10.0.0.5", port=502,
                       timeout_s=0.5)
    result = SettingResult(bus, [
        UnitFound(1, "[0000]", 1.0, [MapMatch("eastron-sdm120", 7, 6)]),
        UnitFound(3, "exception 2", 1.0, [MapMatch("eastron-sdm120", 7, 5, ("power_factor",))]),
        UnitFound(4, "[0000]", 1.0, [MapMatch("acrel-adl400", 8, 8, (), True)])])
    text = modbus_fragment(result)
    assert "model: acrel-adl400   # every field verified: false" in text
    data = yaml.safe_load(text)
    config = parse_edge_config({"edge_id": "e", "site": "s", **data})
    assert [d.id for d in config.devices] == ["gw-unit-1", "gw-unit-3", "gw-unit-4"]
    assert "power_factor" not in (config.devices[1].points or [])
