"""The edge agent process: one TaskGroup with a hub task where the hub needs one (device
brokers), a bus scheduler per hub, and the uplink."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.clockwatch import watch_clock
from edge.commission.wire import open_hub
from edge.config import BusConfig, EdgeConfig, ModbusTcpBus, MqttBus, SerialBus, SerialOverTcpBus
from edge.control import RefusedCommand
from edge.drivers import registry
from edge.drivers.base import Driver, WriteResult
from edge.drivers.hubs import Hub
from edge.drivers.mqtt import MqttHub
from edge.outbox import Outbox
from edge.poller import BusScheduler, PollStats
from edge.prom import serve_metrics
from edge.rules.overrides import OverrideStore
from edge.rules.runtime import RulesRuntime
from edge.uplink import Uplink
from protocols.clock import Clock
from protocols.wire import Command, DeviceInfo, Event, Severity

log = logging.getLogger(__name__)

AnyDriver = Driver[Any, Any]


def build_hub(bus: BusConfig, config: EdgeConfig, *, request_timeout_s: float) -> Hub:
    """The hub of one bus. Nothing connects here: connections open on first use."""
    if isinstance(bus, ModbusTcpBus | SerialOverTcpBus | SerialBus):
        return open_hub(bus, timeout_s=request_timeout_s)
    assert isinstance(bus, MqttBus)
    return MqttHub(bus.id, bus.host, bus.port, client_id=f"gg-{config.edge_id}-{bus.id}",
                   username=bus.username, password=bus.password, keepalive_s=bus.keepalive_s,
                   max_queued_messages=bus.max_queued_messages,
                   max_pending_writes=bus.max_pending_writes)


@dataclass
class EdgeAgent:
    """Everything one edge runs; build with `EdgeAgent.create`, then `await agent.run()`."""

    config: EdgeConfig
    outbox: Outbox
    schedulers: list[BusScheduler]
    uplink: Uplink
    hubs: list[Hub]
    drivers: dict[str, AnyDriver]
    poll_stats: PollStats = field(default_factory=PollStats)
    rules: RulesRuntime | None = None

    @property
    def pollers(self) -> list[BusScheduler]:
        """The schedulers under their first name."""
        return self.schedulers

    @classmethod
    def create(cls, config: EdgeConfig, *, clock: Clock, base_dir: Path | None = None,
               epoch: int | None = None) -> EdgeAgent:
        path = Path(config.outbox.path)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        outbox = Outbox(path, edge_id=config.edge_id, max_rows=config.outbox.max_rows,
                        epoch=epoch, min_free_bytes=config.outbox.min_free_bytes,
                        reserve_bytes=config.outbox.reserve_bytes)
        buses: dict[str, BusConfig] = {}
        members: dict[str, list[AnyDriver]] = {}
        timeouts: dict[str, float] = {}
        placed: list[tuple[str, Any]] = []
        for dev in config.devices:
            bus = config.bus_of(dev)
            buses.setdefault(bus.id, bus)
            timeout = config.effective_timeout(dev)
            timeouts[bus.id] = max(timeouts.get(bus.id, 0.0), timeout)
            placed.append((bus.id, dev))
        hubs = {bus_id: build_hub(bus, config, request_timeout_s=timeouts[bus_id])
                for bus_id, bus in buses.items()}
        drivers: dict[str, AnyDriver] = {}
        for bus_id, dev in placed:
            driver = registry.build(dev, hubs[bus_id], clock)
            driver.timeout_s = config.effective_timeout(dev)
            drivers[dev.id] = driver
            members.setdefault(bus_id, []).append(driver)
        registry.link(list(drivers.values()))
        for bus_id, group in members.items():
            hub = hubs[bus_id]
            if isinstance(hub, MqttHub):
                for driver in group:
                    for topic_filter, handler in driver.subscriptions().items():
                        hub.subscribe(topic_filter, handler)
        stats = PollStats()
        schedulers = [BusScheduler(hubs[bus_id], group, outbox=outbox, clock=clock,
                                   interval_s=config.interval_s,
                                   backoff_max_s=buses[bus_id].backoff_max_s, stats=stats)
                      for bus_id, group in members.items()]
        devices = tuple(DeviceInfo(d.id, str(d.config.driver), d.model,
                                   tuple(p.name for p in d.points))
                        for d in drivers.values())
        uplink = Uplink(config, outbox, clock, devices)
        agent = cls(config, outbox, schedulers, uplink, list(hubs.values()), drivers, stats)
        if config.rules is not None and config.rules.enabled:
            state_path = Path(config.rules.state_path)
            if not state_path.is_absolute():
                state_path = (base_dir / state_path if base_dir is not None
                              else path.parent / state_path)
            agent.rules = RulesRuntime(
                plant=agent, config=config.rules, calendar=config.calendar.build(base_dir),
                outbox=outbox, clock=clock, store=OverrideStore(state_path))
        uplink.on_command = agent.handle_command
        uplink.on_refused = agent.handle_refused
        return agent

    def handle_refused(self, refused: RefusedCommand) -> None:
        """A command the control gate refused (unsigned, forged, expired, retained): answered
        `refused` so the audit shows it as refused, never executed and never recorded as an
        executed id."""
        clock = self.uplink.clock
        cmd = refused.command
        self.outbox.append([Event(0, round(clock.now() * 1000), "command.result",
                                  Severity.WARNING, None,
                                  {"id": cmd.id, "status": "refused", "name": cmd.name,
                                   "detail": f"{refused.refusal.value}: {refused.detail}"},
                                  clock.synced)], now=clock.now())

    def handle_command(self, command: Command) -> None:
        """A command from the central: executed at most once, answered `command.result`."""
        if self.rules is not None:
            self.rules.handle_command(command)
            return
        clock = self.uplink.clock
        self.outbox.append([Event(0, round(clock.now() * 1000), "command.result",
                                  Severity.WARNING, None,
                                  {"id": command.id, "status": "rejected",
                                   "detail": "rules are not enabled on this edge"},
                                  clock.synced)], now=clock.now())

    def scheduler_of(self, device_id: str) -> BusScheduler:
        for scheduler in self.schedulers:
            if any(d.driver.id == device_id for d in scheduler.devices):
                return scheduler
        raise KeyError(device_id)

    async def write(self, device_id: str, point: str, value: object, *,
                    source: str = "api") -> WriteResult:
        """Absolute write through the device's bus, ahead of its queued polls; read back."""
        return await self.scheduler_of(device_id).write(device_id, point, value, source=source)

    async def revert(self, device_id: str) -> list[WriteResult]:
        return await self.scheduler_of(device_id).revert(device_id)

    async def wait_started(self) -> None:
        """Until every scheduler has joined the clock and its hub is ready (device brokers
        connected and subscribed): from then on, simulated time waits for the pollers."""
        for scheduler in self.schedulers:
            await scheduler.started.wait()

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                for hub in self.hubs:
                    if isinstance(hub, MqttHub):
                        tg.create_task(hub.run(), name=f"hub {hub.name}")
                for scheduler in self.schedulers:
                    tg.create_task(scheduler.run(), name=f"poll {scheduler.name}")
                tg.create_task(self.uplink.run(), name="uplink")
                if self.rules is not None:
                    tg.create_task(self.rules.run(), name="rules")
                tg.create_task(watch_clock(self.uplink.clock, self.outbox), name="clock")
                if self.config.metrics is not None:
                    tg.create_task(serve_metrics(self, self.config.metrics), name="metrics")
        finally:
            for hub in self.hubs:
                hub.close()
            if self.rules is not None:
                self.rules.store.close()
            self.outbox.close()
