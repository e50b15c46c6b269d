"""Byte-stream links under a bus hub: a TCP connection to a transparent serial server, or
a local serial port (RS-485 adapter) configured with termios.

Both feed one bounded receive buffer that a hub reads frames from and can discard before
a request, so bytes of a late or garbled answer never end up in the next one. The serial
link uses the standard library only (termios + the event loop's reader): pymodbus's serial
client would need pyserial, and DL/T 645 / CJ/T 188 meters share the same links anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import termios
from abc import ABC, abstractmethod

MAX_BUFFER = 4096  # bytes kept unread; a frame is at most 256 (Modbus RTU) or 212 (DL/T 645)

BAUDRATES = {
    1200: termios.B1200, 2400: termios.B2400, 4800: termios.B4800, 9600: termios.B9600,
    19200: termios.B19200, 38400: termios.B38400, 57600: termios.B57600,
    115200: termios.B115200,
}


class LinkError(OSError):
    """The link could not be opened or broke."""


class StreamLink(ABC):
    """A byte pipe with a bounded receive buffer; owned by exactly one hub."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._arrived = asyncio.Event()
        self.overflows = 0  # bytes dropped because nobody read them (counted, bounded)

    @property
    def name(self) -> str:
        raise NotImplementedError

    @property
    @abstractmethod
    def is_open(self) -> bool: ...

    @abstractmethod
    async def open(self, timeout_s: float) -> None: ...

    @abstractmethod
    async def write(self, data: bytes) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    def _received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > MAX_BUFFER:
            excess = len(self._buffer) - MAX_BUFFER
            self.overflows += excess
            del self._buffer[:excess]
        self._arrived.set()

    def discard_input(self) -> int:
        dropped = len(self._buffer)
        self._buffer.clear()
        self._arrived.clear()
        return dropped

    def peek(self) -> bytes:
        return bytes(self._buffer)

    def consume(self, n: int) -> None:
        del self._buffer[:n]

    async def wait_data(self) -> None:
        """Until bytes beyond what is buffered now arrive (or the link closes)."""
        self._arrived.clear()
        await self._arrived.wait()
        if not self.is_open:
            raise LinkError(f"{self.name}: connection closed")


class _TcpProtocol(asyncio.Protocol):
    def __init__(self, link: TcpLink) -> None:
        self.link = link

    def data_received(self, data: bytes) -> None:
        self.link._received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.link._transport = None
        self.link._arrived.set()


class TcpLink(StreamLink):
    """A transparent serial-to-Ethernet server ("RTU over TCP", DL/T 645 over TCP)."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__()
        self.host = host
        self.port = port
        self._transport: asyncio.Transport | None = None

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def is_open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    async def open(self, timeout_s: float) -> None:
        if self.is_open:
            return
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout_s):
                transport, _ = await loop.create_connection(lambda: _TcpProtocol(self),
                                                            self.host, self.port)
        except TimeoutError:
            raise LinkError(f"{self.name}: no connection within {timeout_s:g} s") from None
        except OSError as exc:
            raise LinkError(f"{self.name}: {exc.strerror or exc}") from None
        self._transport = transport
        self.discard_input()

    async def write(self, data: bytes) -> None:
        if self._transport is None:
            raise LinkError(f"{self.name}: not connected")
        self._transport.write(data)

    def close(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()


class SerialLink(StreamLink):
    """A local serial port (`/dev/ttyUSB0`, `/dev/ttyAMA0`) in raw mode."""

    def __init__(self, device: str, *, baudrate: int = 9600, parity: str = "N",
                 stopbits: int = 1) -> None:
        super().__init__()
        if baudrate not in BAUDRATES:
            raise ValueError(f"baudrate {baudrate} not supported; use one of "
                             f"{sorted(BAUDRATES)}")
        if parity not in ("N", "E", "O"):
            raise ValueError(f"parity must be N, E or O, got {parity!r}")
        if stopbits not in (1, 2):
            raise ValueError(f"stopbits must be 1 or 2, got {stopbits!r}")
        self.device = device
        self.baudrate = baudrate
        self.parity = parity
        self.stopbits = stopbits
        self._fd: int | None = None

    @property
    def name(self) -> str:
        return self.device

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    async def open(self, timeout_s: float) -> None:
        if self._fd is not None:
            return
        try:
            fd = os.open(self.device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as exc:
            raise LinkError(f"{self.device}: {exc.strerror or exc}") from None
        try:
            self._configure(fd)
        except termios.error as exc:
            os.close(fd)
            raise LinkError(f"{self.device}: not a serial port ({exc})") from None
        self._fd = fd
        asyncio.get_running_loop().add_reader(fd, self._readable)
        self.discard_input()

    def _configure(self, fd: int) -> None:
        attrs = termios.tcgetattr(fd)
        speed = BAUDRATES[self.baudrate]
        cflag = termios.CS8 | termios.CREAD | termios.CLOCAL
        if self.parity != "N":
            cflag |= termios.PARENB
            if self.parity == "O":
                cflag |= termios.PARODD
        if self.stopbits == 2:
            cflag |= termios.CSTOPB
        attrs[0] = termios.IGNBRK if self.parity == "N" else termios.INPCK  # iflag
        attrs[1] = 0  # oflag: raw
        attrs[2] = cflag
        attrs[3] = 0  # lflag: no echo, no canonical mode, no signals
        attrs[4] = attrs[5] = speed
        attrs[6][termios.VMIN] = 0
        attrs[6][termios.VTIME] = 0
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
        termios.tcflush(fd, termios.TCIOFLUSH)

    def _readable(self) -> None:
        if self._fd is None:
            return
        try:
            data = os.read(self._fd, 1024)
        except BlockingIOError:
            return
        except OSError:
            self.close()
            self._arrived.set()
            return
        if data:
            self._received(data)

    async def write(self, data: bytes) -> None:
        if self._fd is None:
            raise LinkError(f"{self.device}: not open")
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._fd, view)
            except BlockingIOError:
                await asyncio.sleep(0.001)
                continue
            except OSError as exc:
                self.close()
                raise LinkError(f"{self.device}: {exc.strerror or exc}") from None
            view = view[n:]

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(RuntimeError):  # no running loop at interpreter exit
            asyncio.get_running_loop().remove_reader(fd)
        with contextlib.suppress(OSError):
            os.close(fd)


def char_time_s(baudrate: int, *, parity: str = "N", stopbits: int = 1) -> float:
    """Seconds per character on the line: start bit, 8 data bits, parity, stop bits."""
    bits = 1 + 8 + (0 if parity == "N" else 1) + stopbits
    return bits / baudrate


def rtu_silence_s(baudrate: int, *, parity: str = "N", stopbits: int = 1) -> float:
    """The Modbus RTU inter-frame silence: 3.5 characters, 1.75 ms above 19200 baud."""
    if baudrate > 19200:
        return 0.00175
    return 3.5 * char_time_s(baudrate, parity=parity, stopbits=stopbits)
