"""The `PlatformClient` port and its TCP adapter.

    UploadError                   base of what this package raises while uploading
    ├── PlatformUnavailableError  no connection, the connection dropped, or no answer in
    │                             time (`.timeout` says which); retried later
    ├── PlatformGarbageError      the platform answered bytes that are not a frame or XML
    └── PlatformRefusedError      a well-formed "fail" (login or data); `.answer` holds it

The uploader speaks the protocol (login, heartbeat, data) through `exchange`; an adapter
only moves messages. `TcpPlatformClient` holds one persistent connection per building
(gateway), as the guideline's collectors do, frames with the city's codec and puts a
timeout around every read and write (`asyncio.timeout`, not `wait_for`, which on
Python 3.11 can swallow a cancellation that arrives as the answer does: a cancelled
uploader would run on). A link that answered garbage is closed: its framing
state cannot be trusted.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod

from protocols.errors import ProtocolError
from protocols.platform.codec import PlatformCodec
from protocols.platform.messages import Message


class UploadError(Exception):
    """Base of the uploader's errors."""


class PlatformUnavailableError(UploadError):
    def __init__(self, reason: str, *, timeout: bool = False) -> None:
        self.reason = reason
        self.timeout = timeout
        super().__init__(reason)


class PlatformGarbageError(UploadError):
    pass


class PlatformRefusedError(UploadError):
    def __init__(self, reason: str, answer: Message | None = None) -> None:
        self.answer = answer
        super().__init__(reason)


class PlatformClient(ABC):
    """One connection to the platform for one gateway (building)."""

    @abstractmethod
    async def connect(self) -> None: ...

    @abstractmethod
    async def exchange(self, message: Message) -> Message:
        """Send `message` and return the platform's next message."""

    @abstractmethod
    async def close(self) -> None: ...

    @property
    @abstractmethod
    def connected(self) -> bool: ...


class TcpPlatformClient(PlatformClient):
    def __init__(self, host: str, port: int, codec: PlatformCodec, *,
                 timeout_s: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.codec = codec
        self.timeout_s = timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: list[Message] = []
        self._decoder = codec.reader()

    @property
    def connected(self) -> bool:
        return self._writer is not None

    async def connect(self) -> None:
        await self.close()
        try:
            async with asyncio.timeout(self.timeout_s):
                self._reader, self._writer = await asyncio.open_connection(self.host,
                                                                           self.port)
        except TimeoutError:
            raise PlatformUnavailableError(f"connect to {self.host}:{self.port} timed out",
                                      timeout=True) from None
        except OSError as exc:
            raise PlatformUnavailableError(f"connect to {self.host}:{self.port}: {exc}") from None
        self._decoder = self.codec.reader()
        self._pending = []

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):  # never CancelledError
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()

    async def exchange(self, message: Message) -> Message:
        if self._writer is None or self._reader is None:
            raise PlatformUnavailableError("not connected")
        try:
            self._writer.write(self.codec.encode(message))
            async with asyncio.timeout(self.timeout_s):
                await self._writer.drain()
                return await self._receive(self._reader)
        except TimeoutError:
            await self.close()
            raise PlatformUnavailableError(f"no answer within {self.timeout_s:g} s",
                                      timeout=True) from None
        except (OSError, EOFError) as exc:
            await self.close()
            why = str(exc) or type(exc).__name__
            raise PlatformUnavailableError(f"connection lost: {why}") from None
        except ProtocolError as exc:
            await self.close()
            raise PlatformGarbageError(f"answer is not a platform message: {exc}") from None

    async def _receive(self, reader: asyncio.StreamReader) -> Message:
        while not self._pending:
            data = await reader.read(65536)
            if not data:
                raise EOFError("closed by the platform")
            self._pending.extend(self._decoder.feed(data))
        return self._pending.pop(0)
