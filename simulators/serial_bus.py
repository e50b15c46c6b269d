"""A simulated RS-485 line: request/answer framing on a TCP port (a transparent serial
server) or on a pseudo-terminal (a real tty the edge opens with termios, as it would open
/dev/ttyUSB0).

The line is multi-drop: every request reaches every device, and only the addressed one
answers. What a "device" says is up to a `LineResponder`: Modbus RTU devices
(`RtuResponder`, over `protocols.modbus_rtu`), DL/T 645 meters and CJ/T 188 water meters
(in their own modules). Faults are per device: silent (no answer), garbled (a byte of the
answer flipped, so its checksum fails), slow (`delay_s` before answering). On a pty the
line can have a baud rate (`line_baudrate`): a master whose tty is set to another is not
understood, and nobody answers — what a wrong baud rate looks like on site.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import termios
import tty
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

from edge.drivers.links import BAUDRATES
from protocols import modbus_rtu
from protocols.errors import DeviceReplyError, FrameError
from protocols.registermap import Table
from simulators.errors import IllegalAddressError, IllegalValueError
from simulators.modbus_devices import ModbusSlave


@dataclass(frozen=True, slots=True)
class Answer:
    data: bytes
    delay_s: float = 0.0
    garble: bool = False


class LineResponder(Protocol):
    def take(self, buffer: bytes) -> tuple[int, Answer | None]:
        """(bytes consumed, answer) for the first complete request in `buffer`; consumed
        0 means the request is not complete yet, answer None means nobody answers."""
        ...


class SerialLineServer:
    """Serve a `LineResponder` on 127.0.0.1 (`transport="tcp"`) or a pty (`"pty"`)."""

    def __init__(self, responder: LineResponder, *, transport: str = "tcp",
                 host: str = "127.0.0.1", port: int = 0,
                 line_baudrate: int | None = None) -> None:
        if transport not in ("tcp", "pty"):
            raise ValueError(f"transport must be tcp or pty, got {transport!r}")
        if line_baudrate is not None and transport != "pty":
            raise ValueError("line_baudrate needs transport='pty' (a tty has a baud rate)")
        # The baud rate the devices on the line use; a master whose tty is set to another
        # is not understood (the devices stay silent), as on a real line. (Parity cannot be
        # checked the same way: the Linux pty driver clears PARENB.)
        self.line_baudrate = line_baudrate
        self.misheard = 0  # requests sent at the wrong baud rate
        self.responder = responder
        self.transport = transport
        self.host = host
        self._requested_port = port
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._path: str | None = None
        self._pty_buffer = bytearray()
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.frames = 0  # complete requests seen

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("not serving on TCP")
        return self._port

    @property
    def path(self) -> str:
        """The tty the edge opens (`/dev/pts/N`)."""
        if self._path is None:
            raise RuntimeError("not serving on a pty")
        return self._path

    async def start(self) -> None:
        if self.transport == "tcp":
            self._server = await asyncio.start_server(self._serve_tcp, self.host,
                                                      self._requested_port)
            self._port = int(self._server.sockets[0].getsockname()[1])
            return
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self._path = os.ttyname(slave)
        asyncio.get_running_loop().add_reader(master, self._pty_readable)

    def _answers(self, buffer: bytearray) -> list[Answer]:
        out: list[Answer] = []
        while buffer:
            used, answer = self.responder.take(bytes(buffer))
            if used == 0:
                break
            del buffer[:used]
            self.frames += 1
            if answer is not None:
                out.append(answer)
        return out

    @staticmethod
    def _wire(answer: Answer) -> bytes:
        if answer.garble and answer.data:
            return answer.data[:-2] + bytes([answer.data[-2] ^ 0x5A]) + answer.data[-1:]
        return answer.data

    async def _serve_tcp(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        task = asyncio.current_task()
        if task is not None:  # Python 3.11's Server.wait_closed() does not wait for handlers
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        buffer = bytearray()
        try:
            while data := await reader.read(1024):
                buffer += data
                for answer in self._answers(buffer):
                    if answer.delay_s > 0:
                        await asyncio.sleep(answer.delay_s)
                    writer.write(self._wire(answer))
                    await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _pty_readable(self) -> None:
        if self._master is None:
            return
        try:
            data = os.read(self._master, 1024)
        except (BlockingIOError, OSError):
            return
        if not self._settings_match():
            self.misheard += 1  # bytes at the wrong speed are noise to the devices
            self._pty_buffer.clear()
            return
        self._pty_buffer += data
        for answer in self._answers(self._pty_buffer):
            task = asyncio.get_running_loop().create_task(self._pty_answer(answer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _settings_match(self) -> bool:
        """Does the master's tty (set by whoever opened the pty's slave end) use the
        line's baud rate?"""
        if self.line_baudrate is None or self._slave is None:
            return True
        speeds = {code: baud for baud, code in BAUDRATES.items()}
        return speeds.get(termios.tcgetattr(self._slave)[4]) == self.line_baudrate

    async def _pty_answer(self, answer: Answer) -> None:
        if answer.delay_s > 0:
            await asyncio.sleep(answer.delay_s)
        if self._master is not None:
            with contextlib.suppress(OSError):
                os.write(self._master, self._wire(answer))

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            server.close()
            for writer in list(self._writers):
                writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)
            self._port = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._master is not None:
            asyncio.get_running_loop().remove_reader(self._master)
            for fd in (self._master, self._slave):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._master = self._slave = None
            self._path = None
        for _ in range(3):  # let the transports' close callbacks run
            await asyncio.sleep(0)

    async def __aenter__(self) -> SerialLineServer:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()


