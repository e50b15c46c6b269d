"""Hubs without a network: the priority lock, and a stream hub over an in-memory link that
answers what a test scripts (garbage, silence, exceptions, echoes)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from edge.drivers.base import Priority
from edge.drivers.dlt645 import Dlt645Config, Dlt645Driver
from edge.drivers.hubs import PriorityLock, StreamHub
from edge.drivers.links import StreamLink, rtu_silence_s
from edge.errors import BusBusyError, DeviceFaultError, DeviceTimeoutError, GarbledFrameError
from protocols import dlt645, modbus_rtu
from protocols.clock import VirtualClock
from protocols.registermap import Table


async def test_writes_get_the_lock_before_waiting_polls() -> None:
    lock = PriorityLock(max_waiting={Priority.WRITE: 2})
    order: list[str] = []
    await lock.acquire(Priority.POLL)  # a poll is on the wire

    async def use(name: str, priority: Priority) -> None:
        await lock.acquire(priority)
        order.append(name)
        lock.release()

    tasks = [asyncio.create_task(use("poll-2", Priority.POLL)),
             asyncio.create_task(use("poll-3", Priority.POLL)),
             asyncio.create_task(use("write-1", Priority.WRITE)),
             asyncio.create_task(use("write-2", Priority.WRITE))]
    await asyncio.sleep(0)
    with pytest.raises(OverflowError):  # bounded: a third write does not queue
        await lock.acquire(Priority.WRITE)
    lock.release()
    await asyncio.gather(*tasks)
    assert order == ["write-1", "write-2", "poll-2", "poll-3"]
    assert not lock.locked


async def test_a_cancelled_waiter_hands_the_lock_on() -> None:
    lock = PriorityLock(max_waiting={})
    await lock.acquire(Priority.POLL)
    first = asyncio.create_task(lock.acquire(Priority.WRITE))
    second = asyncio.create_task(lock.acquire(Priority.POLL))
    await asyncio.sleep(0)
    lock.release()  # handed to `first`…
    first.cancel()  # …which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 1)
    assert lock.locked
    lock.release()
    assert not lock.locked


class ScriptedLink(StreamLink):
    """Answers each write with what `respond` returns (None: silence)."""

    def __init__(self, respond: Callable[[bytes], bytes | None]) -> None:
        super().__init__()
        self.respond = respond
        self.open_ = False
        self.sent: list[bytes] = []

    @property
    def name(self) -> str:
        return "scripted"

    @property
    def is_open(self) -> bool:
        return self.open_

    async def open(self, timeout_s: float) -> None:
        self.open_ = True

    async def write(self, data: bytes) -> None:
        self.sent.append(data)
        answer = self.respond(data)
        if answer:
            asyncio.get_running_loop().call_soon(self._received, answer)

    def close(self) -> None:
        self.open_ = False


def rtu_answer(values: list[int]) -> Callable[[bytes], bytes]:
    def respond(data: bytes) -> bytes:
        unit, request = modbus_rtu.parse_request(data)
        return modbus_rtu.read_response(unit, request, values)
    return respond


def hub(link: StreamLink) -> StreamHub:
    return StreamHub("line", link, transport="serial", frame_gap_s=0.0)


async def test_rtu_read() -> None:
    line = hub(ScriptedLink(rtu_answer([0x4640, 0xE6AE])))
    async with line.session(Priority.POLL, device="m1"):
        regs = await line.modbus_read(Table.INPUT, 0x48, 2, unit=1, device="m1", timeout_s=1)
    assert regs == [0x4640, 0xE6AE]
    assert line.stats.transactions == 1


async def test_garbage_is_a_garbled_frame_and_is_dropped() -> None:
    def garbled(data: bytes) -> bytes:
        good = rtu_answer([1, 2])(data)
        return good[:-1] + bytes([good[-1] ^ 0xFF])

    line = hub(ScriptedLink(garbled))
    with pytest.raises(GarbledFrameError, match="CRC mismatch"):
        await line.modbus_read(Table.HOLDING, 0, 2, unit=1, device="m1", timeout_s=1)
    assert line.stats.garbled == 1
    assert line.link.peek() == b""


async def test_exception_silence_and_stale_bytes() -> None:
    line = hub(ScriptedLink(lambda data: modbus_rtu.exception_response(data[0], data[1], 2)))
    with pytest.raises(DeviceFaultError, match="illegal data address") as info:
        await line.modbus_read(Table.HOLDING, 0, 2, unit=1, device="m1", timeout_s=1)
    assert info.value.code == 2
    silent = hub(ScriptedLink(lambda data: None))
    with pytest.raises(DeviceTimeoutError, match=r"within 0\.05 s"):
        await silent.modbus_read(Table.HOLDING, 0, 2, unit=1, device="m1", timeout_s=0.05)
    late = ScriptedLink(rtu_answer([7]))
    line = hub(late)
    await late.open(1)
    late._received(b"\x01\x03\x02\x00\x09")  # the tail of an answer that came too late
    assert await line.modbus_read(Table.HOLDING, 0, 1, unit=1, device="m1",
                                  timeout_s=1) == [7]
    assert line.stats.discarded_bytes == 5


async def test_writes_beyond_the_queue_bound_are_refused() -> None:
    line = StreamHub("line", ScriptedLink(lambda d: None), transport="serial",
                     frame_gap_s=0.0, max_pending_writes=1)
    await line.lock.acquire(Priority.POLL)
    waiting = asyncio.create_task(line.lock.acquire(Priority.WRITE))
    await asyncio.sleep(0)
    with pytest.raises(BusBusyError, match="bus line busy"):
        async with line.session(Priority.WRITE, device="ac"):
            pass
    assert line.stats.busy_refused == 1
    line.lock.release()
    await waiting
    line.lock.release()


async def test_dlt645_skips_an_adapter_echo() -> None:
    address = "123456789012"

    def echo_then_answer(data: bytes) -> bytes:
        frame, _ = dlt645.scan_frame(data)
        assert frame is not None
        di = int.from_bytes(frame.data[:4], "little")
        return data + dlt645.encode_read_reply(address, di, 12345.67)

    config = Dlt645Config(id="e1", driver="dlt645", bus="line", address=address,
                          points=["energy_import_kwh"])
    driver = Dlt645Driver(config, hub(ScriptedLink(echo_then_answer)), VirtualClock(0))
    reading = await driver.read(frozenset({"energy_import_kwh"}), 0.0)
    assert reading.values == {"energy_import_kwh": 12345.67}


def test_rtu_silence() -> None:
    assert rtu_silence_s(9600) == pytest.approx(3.5 * 10 / 9600)
    assert rtu_silence_s(2400, parity="E") == pytest.approx(3.5 * 11 / 2400)
    assert rtu_silence_s(115200) == 0.00175
