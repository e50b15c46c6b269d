"""The hub for devices that speak MQTT: smart plugs, LoRaWAN bin sensors, zigbee2mqtt PIRs.

One connection per broker (the device broker on the institution's LAN, often the same
Mosquitto the edge uploads through). Push devices register topic handlers that keep their
latest message; request/answer devices (Tasmota STATUS and POWER, Shelly RPC) send a
command and wait for the answer on the reply topic within the device's timeout_s.

Bounded: aiomqtt's incoming queue holds at most `max_queued_messages` (overflow is
discarded and logged by aiomqtt; `dropped_waiters`/`unmatched` are counted here); at most
one answer is awaited per device at a time, because the bus scheduler polls sequentially.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiomqtt

from edge.drivers.base import MessageHandler
from edge.drivers.hubs import Hub
from edge.errors import DeviceError, DeviceFaultError, DeviceTimeoutError, GarbledFrameError
from protocols.errors import DeviceReplyError, FrameError

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class _Waiter:
    topic: str
    match: Callable[[bytes], Any]
    future: asyncio.Future[Any]


class MqttHub(Hub):
    transport = "mqtt"

    def __init__(self, name: str, host: str, port: int, *, client_id: str,
                 username: str | None = None, password: str | None = None,
                 keepalive_s: int = 30, connect_timeout_s: float = 5.0,
                 max_queued_messages: int = 1000, max_pending_writes: int = 16) -> None:
        super().__init__(name, frame_gap_s=0.0, max_pending_writes=max_pending_writes,
                         connect_timeout_s=connect_timeout_s)
        self.ready = asyncio.Event()  # set while connected and subscribed
        self.host = host
        self.port = port
        self.client_id = client_id
        self.username = username
        self.password = password
        self.keepalive_s = keepalive_s
        self.max_queued_messages = max_queued_messages
        self._handlers: dict[str, list[MessageHandler]] = {}
        self._waiters: list[_Waiter] = []
        self._client: aiomqtt.Client | None = None
        self.messages = 0
        self.handler_errors = 0
        self._request_ids = 0

    def next_request_id(self) -> int:
        """RPC ids unique per connection's reply topic (Shelly answers carry them back)."""
        self._request_ids = self._request_ids % 2_000_000_000 + 1
        return self._request_ids

    @property
    def reply_prefix(self) -> str:
        """Where RPC answers come back (Shelly's `src`)."""
        return self.client_id

    def subscribe(self, topic_filter: str, handler: MessageHandler) -> None:
        self._handlers.setdefault(topic_filter, []).append(handler)

    async def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                async with aiomqtt.Client(
                    self.host, self.port, identifier=self.client_id, username=self.username,
                    password=self.password, keepalive=self.keepalive_s,
                    timeout=self.connect_timeout_s,
                    max_queued_incoming_messages=self.max_queued_messages,
                ) as client:
                    self.stats.connects += 1
                    for topic_filter in [*self._handlers, f"{self.reply_prefix}/rpc"]:
                        await client.subscribe(topic_filter, qos=0)
                    self._client = client
                    self.ready.set()
                    backoff = 0.2
                    log.info("device broker %s connected", self.name)
                    async for message in client.messages:
                        self._dispatch(str(message.topic), message.payload)
            except aiomqtt.MqttError as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError from exc
                log.warning("device broker %s lost: %s", self.name, exc)
            finally:
                self._client = None
                self.ready.clear()
                self._fail_waiters("device broker connection lost")
            await asyncio.sleep(backoff * random.uniform(0.5, 1.5))
            backoff = min(backoff * 2, 30.0)

    def _dispatch(self, topic: str, payload: Any) -> None:
        self.messages += 1
        data = bytes(payload) if isinstance(payload, bytes | bytearray) else str(payload).encode()
        for waiter in list(self._waiters):
            if waiter.topic != topic or waiter.future.done():
                continue
            try:
                answer = waiter.match(data)
            except (FrameError, DeviceReplyError) as exc:
                waiter.future.set_exception(exc)
                continue
            if answer is not None:
                waiter.future.set_result(answer)
        for topic_filter, handlers in self._handlers.items():
            if aiomqtt.Topic(topic).matches(topic_filter):
                for handler in handlers:
                    try:
                        handler(topic, data)
                    except Exception:  # a driver bug must not stop the message pump
                        self.handler_errors += 1
                        log.exception("handler for %s failed", topic)

    def _fail_waiters(self, reason: str) -> None:
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.set_exception(ConnectionError(reason))

    async def publish(self, topic: str, payload: bytes, *, device: str) -> None:
        client = self._client
        if client is None:
            raise DeviceError(device, f"device broker {self.name} not connected")
        self.stats.transactions += 1
        try:
            await client.publish(topic, payload, qos=0)
        except aiomqtt.MqttError as exc:
            raise DeviceError(device, f"device broker {self.name}: {exc}") from None

    async def request(self, topic: str, payload: bytes, *, reply_topic: str,
                      match: Callable[[bytes], T | None], device: str, timeout_s: float,
                      what: str) -> T:
        """Publish, then wait for the first message on `reply_topic` that `match` accepts."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(reply_topic, match, future)
        self._waiters.append(waiter)
        try:
            await self.publish(topic, payload, device=device)
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            self.stats.timeouts += 1
            raise DeviceTimeoutError(device, f"no answer to {what} on {reply_topic} within "
                                             f"{timeout_s:g} s") from None
        except DeviceReplyError as exc:
            self.stats.faults += 1
            raise DeviceFaultError(device, f"{what}: {exc.reason}", exc.code) from None
        except FrameError as exc:
            self.stats.garbled += 1
            raise GarbledFrameError(device, f"{what}: {exc}") from None
        except ConnectionError as exc:
            raise DeviceError(device, str(exc)) from None
        finally:
            self._waiters.remove(waiter)
            if not future.done():
                future.cancel()
