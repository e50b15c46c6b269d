"""Simulated devices without sockets: the AC thermal model, register-map devices, and the
line responders answering raw frames."""

from __future__ import annotations

import math

import pytest

from protocols import cjt188, dlt645, modbus_rtu
from protocols.clock import VirtualClock
from protocols.registermap import Table, load_register_map
from simulators.cjt188_meter import Cjt188Responder, SimulatedWaterMeter
from simulators.dlt645_meter import Dlt645Responder, SimulatedDlt645Meter
from simulators.errors import IllegalAddressError, IllegalValueError
from simulators.modbus_devices import AcController, AcUnit, ProfileMeter, VrfGateway
from simulators.mqtt_devices import SimulatedShellyPlug, SimulatedTasmotaPlug
from simulators.profile import FlowProfile, PowerProfile, ProfileParams
from simulators.serial_bus import RtuResponder

T0 = 1_772_416_800.0
AC_MAP = load_register_map("ac-controller-modbus")


def test_room_temperature_follows_the_setpoint() -> None:
    unit = AcUnit(start=T0, ambient_c=30.0, tau_on_s=1200)
    assert unit.room_temp(T0 + 3600) == 30.0  # off: stays at ambient
    unit.set("on", True, T0)
    unit.set("setpoint_c", 24.0, T0)
    # cooling: 24 + (30 − 24)·e^(−t/1200)
    assert unit.room_temp(T0 + 1200) == pytest.approx(24 + 6 * math.exp(-1))
    unit.set("on", False, T0 + 1200)  # back towards ambient from where it was
    assert unit.room_temp(T0 + 1200) == pytest.approx(24 + 6 * math.exp(-1))
    assert unit.room_temp(T0 + 1200 + 3600) == pytest.approx(
        30 - (30 - 24 - 6 * math.exp(-1)) * math.exp(-1))
    unit.set("on", True, T0)
    unit.set("mode", "heat", T0)
    unit.set("setpoint_c", 20.0, T0)
    assert unit.room_temp(T0 + 10_000) == pytest.approx(30.0, abs=1e-3)  # heat never cools


def test_ac_controller_registers() -> None:
    clock = VirtualClock(T0)
    ac = AcController(name="ac", register_map=AC_MAP, device_id=3, clock=clock,
                      unit=AcUnit(start=T0, ambient_c=28.7))
    assert ac.read(Table.HOLDING, 0, 3) == [1, 260, 0]  # cool, 26.0 °C, fan auto
    assert ac.read(Table.INPUT, 0, 1) == [287]
    assert ac.read(Table.COIL, 0, 16) == [0] * 16  # unmapped bits read 0
    ac.write(Table.HOLDING, 1, [245])
    ac.write(Table.COIL, 0, [1])
    assert (ac.unit.state.setpoint_c, ac.unit.state.on) == (24.5, True)
    with pytest.raises(IllegalValueError, match="above the allowed maximum"):
        ac.write(Table.HOLDING, 1, [400])
    with pytest.raises(IllegalValueError, match="read-only"):
        ac.write(Table.INPUT, 0, [1])
    with pytest.raises(IllegalAddressError):
        ac.write(Table.HOLDING, 5, [1])
    with pytest.raises(IllegalAddressError):
        ac.read(Table.HOLDING, 100, 2)


def test_vrf_gateway_addresses_units_by_block() -> None:
    clock = VirtualClock(T0)
    units = {0: AcUnit(start=T0), 2: AcUnit(start=T0)}
    vrf = VrfGateway(name="vrf", register_map=load_register_map("vrf-gateway-modbus"),
                     device_id=7, clock=clock, units=units)
    block = vrf.read(Table.HOLDING, 0, 24)
    assert block[2] == block[16 + 2] == 260
    assert block[8:16] == [0] * 8  # unit 1 is not installed: zeros in a larger read
    vrf.write(Table.HOLDING, 16 + 2, [230])
    assert units[2].state.setpoint_c == 23.0
    with pytest.raises(IllegalAddressError, match="no unit 1"):
        vrf.write(Table.HOLDING, 8 + 2, [230])
    with pytest.raises(IllegalAddressError):
        vrf.read(Table.HOLDING, 8, 6)


