"""How a Modbus unit group learns from exceptions (issue 14), with a fake hub: 01/02/03
blame the register, the rest the device."""

from __future__ import annotations

import pytest

from edge.drivers.hubs import ModbusHub
from edge.drivers.modbus import DROP_RETRY_POLLS, ModbusConfig, ModbusDriver
from edge.errors import DeviceFaultError
from protocols.clock import VirtualClock
from protocols.registermap import Table, load_register_map

SDM120 = load_register_map("eastron-sdm120")
POINTS = frozenset(p.name for p in SDM120.points)


class FakeHub(ModbusHub):
    """Answers from the SDM120 map; registers in `refused` answer `code`."""

    def __init__(self, refused: set[int], code: int = 2) -> None:
        super().__init__("fake")
        self.refused = refused
        self.code = code
        self.asked: list[tuple[int, int]] = []

    async def modbus_read(self, table: Table, address: int, count: int, *, unit: int,
                          device: str, timeout_s: float) -> list[int]:
        self.asked.append((address, count))
        if self.refused & set(range(address, address + count)):
            raise DeviceFaultError(device, f"Modbus exception {self.code}", self.code)
        regs: dict[int, int] = {}
        for spec in SDM120.points:
            regs.update(zip(range(spec.address, spec.address + 2),
                            SDM120.encode(spec, 0.5), strict=True))
        return [regs.get(a, 0) for a in range(address, address + count)]


def driver(hub: FakeHub) -> ModbusDriver:
    config = ModbusConfig(id="m1", driver="modbus", bus="b", model="eastron-sdm120")
    return ModbusDriver(config, hub, VirtualClock(0.0))


async def test_missing_register_is_split_out_dropped_and_retried() -> None:
    pf = SDM120.point("power_factor").address
    hub = FakeHub({pf})
    dev = driver(hub)
    first = await dev.read(POINTS, 0.0)
    assert set(first.values) == POINTS - {"power_factor"}  # the good values of the poll
    assert "exception 2" in first.bad["power_factor"]
    # Refused once as part of a request; then point by point in the same poll.
    assert hub.asked[0][1] > 2
    assert (pf, 2) in hub.asked
    hub.asked.clear()
    second = await dev.read(POINTS, 60.0)
    assert set(second.values) == POINTS - {"power_factor"}
    assert second.bad == first.bad  # reported without asking again
    assert all(not (a <= pf < a + n) for a, n in hub.asked)
    for k in range(2, DROP_RETRY_POLLS + 2):
        hub.asked.clear()
        await dev.read(POINTS, 60.0 * k)
    assert (pf, 2) in hub.asked  # tried again after DROP_RETRY_POLLS polls
    hub.refused.clear()  # a firmware update added the register: back at the next retry
    readings = [await dev.read(POINTS, 1e6 + 60.0 * k) for k in range(DROP_RETRY_POLLS + 1)]
    assert "power_factor" not in readings[0].values
    assert readings[-1].values["power_factor"] == 0.5


@pytest.mark.parametrize("code", [4, 6, 11])
async def test_device_level_exceptions_fail_the_device(code: int) -> None:
    hub = FakeHub({SDM120.point("voltage_v").address}, code)
    with pytest.raises(DeviceFaultError):
        await driver(hub).read(POINTS, 0.0)


async def test_every_register_refused_fails_the_device_and_learns_nothing() -> None:
    hub = FakeHub(set(range(0x100)))
    dev = driver(hub)
    with pytest.raises(DeviceFaultError):
        await dev.read(POINTS, 0.0)
    assert not dev.group.dropped
    assert not dev.group.alone
