"""End-to-end ingest rate and backlog drain, beside the raw ceilings of the same run.

    python -m bench.ingest_e2e [--backlog 360000] [--batch 500] [--live-rate 1000]

Pipeline measured: edge outbox (SQLite) → uplink (aiomqtt) → Mosquitto → `greenguard
central` (a separate process: ingest → SQLite store → ack) → edge deletes acknowledged rows.
The outbox starts with `--backlog` readings (an outage's worth: one hour of 1,000 points/s is
3,600,000) while live readings keep arriving at `--live-rate`; the run reports

- sustained end-to-end readings/s while draining the backlog,
- the drain speed as a multiple of real time at 1,000 points/s,
- live latency: append → stored at the central, while the backlog drains (live goes first),

and, in the same run, the raw ceilings it passes through: Mosquitto relaying the same
payloads between its own clients (mosquitto_pub → mosquitto_sub), aiomqtt receiving them,
and raw SQLite inserts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiomqtt
import yaml

from bench.store_ingest import raw_sqlite
from edge.config import parse_edge_config
from edge.outbox import Outbox
from edge.uplink import Uplink
from protocols.clock import SystemClock
from protocols.wire import Sample, StreamId, encode_batch_raw, encode_record
from simulators.broker import free_port, wait_for_port

BIN = Path(sys.executable).parent


def batch_payload(batch: int) -> bytes:
    rows = [encode_record(Sample(i + 1, 1_790_000_000_000 + i, f"m{i % 100}", "power_w",
                                 float(i), "W")) for i in range(batch)]
    return encode_batch_raw(StreamId("bench", 1), after=0, seq=batch, sent=0, synced=True,
                            records_json=rows)


def mosquitto_relay(port: int, payload: bytes, messages: int) -> float:
    """Messages/s relayed by Mosquitto between its own clients, QoS 1."""
    sub = subprocess.Popen(["mosquitto_sub", "-p", str(port), "-t", "bench/relay", "-q", "1",
                            "-C", str(messages)], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    lines = (payload.decode() + "\n") * messages
    t0 = time.perf_counter()
    subprocess.run(["mosquitto_pub", "-p", str(port), "-t", "bench/relay", "-q", "1", "-l"],
                   input=lines.encode(), check=True)
    sub.wait(120)
    return messages / (time.perf_counter() - t0)


async def aiomqtt_receive(port: int, payload: bytes, messages: int) -> float:
    """Messages/s an aiomqtt subscriber takes in, fed by mosquitto_pub."""
    async with aiomqtt.Client("127.0.0.1", port, identifier="bench-recv") as client:
        await client.subscribe("bench/recv", qos=1)
        lines = (payload.decode() + "\n") * messages
        pub = await asyncio.create_subprocess_exec(
            "mosquitto_pub", "-p", str(port), "-t", "bench/recv", "-q", "1", "-l",
            stdin=asyncio.subprocess.PIPE)
        t0 = time.perf_counter()
        feeder = asyncio.create_task(pub.communicate(lines.encode()))
        got = 0
        async for _ in client.messages:
            got += 1
            if got == messages:
                break
        elapsed = time.perf_counter() - t0
        await feeder
    return messages / elapsed


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def end_to_end(work: Path, port: int, backlog: int, batch: int, live_rate: float,
                     in_flight: int, broker_pid: int) -> dict[str, float]:
    from simulators.configs import institution_config
    from simulators.scenario import load_scenario

    (work / "institution.yaml").write_text(
        yaml.safe_dump(institution_config(load_scenario("school")), allow_unicode=True),
        encoding="utf-8")
    from central.auth import generate_secret

    (work / "auth.secret").write_text(generate_secret(), encoding="utf-8")
    (work / "auth.secret").chmod(0o600)
    central = subprocess.Popen(
        [str(BIN / "greenguard"), "central", "--config", str(work / "institution.yaml"),
         "--db", str(work / "central.sqlite"), "--mqtt-port", str(port),
         "--http-port", str(free_port()), "--auth-secret-file", str(work / "auth.secret")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        outbox = Outbox(work / "outbox.sqlite", edge_id="edge-1", max_rows=10_000_000)
        ts = 1_790_000_000_000
        chunk = 10_000
        for first in range(0, backlog, chunk):
            outbox.append([Sample(0, ts + i, f"m{i % 100}", "power_w", float(i), "W")
                           for i in range(first, min(first + chunk, backlog))])
        config = parse_edge_config({
            "edge_id": "edge-1", "site": "demo-school",
            "mqtt": {"host": "127.0.0.1", "port": port},
            "uplink": {"batch_max_records": batch, "max_in_flight_batches": in_flight,
                       "replay_records_per_s": 1_000_000, "resend_after_s": 30},
            "devices": [{"id": "m1", "host": "127.0.0.1", "model": "eastron-sdm120"}]})
        uplink = Uplink(config, outbox, SystemClock())
        await asyncio.sleep(1.5)  # the central subscribes
        live_times: dict[int, float] = {}

        async def live() -> None:
            i = 0
            while True:
                (seq,) = outbox.append([Sample(0, ts + backlog + i, "live", "power_w", 1.0,
                                               "W")])
                live_times[seq] = time.perf_counter()
                i += 1
                await asyncio.sleep(1 / live_rate)

        latencies: list[float] = []

        async def watch_live() -> None:
            db = sqlite3.connect(f"file:{work / 'central.sqlite'}?mode=ro", uri=True)
            seen = 0
            while True:
                await asyncio.sleep(0.05)
                try:
                    rows = db.execute("SELECT seq FROM samples WHERE stream_edge = 'edge-1' "
                                      "AND device = 'live' "
                                      "AND seq > ? ORDER BY seq", (seen,)).fetchall()
                except sqlite3.Error:
                    continue
                now = time.perf_counter()
                for (seq,) in rows:
                    if seq in live_times:
                        latencies.append(now - live_times[seq])
                    seen = max(seen, seq)

        t0 = time.perf_counter()
        cpu0 = (cpu_seconds(central.pid), time.process_time(), cpu_seconds(broker_pid))
        tasks = [asyncio.create_task(uplink.run()), asyncio.create_task(live()),
                 asyncio.create_task(watch_live())]
        while outbox.acked_upto < backlog:
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - t0
        cpu1 = (cpu_seconds(central.pid), time.process_time(), cpu_seconds(broker_pid))
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        outbox.close()
        lat = sorted(latencies) or [float("nan")]
        return {"elapsed": elapsed, "rate": backlog / elapsed,
                "cpu_central": cpu1[0] - cpu0[0], "cpu_edge": cpu1[1] - cpu0[1],
                "cpu_broker": cpu1[2] - cpu0[2],
                "live_p50": statistics.median(lat), "live_p99": lat[int(len(lat) * 0.99)],
                "live_max": lat[-1], "live_n": float(len(latencies))}
    finally:
        central.terminate()
        central.wait(10)


async def main_async(args: argparse.Namespace) -> None:
    if shutil.which("mosquitto_pub") is None:
        sys.exit("needs Debian's mosquitto-clients (mosquitto_pub, mosquitto_sub)")
    work = Path(tempfile.mkdtemp(prefix="gg-bench-"))
    port = free_port()
    (work / "m.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                                 "max_queued_messages 0\nmax_inflight_messages 0\n")
    broker = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c",
                               str(work / "m.conf")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        await wait_for_port("127.0.0.1", port)
        payload = batch_payload(args.batch)
        messages = max(200, args.backlog // args.batch // 4)
        relay = mosquitto_relay(port, payload, messages) * args.batch
        receive = await aiomqtt_receive(port, payload, messages) * args.batch
        sqlite_rate = raw_sqlite(work / "raw.sqlite", 200_000, args.batch)
        e2e = await end_to_end(work, port, args.backlog, args.batch, args.live_rate,
                               args.in_flight, broker.pid)
    finally:
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    slowest = min(relay, receive, sqlite_rate)
    print(f"backlog={args.backlog} readings, batch={args.batch}, live={args.live_rate:g}/s, "
          f"payload={len(payload)} bytes/batch")
    print(f"ceiling  Mosquitto relay (mosquitto_pub → mosquitto_sub) {relay:12,.0f} readings/s")
    print(f"ceiling  aiomqtt receive                                  {receive:12,.0f} readings/s")
    print(f"ceiling  raw SQLite insert                                {sqlite_rate:12,.0f} rows/s")
    print(f"end to end (outbox → Mosquitto → central → SQLite → ack) {e2e['rate']:12,.0f} "
          f"readings/s  = {e2e['rate'] / slowest:.2f} × the slowest ceiling")
    records = args.backlog + e2e["live_n"]
    print("CPU per reading while draining: "
          + ", ".join(f"{name} {e2e['cpu_' + name] / records * 1e6:.1f} µs"
                      for name in ("central", "edge", "broker"))
          + f" → the central alone could take {records / e2e['cpu_central']:,.0f} readings/s "
          f"on one free core; load average {os.getloadavg()[0]:.1f}")
    print(f"backlog drained in {e2e['elapsed']:.1f} s: {e2e['rate'] / 1000:.0f}× real time "
          f"at 1,000 points/s (one hour of backlog in {3600 * 1000 / e2e['rate']:.0f} s)")
    print(f"live latency while draining (append → stored), n={e2e['live_n']:.0f}: "
          f"p50 {e2e['live_p50'] * 1000:.0f} ms, p99 {e2e['live_p99'] * 1000:.0f} ms, "
          f"max {e2e['live_max'] * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backlog", type=int, default=360_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--live-rate", type=float, default=1000.0)
    parser.add_argument("--in-flight", type=int, default=32)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