def test_profile_meter_is_the_integral() -> None:
    clock = VirtualClock(T0)
    meter = ProfileMeter(name="m", register_map=load_register_map("acrel-adl400"),
                         device_id=1, clock=clock, start=T0, initial=100.0,
                         profile=PowerProfile(ProfileParams(base=1000, peak=2000, seed=1)))
    values = meter.values_at(T0 + 3600)
    assert values["energy_import_kwh"] == 100.0 + meter.consumed(T0, T0 + 3600)
    assert set(values) == {p.name for p in meter.register_map.points}


def test_rtu_responder_answers_only_its_units() -> None:
    clock = VirtualClock(T0)
    ac = AcController(name="ac", register_map=AC_MAP, device_id=3, clock=clock,
                      unit=AcUnit(start=T0))
    line = RtuResponder([ac])
    request = modbus_rtu.frame(3, modbus_rtu.read_request(
        modbus_rtu.Function.READ_HOLDING_REGISTERS, 1, 1).pdu())
    used, answer = line.take(request + b"\x00")
    assert used == 8
    assert answer is not None
    assert answer.data == bytes.fromhex("03 03 02 01 04") + modbus_rtu.crc16(
        bytes.fromhex("03 03 02 01 04")).to_bytes(2, "little")
    assert line.take(request[:5]) == (0, None)  # incomplete: wait
    other = modbus_rtu.frame(4, request[1:-2])
    assert line.take(other)[1] is None  # nobody at unit 4
    ac.silent = True
    assert line.take(request)[1] is None
    ac.silent = False
    ac.exception_code = 6
    answer = line.take(request)[1]
    assert answer is not None
    assert answer.data[1:3] == b"\x83\x06"


def test_dlt645_responder() -> None:
    clock = VirtualClock(T0)
    meters = [SimulatedDlt645Meter(address=f"00000000000{i}", clock=clock, start=T0,
                                   initial_kwh=10.0 * i,
                                   profile=PowerProfile(ProfileParams(base=1, peak=2)))
              for i in (1, 2)]
    line = Dlt645Responder(meters)
    _, answer = line.take(dlt645.encode_read("000000000002", 0x00010000))
    assert answer is not None
    frame = dlt645.parse_frame(answer.data)
    assert dlt645.decode_read_reply(frame, address="000000000002", di=0x00010000) == 20.0
    assert line.take(dlt645.encode_read_address())[1] is None  # two meters would collide
    _, answer = line.take(dlt645.encode_read("000000000001", 0x04000401))  # unknown DI
    assert answer is not None
    assert dlt645.parse_frame(answer.data).is_error


def test_cjt188_responder() -> None:
    clock = VirtualClock(T0)
    meter = SimulatedWaterMeter(address="00000000000012", clock=clock, start=T0,
                                initial_m3=1000.105,
                                profile=FlowProfile(ProfileParams(base=0.1, peak=1)))
    meter.valve_open = False
    line = Cjt188Responder([meter])
    _, answer = line.take(cjt188.encode_read("00000000000012", ser=9))
    assert answer is not None
    data = cjt188.decode_read_reply(cjt188.parse_frame(answer.data),
                                    address="00000000000012", ser=9)
    assert (data.cumulative, data.status.valve_open) == (1000.10, False)  # counter truncates


def test_plug_energy_accumulates_only_while_on() -> None:
    clock = VirtualClock(T0)
    plug = SimulatedTasmotaPlug(topic="p", clock=clock, load_w=1000.0, on=True)
    clock._now = T0 + 3600
    plug.switch(False)
    clock._now = T0 + 7200
    assert plug.energy_kwh(clock.now()) == pytest.approx(1.0)
    shelly = SimulatedShellyPlug(prefix="s", clock=VirtualClock(T0), load_w=100.0)
    assert shelly.energy_wh(T0 + 36) == pytest.approx(1.0)


def test_the_demo_meters_fit_the_device_servers() -> None:
    from simulators.modbus_devices import MeterSlave
    from simulators.scenario import build_meters, load_scenario

    clock = VirtualClock(T0)
    meter = build_meters(load_scenario("school"), clock, T0)[0]
    slave = MeterSlave(meter)
    assert slave.read(Table.INPUT, 0x48, 2) == meter.register_map.encode(
        meter.cumulative_point, meter.cumulative_at(T0))
    meter.silent = True
    assert slave.silent
    with pytest.raises(IllegalAddressError, match="read-only"):
        slave.write(Table.HOLDING, 0, [1])
