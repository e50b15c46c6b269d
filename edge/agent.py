"""The edge agent process: one TaskGroup with a poller per bus and the uplink."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from edge.config import EdgeConfig
from edge.drivers.modbus_tcp import ModbusTcpHub, ModbusTcpMeter
from edge.outbox import Outbox
from edge.poller import BusPoller, PollStats
from edge.uplink import Uplink
from protocols.clock import Clock
from protocols.wire import DeviceInfo

log = logging.getLogger(__name__)


@dataclass
class EdgeAgent:
    """Everything one edge runs; build with `EdgeAgent.create`, then `await agent.run()`."""

    config: EdgeConfig
    outbox: Outbox
    pollers: list[BusPoller]
    uplink: Uplink
    hubs: list[ModbusTcpHub]
    poll_stats: PollStats = field(default_factory=PollStats)

    @classmethod
    def create(cls, config: EdgeConfig, *, clock: Clock, base_dir: Path | None = None,
               epoch: int | None = None) -> EdgeAgent:
        path = Path(config.outbox.path)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        outbox = Outbox(path, edge_id=config.edge_id, max_rows=config.outbox.max_rows,
                        epoch=epoch)
        hubs: dict[tuple[str, int], ModbusTcpHub] = {}
        meters: dict[tuple[str, int], list[ModbusTcpMeter]] = {}
        for dev in config.devices:
            key = (dev.host, dev.port)
            if key not in hubs:
                hubs[key] = ModbusTcpHub(dev.host, dev.port, timeout_s=dev.timeout_s)
            meters.setdefault(key, []).append(ModbusTcpMeter(dev, hubs[key]))
        stats = PollStats()
        pollers = [BusPoller(hubs[key].name, group, outbox=outbox, clock=clock,
                             interval_s=config.interval_s, stats=stats)
                   for key, group in meters.items()]
        devices = tuple(DeviceInfo(m.id, m.config.driver, m.register_map.model,
                                   tuple(p.name for p in m.points))
                        for group in meters.values() for m in group)
        uplink = Uplink(config, outbox, clock, devices)
        return cls(config, outbox, pollers, uplink, list(hubs.values()), stats)

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                for poller in self.pollers:
                    tg.create_task(poller.run(), name=f"poll {poller.name}")
                tg.create_task(self.uplink.run(), name="uplink")
        finally:
            for hub in self.hubs:
                hub.close()
            self.outbox.close()
