"""The demo's MQTT broker: Mosquitto when it is installed, else an embedded amqtt.

Both bind 127.0.0.1 only. amqtt speaks MQTT 3.1.1 and has no shared subscriptions, which is
all the one-machine demo needs; production and the tests use Mosquitto.

With `users` (the demo always passes them) both require a user name and password and refuse
anonymous clients, even on loopback: any local process could otherwise publish forged data,
acks and commands (issue 20). Mosquitto reads a password file in its own PBKDF2-SHA512 format
(`$7$`, what `mosquitto_passwd` writes), amqtt an Argon2 one.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BrokerInfo:
    kind: str  # "mosquitto" | "amqtt"
    host: str
    port: int
    users: Mapping[str, str] = field(default_factory=dict)  # user → password; {}: anonymous


def mosquitto_password_hash(password: str, *, salt: bytes | None = None,
                            iterations: int = 101) -> str:
    """A Mosquitto 2 password-file hash (`$7$`: PBKDF2-HMAC-SHA512, 12-byte salt), the
    format `mosquitto_passwd` writes, so the demo needs no extra binary."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return (f"$7${iterations}${base64.b64encode(salt).decode()}$"
            f"{base64.b64encode(digest).decode()}")


def _password_file(path: Path, lines: list[str]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None


async def wait_for_port(host: str, port: int, within_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            if loop.time() > deadline:
                raise TimeoutError(
                    f"nothing listening on {host}:{port} after {within_s}s") from None
            await asyncio.sleep(0.05)
        else:
            writer.close()
            await writer.wait_closed()
            return


@contextlib.asynccontextmanager
async def _mosquitto(binary: str, port: int, users: Mapping[str, str]
                     ) -> AsyncIterator[BrokerInfo]:
    with tempfile.TemporaryDirectory(prefix="greenguard-mosquitto-") as tmp:
        conf = Path(tmp) / "mosquitto.conf"
        auth = "allow_anonymous true\n"
        if users:
            _password_file(Path(tmp) / "passwd", [f"{user}:{mosquitto_password_hash(pw)}"
                                                  for user, pw in users.items()])
            auth = f"allow_anonymous false\npassword_file {Path(tmp) / 'passwd'}\n"
            if os.geteuid() == 0:
                # Started as root, Mosquitto drops to the `mosquitto` user, which cannot read
                # a 0600 password file in our 0700 temporary directory.
                auth += "user root\n"
        conf.write_text(f"listener {port} 127.0.0.1\n{auth}"
                        "persistence false\nmax_queued_messages 100000\n", encoding="utf-8")
        proc = await asyncio.create_subprocess_exec(
            binary, "-c", str(conf),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            # Its own session: a Ctrl-C in the terminal reaches only greenguard, which then
            # disconnects its clients before stopping the broker.
            start_new_session=True)
        try:
            await wait_for_port("127.0.0.1", port)
            yield BrokerInfo("mosquitto", "127.0.0.1", port, dict(users))
        finally:
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 5)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


def _closing_amqtt(config: dict[str, object]) -> Any:
    """An amqtt Broker that closes every accepted connection when its handler ends.

    amqtt 0.12 leaves the stream writer of an accepted connection open on several paths: a
    client that connects and leaves before CONNECT (a port probe), a reset while it closes,
    a client still connected at shutdown. The socket then outlives the broker and is
    reported ("unclosed socket", or "loop is closed" from the writer) when the event loop
    is gone. Here each connection's handler closes its writer in `finally`, and shutdown
    cancels the handlers still running and waits for them while the loop still runs."""
    from amqtt.broker import Broker  # demo-only dependency, imported on demand

    class ClosingBroker(Broker):  # type: ignore[misc]  # amqtt ships no type information
        def __init__(self) -> None:
            super().__init__(config)
            self._connections: set[asyncio.Task[None]] = set()

        async def stream_connected(self, reader: asyncio.StreamReader,
                                   writer: asyncio.StreamWriter, listener_name: str) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._connections.add(task)
            try:
                await super().stream_connected(reader, writer, listener_name)
            finally:
                self._connections.discard(task)
                writer.close()
                with contextlib.suppress(OSError):  # the peer may have reset it already
                    await writer.wait_closed()

        async def shutdown(self) -> None:
            await super().shutdown()
            for task in self._connections:
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)

    return ClosingBroker()


@contextlib.asynccontextmanager
async def _amqtt(port: int, users: Mapping[str, str]) -> AsyncIterator[BrokerInfo]:
    with tempfile.TemporaryDirectory(prefix="greenguard-amqtt-") as tmp:
        plugins: dict[str, object] = {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}
        if users:
            from pwdlib import PasswordHash  # amqtt's own dependency
            from pwdlib.hashers.argon2 import Argon2Hasher

            hasher = PasswordHash((Argon2Hasher(),))
            _password_file(Path(tmp) / "passwd", [f"{user}:{hasher.hash(pw)}"
                                                  for user, pw in users.items()])
            plugins = {"amqtt.plugins.authentication.FileAuthPlugin": {
                "password_file": str(Path(tmp) / "passwd")}}
        broker = _closing_amqtt({
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
            "plugins": plugins,
        })
        await broker.start()
        try:
            yield BrokerInfo("amqtt", "127.0.0.1", port, dict(users))
        finally:
            await broker.shutdown()


@contextlib.asynccontextmanager
async def demo_broker(*, port: int | None = None, prefer: str = "auto",
                      users: Mapping[str, str] | None = None) -> AsyncIterator[BrokerInfo]:
    """Start a loopback broker for the life of the context. `prefer`: auto|mosquitto|amqtt.
    `users` (user → password): only they may connect; None or empty: anonymous (tests)."""
    users = dict(users or {})
    if prefer not in ("auto", "mosquitto", "amqtt"):
        raise ValueError(f"prefer must be auto, mosquitto or amqtt, got {prefer!r}")
    port = port or free_port()
    binary = mosquitto_binary() if prefer in ("auto", "mosquitto") else None
    if prefer == "mosquitto" and binary is None:
        raise RuntimeError("mosquitto is not installed (Debian: apt-get install mosquitto)")
    cm = _mosquitto(binary, port, users) if binary else _amqtt(port, users)
    async with cm as info:
        yield info


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=1883, help="port on 127.0.0.1 "
                        "(default 1883)")
    parser.add_argument("--kind", dest="prefer", choices=["auto", "mosquitto", "amqtt"],
                        default="auto", help="auto (default): Mosquitto when installed, "
                        "else the embedded amqtt (MQTT 3.1.1 only)")


async def _serve(port: int, prefer: str) -> None:
    async with demo_broker(port=port, prefer=prefer) as info:
        print(f"{info.kind} broker on {info.host}:{info.port}, anonymous, loopback only "
              "(Ctrl-C to stop)", flush=True)
        await asyncio.Event().wait()


def run(args: argparse.Namespace) -> int:
    """`greenguard broker`: the demo's loopback broker, to try the parts by hand."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port, args.prefer))
    return 0
