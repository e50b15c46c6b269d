"""A userspace TCP fault proxy for the reliability suite (netem may be missing on the kernel).

Sits between a client (the edge) and a server (the broker) on loopback and can, at any
moment, forward normally, go DOWN (close every connection with a reset and refuse new ones:
a hard partition) or become a BLACKHOLE (keep connections open and silently drop every byte:
a half-open link that only keepalives can detect).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
import struct


class LinkState(enum.Enum):
    FORWARD = "forward"
    DOWN = "down"
    BLACKHOLE = "blackhole"


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int, *, listen_port: int = 0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listen_port = listen_port
        self.state = LinkState.FORWARD
        self._server: asyncio.Server | None = None
        self._conns: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0  # accepted while forwarding

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self._listen_port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._reset_all()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def set_state(self, state: LinkState) -> None:
        self.state = state
        if state is LinkState.DOWN:
            self._reset_all()

    def _reset_all(self) -> None:
        for client, upstream in list(self._conns):
            _reset(client)
            _reset(upstream)
        self._conns.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.state is LinkState.DOWN:
            _reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            _reset(writer)
            return
        self.connections += 1
        pair = (writer, up_writer)
        self._conns.add(pair)
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(src, dst, pair))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                    pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter]) -> None:
        try:
            while data := await src.read(65536):
                if self.state is LinkState.FORWARD:
                    dst.write(data)
                    await dst.drain()
                # BLACKHOLE: bytes vanish, the connection stays up.
        except (OSError, ConnectionError):
            pass
        finally:
            if pair in self._conns:
                self._conns.discard(pair)
                for w in pair:
                    with contextlib.suppress(Exception):
                        w.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), as a dead link or a firewall reject looks to the peer."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError):
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(Exception):
        writer.close()
