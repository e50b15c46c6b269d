"""Edge polling benchmarks, each against a raw ceiling measured in the same run.

    python -m bench.edge_poll [--requests 3000] [--slots 30]

1. **Poll throughput on one connection.** Simulated SDM630 meters (10 points = 2 planned
   requests each) are served by a separate process, over Modbus TCP (pymodbus server) and
   over RTU-over-TCP (a transparent serial server). The ceiling is a raw pymodbus client
   issuing the same two requests back to back; ours is the edge's bus scheduler polling the
   meters slot after slot on an unpaced virtual clock — hub lock, frame gap 0, planning,
   decoding, samples and one outbox transaction per slot included. Ratio = ours / raw.
2. **Requests saved by grouping**: what `plan_reads` makes of every built-in map, and of a
   VRF gateway with 64 indoor units, against one request per point.
3. **Resident memory** of a whole agent process (schedulers, outbox, uplink to a local
   Mosquitto when installed) polling 100 simulated devices × 10 points on 10 serial servers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SDM630_POINTS = ["voltage_l1_v", "voltage_l2_v", "voltage_l3_v", "current_l1_a",
                 "current_l2_a", "current_l3_a", "power_w", "power_factor", "frequency_hz",
                 "energy_import_kwh"]
START = 1_772_416_800.0


# -- simulator process ------------------------------------------------------------------


def _serve(framing: str, devices: int, lines: int, ports: Any, stop: Any) -> None:
    """Run in a child process: `lines` servers with `devices` meters each."""
    from protocols.clock import SystemClock
    from protocols.registermap import load_register_map
    from simulators.modbus_bus import ModbusDeviceServer
    from simulators.modbus_devices import ProfileMeter
    from simulators.profile import PowerProfile, ProfileParams
    from simulators.serial_bus import RtuResponder, SerialLineServer

    async def main() -> None:
        rmap = load_register_map("eastron-sdm630")
        clock = SystemClock()
        start = time.time()  # integrals from now: no months of profile to compute first
        async with contextlib.AsyncExitStack() as stack:
            for line in range(lines):
                meters = [ProfileMeter(name=f"m{line}-{i}", register_map=rmap, device_id=i,
                                       clock=clock, start=start,
                                       profile=PowerProfile(ProfileParams(base=500, peak=3000,
                                                                          seed=i)))
                          for i in range(1, devices + 1)]
                if framing == "tcp":
                    server = await stack.enter_async_context(ModbusDeviceServer(meters))
                    ports.put(server.port)
                else:
                    line_server = await stack.enter_async_context(
                        SerialLineServer(RtuResponder(meters), transport="tcp"))
                    ports.put(line_server.port)
            await asyncio.get_running_loop().run_in_executor(None, stop.wait)

    asyncio.run(main())


@contextlib.contextmanager
def simulators(framing: str, devices: int, lines: int = 1) -> Any:
    ctx = mp.get_context("spawn")
    ports, stop = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_serve, args=(framing, devices, lines, ports, stop), daemon=True)
    proc.start()
    try:
        yield [ports.get(timeout=60) for _ in range(lines)]
    finally:
        stop.set()
        proc.join(10)
        if proc.is_alive():
            proc.kill()


# -- 1. throughput ------------------------------------------------------------------------


async def raw_pymodbus(port: int, framing: str, requests: int) -> float:
    from pymodbus.client import AsyncModbusTcpClient
    from pymodbus.framer import FramerType

    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0,
                                  framer=FramerType.RTU if framing == "rtu" else
                                  FramerType.SOCKET)
    await client.connect()
    try:
        for unit in range(1, 11):  # warm-up: every meter's profile day is computed once
            for _ in range(5):
                await client.read_input_registers(0x00, count=12, device_id=unit)
                await client.read_input_registers(0x34, count=24, device_id=unit)
        t0 = time.perf_counter()
        for i in range(requests // 2):
            unit = i % 10 + 1
            await client.read_input_registers(0x00, count=12, device_id=unit)
            await client.read_input_registers(0x34, count=24, device_id=unit)
        return requests / (time.perf_counter() - t0)
    finally:
        client.close()


def edge_doc(ports: list[int], transport: str, devices: int, *,
             mqtt_port: int = 1) -> dict[str, Any]:
    return {
        "edge_id": "bench", "site": "bench", "interval_s": 900,
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port},
        "buses": [{"id": f"line{i}", "transport": transport, "host": "127.0.0.1", "port": port,
                   "timeout_s": 2.0, "frame_gap_s": 0.0} for i, port in enumerate(ports)],
        "devices": [{"id": f"m{i}-{d}", "driver": "modbus", "bus": f"line{i}", "device_id": d,
                     "model": "eastron-sdm630", "points": SDM630_POINTS, "poll_interval_s": 60}
                    for i in range(len(ports)) for d in range(1, devices + 1)],
    }


async def scheduler_rate(port: int, framing: str, slots: int, *,
                         outbox: bool = True) -> tuple[float, int]:
    from edge.agent import EdgeAgent
    from edge.config import parse_edge_config
    from protocols.clock import VirtualClock

    transport = "modbus_tcp" if framing == "tcp" else "serial_over_tcp"
    clock = VirtualClock(START)
    with tempfile.TemporaryDirectory() as tmp:
        agent = EdgeAgent.create(parse_edge_config(edge_doc([port], transport, 10)),
                                 clock=clock, base_dir=Path(tmp))
        scheduler = agent.schedulers[0]
        if not outbox:  # the request path alone: lock, planning, I/O, decoding, samples
            scheduler._append = lambda records, states: None  # type: ignore[method-assign]
        task = asyncio.create_task(scheduler.run())
        await scheduler.started.wait()
        await clock.run(until=START + 60 * 5)  # warm-up: connection, plans, SQLite
        await clock.settled()
        before = agent.hubs[0].stats.transactions
        t0 = time.perf_counter()
        await clock.run(until=START + 60 * (5 + slots))
        await clock.settled()
        elapsed = time.perf_counter() - t0
        done = agent.hubs[0].stats.transactions - before
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for hub in agent.hubs:
            hub.close()
        agent.outbox.close()
        assert agent.poll_stats.failures == 0, agent.poll_stats
        return done / elapsed, done


# -- 2. grouping --------------------------------------------------------------------------


def grouping() -> list[tuple[str, int, int]]:
    from protocols.registermap import builtin_models, load_register_map, plan_reads

    rows = []
    for model in builtin_models():
        rmap = load_register_map(model)
        points = ([p for i in range(64) for p in rmap.for_unit(i).points]
                  if rmap.units else list(rmap.points))
        label = f"{model} (64 units)" if rmap.units else model
        rows.append((label, len(plan_reads(points, max_gap=-1)), len(plan_reads(points))))
    return rows


# -- 3. memory ----------------------------------------------------------------------------


def _rss_kib(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _agent_child(ports: list[int], mqtt_port: int, slots: int, result: Any) -> None:
    async def main() -> None:
        from edge.agent import EdgeAgent
        from edge.config import parse_edge_config
        from protocols.clock import VirtualClock

        # Paced: a minute's slot every 0.5 s, so the simulator process keeps up.
        clock = VirtualClock(START, speed=120)
        with tempfile.TemporaryDirectory() as tmp:
            doc = edge_doc(ports, "serial_over_tcp", 10, mqtt_port=mqtt_port)
            agent = EdgeAgent.create(parse_edge_config(doc), clock=clock, base_dir=Path(tmp))
            task = asyncio.create_task(agent.run())
            await agent.wait_started()
            await clock.run(until=START + 60 * slots)
            await clock.settled()
            await asyncio.sleep(1.0)  # let the uplink drain
            stats = agent.poll_stats
            result.put((_rss_kib("VmRSS"), _rss_kib("VmHWM"), stats.polls, stats.samples,
                        stats.failures, agent.uplink.stats.records_sent))
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def mosquitto() -> Any:
    binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto"
                                           if Path("/usr/sbin/mosquitto").exists() else None)
    if binary is None:
        yield None
        return
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "m.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n", encoding="utf-8")
        proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.3)
            yield port
        finally:
            proc.terminate()
            proc.wait(5)


def memory(slots: int) -> tuple[int, int, int, int, int, int, bool]:
    with simulators("rtu", devices=10, lines=10) as ports, mosquitto() as mqtt_port:
        ctx = mp.get_context("spawn")
        result = ctx.Queue()
        child = ctx.Process(target=_agent_child, args=(ports, mqtt_port or 1, slots, result))
        child.start()
        values = result.get(timeout=300)
        child.join(30)
        return (*values, mqtt_port is not None)


# -- main ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--slots", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f}")
    print("\n1. Poll throughput on one connection (10 SDM630 meters, 2 requests each); "
          f"median of {args.rounds} alternating rounds")
    for framing, label in (("tcp", "Modbus TCP"), ("rtu", "RTU over TCP")):
        raws, fulls, paths = [], [], []
        with simulators(framing, devices=10) as (port,):
            for _ in range(args.rounds):
                raws.append(asyncio.run(raw_pymodbus(port, framing, args.requests)))
                fulls.append(asyncio.run(scheduler_rate(port, framing, args.slots))[0])
                paths.append(asyncio.run(scheduler_rate(port, framing, args.slots,
                                                        outbox=False))[0])
        raw = statistics.median(raws)
        full = statistics.median(f / r for f, r in zip(fulls, raws, strict=True))
        path = statistics.median(p / r for p, r in zip(paths, raws, strict=True))
        print(f"  {label:<13} raw pymodbus {raw:6.0f} req/s ({min(raws):.0f}–{max(raws):.0f})"
              f"   scheduler request path {statistics.median(paths):6.0f} req/s, ratio "
              f"{path:.2f}   with outbox writes {statistics.median(fulls):6.0f} req/s, "
              f"ratio {full:.2f}")
    print("\n2. Requests per poll: one per point → planned")
    for label, naive, planned in grouping():
        print(f"  {label:<32} {naive:4d} → {planned:3d}   saved {1 - planned / naive:4.0%}")
    print("\n3. Agent polling 100 devices × 10 points (10 RTU-over-TCP lines)")
    rss, hwm, polls, samples, failures, sent, uplink = memory(max(20, args.slots))
    print(f"  RSS {rss / 1024:.1f} MiB (peak {hwm / 1024:.1f} MiB) after {polls} device polls, "
          f"{samples} samples, {failures} failures; uplink "
          f"{'to Mosquitto, ' + str(sent) + ' records sent' if uplink else 'not connected'}")


if __name__ == "__main__":
    main()