_TABLE_OF = {
    modbus_rtu.Function.READ_COILS: Table.COIL,
    modbus_rtu.Function.READ_DISCRETE_INPUTS: Table.DISCRETE,
    modbus_rtu.Function.READ_HOLDING_REGISTERS: Table.HOLDING,
    modbus_rtu.Function.READ_INPUT_REGISTERS: Table.INPUT,
    modbus_rtu.Function.WRITE_SINGLE_COIL: Table.COIL,
    modbus_rtu.Function.WRITE_MULTIPLE_COILS: Table.COIL,
    modbus_rtu.Function.WRITE_SINGLE_REGISTER: Table.HOLDING,
    modbus_rtu.Function.WRITE_MULTIPLE_REGISTERS: Table.HOLDING,
}


class RtuResponder:
    """Modbus RTU devices on the line, by unit id."""

    def __init__(self, devices: Iterable[ModbusSlave], *, log_size: int = 10_000) -> None:
        self.devices = {d.device_id: d for d in devices}
        self.requests: collections.deque[tuple[int, int, int, int]] = collections.deque(
            maxlen=log_size)  # (unit, function, address, count)

    def take(self, buffer: bytes) -> tuple[int, Answer | None]:
        length = modbus_rtu.request_length(buffer)
        if length is None or len(buffer) < length:
            return 0, None
        try:
            unit, request = modbus_rtu.parse_request(buffer[:length])
        except DeviceReplyError as exc:
            return length, self._exception(buffer[0], buffer[1], exc.code)
        except FrameError:
            return length, None  # noise: a real device stays silent
        self.requests.append((unit, request.function, request.address, request.count))
        device = self.devices.get(unit)
        if device is None or device.silent:
            return length, None
        if device.exception_code is not None:
            return length, self._exception(unit, request.function, device.exception_code,
                                           device)
        table = _TABLE_OF[request.function]
        try:
            if request.values:
                device.write(table, request.address, list(request.values))
                data = modbus_rtu.write_response(unit, request)
            elif table.is_bits:
                bits = device.read(table, request.address, request.count)
                data = modbus_rtu.read_response(unit, request, [bool(b) for b in bits])
            else:
                data = modbus_rtu.read_response(unit, request,
                                                device.read(table, request.address,
                                                            request.count))
        except IllegalAddressError:
            return length, self._exception(unit, request.function, 2, device)
        except IllegalValueError:
            return length, self._exception(unit, request.function, 3, device)
        return length, Answer(data, device.delay_s, device.garble)

    @staticmethod
    def _exception(unit: int, function: int, code: int,
                   device: ModbusSlave | None = None) -> Answer:
        return Answer(modbus_rtu.exception_response(unit, function, code),
                      device.delay_s if device else 0.0, device.garble if device else False)
