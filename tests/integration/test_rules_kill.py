"""RELIABILITY #13: the edge is killed (SIGKILL, a real process) between a setpoint write and
its read-back. Whether the write reached the AC or was lost, the restarted agent re-derives
the desired state and the unit ends at the same setpoint: written twice, or once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Literal

import pytest
import yaml

from protocols.clock import SystemClock
from protocols.registermap import PointValue, load_register_map
from simulators.modbus_bus import ModbusDeviceServer
from simulators.modbus_devices import AcController, AcUnit
from tests.conftest import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BIN = Path(sys.executable).parent


class KillingAc(AcController):
    """An AC controller that kills the edge the moment the setpoint write arrives: before
    applying it (`lost`) or after (`applied`), in both cases before any answer is sent, so
    the edge never reads back."""

    def __init__(self, *args: object, when: Literal["lost", "applied"], **kwargs: object
                 ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.when = when
        self.victim: int | None = None
        self.applied: list[PointValue] = []

    def apply(self, point: str, value: PointValue, t: float) -> None:
        if point == "setpoint_c" and self.victim is not None:
            victim, self.victim = self.victim, None
            if self.when == "applied":
                super().apply(point, value, t)
                self.applied.append(value)
            os.kill(victim, signal.SIGKILL)
            return
        super().apply(point, value, t)
        if point == "setpoint_c":
            self.applied.append(value)


def edge_config(tmp: Path, modbus_port: int) -> Path:
    path = tmp / "edge.yaml"
    path.write_text(yaml.safe_dump({
        "edge_id": "edge-kill", "site": "school", "interval_s": 60,
        "mqtt": {"host": "127.0.0.1", "port": free_port()},  # no broker: rules work offline
        "buses": [{"id": "gw", "transport": "modbus_tcp", "host": "127.0.0.1",
                   "port": modbus_port, "timeout_s": 0.5}],
        "devices": [{"id": "ac-301", "driver": "modbus", "bus": "gw", "device_id": 10,
                     "model": "ac-controller-modbus", "zone": "301", "poll_interval_s": 1}],
        "rules": {"tick_s": 1, "tick_offset_s": 0.5,
                  "rules": [{"id": "ac-26", "type": "setpoint_limits"}]},
    }))
    return path


def start_edge(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([str(BIN / "greenguard"), "-v", "edge", "--config", str(config)],
                                stdout=out, stderr=subprocess.STDOUT)


async def wait_for(predicate: object, *, within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within_s} s: {what}")
        await asyncio.sleep(0.05)


def outbox_events(path: Path, name: str) -> list[dict[str, object]]:
    db = sqlite3.connect(path)
    try:
        bodies = [json.loads(r[0]) for r in db.execute("SELECT body FROM rows ORDER BY seq")]
    finally:
        db.close()
    return [b for b in bodies if b.get("kind") == "event" and b.get("name") == name]


@pytest.mark.parametrize("when", ["lost", "applied"])
async def test_killed_between_write_and_read_back(tmp_path: Path,
                                                  when: Literal["lost", "applied"]) -> None:
    clock = SystemClock()
    unit = AcUnit(start=clock.now(), ambient_c=30.0)
    unit.set("on", True, clock.now())
    unit.set("setpoint_c", 22.0, clock.now())  # a person's 22 °C in cooling mode
    ac = KillingAc(name="ac", register_map=load_register_map("ac-controller-modbus"),
                   device_id=10, clock=clock, unit=unit, when=when)
    log = tmp_path / "edge.log"
    async with ModbusDeviceServer([ac], framing="tcp") as server:
        config = edge_config(tmp_path, server.port)
        first = start_edge(config, log)
        ac.victim = first.pid
        try:
            await wait_for(lambda: first.poll() is not None, within_s=60,
                           what="the edge writes the clamp and is killed")
        finally:
            if first.poll() is None:
                first.kill()
            first.wait()
        assert first.returncode == -signal.SIGKILL, log.read_text()
        assert unit.state.setpoint_c == (26.0 if when == "applied" else 22.0)
        outbox = tmp_path / "outbox.sqlite"
        before = len(outbox_events(outbox, "audit.write"))
        assert before == 1  # audited before the write, so the kill cannot lose the audit

        polled = _samples(outbox)
        second = start_edge(config, log)
        try:
            # Re-derived at start-up: the unit ends at 26 °C, and the restarted agent has
            # polled and ticked a few times (its read of the unit is in the outbox).
            await wait_for(lambda: unit.state.setpoint_c == 26.0, within_s=60,
                           what="the restarted edge applies the desired setpoint")
            await wait_for(lambda: _samples(outbox) >= polled + 3, within_s=60,
                           what="the restarted edge polls the unit and ticks")
        finally:
            second.send_signal(signal.SIGTERM)
            try:
                second.wait(timeout=20)
            except subprocess.TimeoutExpired:
                second.kill()
                second.wait()
    assert unit.state.setpoint_c == 26.0
    assert unit.state.on is True
    audits = outbox_events(outbox, "audit.write")
    if when == "lost":
        assert ac.applied == [26.0]  # written once, by the restarted agent
        assert len(audits) == 2
    else:
        assert ac.applied == [26.0]  # written once; the restarted agent found it done
        assert len(audits) == 1
    assert all(a["data"]["after"] == 26.0 for a in audits)  # type: ignore[index]


def _samples(outbox: Path) -> int:
    db = sqlite3.connect(outbox)
    try:
        rows = [json.loads(r[0]) for r in db.execute("SELECT body FROM rows")]
    finally:
        db.close()
    return sum(1 for r in rows if r.get("kind") == "sample" and r.get("point") == "setpoint_c")
