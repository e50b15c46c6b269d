"""`greenguard sim district`: a district of institutions streaming into N central workers.

    lean edges (one per institution, simulators.district_fleet)
        │ signed births and batches, QoS 1          ▲ signed acks
        ▼                                           │
    Mosquitto ──$share/district──► worker 1 … worker N (`greenguard central`, one store)
                                          ▲
                          kill -9 of worker 1 at --kill-worker-at, restarted 1 s later

Every worker is a real `greenguard central` process serving the generated config directory
(one institution file each) from one store: the embedded SQLite store with one worker, or
PostgreSQL with N workers in one share group. At the end the producers stop, the run waits
until every edge holds an ack for its last seq, and a counting oracle compares, per
institution, what its edge produced with what the store holds: expected, stored, missing,
duplicated. Exit status 0 only with nothing missing and nothing duplicated.

Simulated time runs `--speed` times real time and ends at the present: records are never
stamped in the future (the central quarantines those), and a minute of run carries an hour
of meter data at the default speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from protocols.errors import WireError
from protocols.signing import generate_private_key_pem, public_key_text
from protocols.wire import parse_topic
from simulators.broker import mosquitto_binary
from simulators.district_fleet import AckVerifier, LeanEdge
from simulators.district_plan import POLL_S, SimInstitution, plan_district

SHARE_GROUP = "district"
BIN = Path(sys.executable).parent


class DistrictError(Exception):
    """The simulation could not run (a missing program, a worker that refused to start)."""


@dataclass(frozen=True)
class Options:
    institutions: int = 200
    workers: int = 1
    store: str = "sqlite"
    duration_s: float = 60.0
    speed: float = 60.0
    seed: int = 1
    kill_worker_at: float | None = None
    restart_after_s: float = 1.0
    drain_timeout_s: float = 120.0
    batch_max: int = 200
    resend_after_s: float = 5.0
    postgres_dsn: str | None = None
    postgres_password_file: Path | None = None
    workdir: Path | None = None


@dataclass
class InstitutionCount:
    institution: str
    type: str
    district: str
    expected: int
    stored: int
    missing: int
    duplicated: int
    unexpected: int
    unacked: int = 0  # records the edge still held, never acknowledged (not yet delivered)
    lost: int = 0  # acknowledged by the central but not stored: the ack contract broken


@dataclass
class DistrictResult:
    options: dict[str, Any]
    institutions: list[InstitutionCount]
    records_per_s: float  # produced records over the producing phase, real time
    drained_in_s: float | None  # after the producers stopped; None: not drained in time
    resends: int
    worker_kills: int
    acks_refused: int
    workdir: str
    totals: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.totals = {k: sum(getattr(c, k) for c in self.institutions)
                       for k in ("expected", "stored", "missing", "duplicated", "unexpected",
                                 "unacked", "lost")}

    @property
    def ok(self) -> bool:
        t = self.totals
        return (self.drained_in_s is not None and t["expected"] > 0
                and t["missing"] == t["duplicated"] == t["unexpected"] == t["lost"] == 0)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Child:
    """A child process in its own session, killed by its id only."""

    def __init__(self, name: str, argv: list[str], log: Path) -> None:
        self.name, self.argv, self.log = name, argv, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    @property
    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def tail(self, lines: int = 5) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() \
            else ""
        return "\n".join(text.strip().splitlines()[-lines:])


def _secret_file(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    return path


def write_configs(plan: Sequence[SimInstitution], directory: Path) -> Path:
    """The central's config directory: one institution file per institution."""
    directory.mkdir(parents=True, exist_ok=True)
    for inst in plan:
        (directory / f"{inst.id}.yaml").write_text(
            yaml.safe_dump(inst.config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return directory


class District:
    """The broker, the workers and the fleet of one run, in `workdir`."""

    def __init__(self, options: Options, workdir: Path) -> None:
        self.o = options
        self.dir = workdir
        self.plan = plan_district(options.institutions, seed=options.seed)
        self.broker_port = free_port()
        self.http_ports = [free_port() for _ in range(options.workers)]
        self.workers: list[Child] = []
        self.broker: Child | None = None
        self.kills = 0

    # -- processes ------------------------------------------------------------------------

    def prepare(self) -> None:
        from central.auth import generate_secret

        mosquitto = mosquitto_binary()
        if mosquitto is None:
            raise DistrictError("mosquitto is not installed: the district simulation needs "
                                "a broker with MQTT 5 shared subscriptions (Debian's "
                                "mosquitto)")
        if self.o.store == "sqlite" and self.o.workers != 1:
            raise DistrictError(f"--workers {self.o.workers} with --store sqlite: the "
                                "embedded SQLite store has one writer process; use "
                                "--store postgres for several workers")
        if self.o.store == "postgres" and not self.o.postgres_dsn:
            raise DistrictError("--store postgres needs --postgres-dsn (and the password in "
                                "--postgres-password-file or GREENGUARD_POSTGRES_PASSWORD)")
        write_configs(self.plan, self.dir / "institutions")
        _secret_file(self.dir / "auth.secret", generate_secret())
        key = generate_private_key_pem()
        fd = os.open(self.dir / "control.key", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        self.central_public_key = public_key_text(key)
        (self.dir / "mosquitto.conf").write_text(
            f"listener {self.broker_port} 127.0.0.1\nallow_anonymous true\n"
            "persistence false\nmax_queued_messages 1000000\nmax_inflight_messages 100\n",
            encoding="utf-8")
        self.broker = Child("mosquitto", [mosquitto, "-c", str(self.dir / "mosquitto.conf")],
                            self.dir / "mosquitto.log")
        for i, port in enumerate(self.http_ports):
            argv = [str(BIN / "greenguard"), "central", "--config",
                    str(self.dir / "institutions"), "--db", str(self.dir / "central.sqlite"),
                    "--share-group", SHARE_GROUP, "--client-id", f"district-{i + 1}",
                    "--mqtt-port", str(self.broker_port), "--http-port", str(port),
                    "--auth-secret-file", str(self.dir / "auth.secret"),
                    "--control-key", str(self.dir / "control.key")]
            if self.o.store == "postgres":
                assert self.o.postgres_dsn is not None
                argv += ["--store", "postgres", "--postgres-dsn", self.o.postgres_dsn]
                if self.o.postgres_password_file is not None:
                    argv += ["--postgres-password-file", str(self.o.postgres_password_file)]
            self.workers.append(Child(f"worker-{i + 1}", argv, self.dir / f"worker-{i + 1}.log"))

    async def start(self) -> None:
        assert self.broker is not None
        self.broker.start()
        await _wait_port(self.broker_port, 20)
        for w in self.workers:
            w.start()
        for w, port in zip(self.workers, self.http_ports, strict=True):
            await self._ready(w, port)

    async def _ready(self, worker: Child, port: int, within_s: float = 120) -> None:
        """Until the worker's /healthz says it is subscribed; a worker that exits names its
        reason (e.g. a backend that refuses several institutions)."""
        import httpx

        deadline = time.monotonic() + within_s
        async with httpx.AsyncClient(timeout=5) as http:
            while True:
                if worker.exited is not None:
                    raise DistrictError(f"{worker.name} exited with status {worker.exited}: "
                                        f"{worker.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    r = await http.get(f"http://127.0.0.1:{port}/healthz")
                    if r.status_code == 200 and r.json().get("mqtt_connected"):
                        return
                if time.monotonic() > deadline:
                    raise DistrictError(f"{worker.name} not ready after {within_s:g} s: "
                                        f"{worker.tail()}")
                await asyncio.sleep(0.2)

    def stop(self) -> None:
        for w in self.workers:
            w.stop()
        if self.broker is not None:
            self.broker.stop()

    # -- the run --------------------------------------------------------------------------

    async def run(self) -> DistrictResult:
        import aiomqtt

        o = self.o
        epoch = int(time.time() * 1000)
        edges = {i.edge: LeanEdge(i, epoch, POLL_S, batch_max=o.batch_max,
                                  resend_after_s=o.resend_after_s) for i in self.plan}
        verifier = AckVerifier(self.central_public_key)
        real0 = time.time()
        span = o.duration_s * o.speed
        sim0 = real0 - span  # simulated time ends at the present

        def sim_now() -> float:
            return min(sim0 + (time.time() - real0) * o.speed, time.time())

        async with aiomqtt.Client("127.0.0.1", self.broker_port, identifier="sim-district",
                                  protocol=aiomqtt.ProtocolVersion.V5,
                                  max_queued_outgoing_messages=0) as client:
            await client.subscribe("gg/v1/+/+/ack", qos=1)
            listener = asyncio.create_task(self._acks(client, edges, verifier),
                                           name="district.acks")
            try:
                produced_until = sim0
                kill_task: asyncio.Task[None] | None = None
                stop_at = real0 + o.duration_s
                for e in edges.values():
                    await client.publish(*e.birth(int(time.time() * 1000)), qos=1, retain=True)
                while time.time() < stop_at:
                    t = sim_now()
                    for e in edges.values():
                        leak = (e.institution.leak_at is not None
                                and t - sim0 >= e.institution.leak_at * span)
                        e.produce(produced_until, t, leak=leak)
                    produced_until = t
                    if (o.kill_worker_at is not None and kill_task is None
                            and time.time() - real0 >= o.kill_worker_at):
                        kill_task = asyncio.create_task(self._kill_and_restart(),
                                                        name="district.kill")
                    await self._send(client, edges)
                    await asyncio.sleep(0.5)
                produced = sum(e.next_seq - 1 for e in edges.values())
                rate = produced / max(1e-9, time.time() - real0)
                if kill_task is not None:
                    await kill_task
                drained_in = await self._drain(client, edges, o.drain_timeout_s)
            finally:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
        counts = self.oracle(epoch, {e.institution.edge: (e.next_seq - 1, e.acked)
                                     for e in edges.values()})
        return DistrictResult(
            options={k: str(v) if isinstance(v, Path) else v for k, v in asdict(o).items()
                     if k != "postgres_password_file"},
            institutions=counts, records_per_s=rate, drained_in_s=drained_in,
            resends=sum(e.resends for e in edges.values()), worker_kills=self.kills,
            acks_refused=verifier.refused, workdir=str(self.dir))

    async def _send(self, client: Any, edges: dict[str, LeanEdge]) -> None:
        now_ms = int(time.time() * 1000)
        mono = time.monotonic()
        for e in edges.values():
            if not e.born and e.acked < e.sent_upto and mono - e.last_progress > \
                    e.resend_after_s:
                # No ack since the first send: the birth may have gone to a worker that
                # died, or come before any worker subscribed; an edge re-announces itself.
                await client.publish(*e.birth(now_ms), qos=1, retain=True)
            for _ in range(2):
                batch = e.next_batch(now_ms, mono)
                if batch is None:
                    break
                await client.publish(*batch, qos=1)

    async def _acks(self, client: Any, edges: dict[str, LeanEdge],
                    verifier: AckVerifier) -> None:
        async for message in client.messages:
            name = message.topic.value
            try:
                edge = parse_topic(name).edge
            except WireError:
                continue
            lean = edges.get(edge)
            if lean is None or not isinstance(message.payload, bytes):
                continue
            ack = verifier.ack(edge, name, message.payload)
            if ack is not None:
                lean.on_ack(ack, time.monotonic())

    async def _kill_and_restart(self) -> None:
        victim = self.workers[0]
        victim.kill()  # SIGKILL: no clean-up; what was in flight to it is lost at the broker
        self.kills += 1
        await asyncio.sleep(self.o.restart_after_s)
        victim.start()  # as a supervisor (systemd Restart=always) would
        await self._ready(victim, self.http_ports[0])

    async def _drain(self, client: Any, edges: dict[str, LeanEdge], within_s: float
                     ) -> float | None:
        t0 = time.monotonic()
        while not all(e.drained for e in edges.values()):
            if time.monotonic() - t0 > within_s:
                return None
            await self._send(client, edges)
            await asyncio.sleep(0.3)
        return time.monotonic() - t0

    # -- the oracle -----------------------------------------------------------------------

    def oracle(self, epoch: int, produced: dict[str, tuple[int, int]]
               ) -> list[InstitutionCount]:
        """Per edge of this run's epoch: the seqs stored in samples, interval records and
        events against (produced, acknowledged) as the edge counted them. A seq in two
        tables, or one reading stored under two seqs, is a duplicate; a missing seq at or
        below the edge's ack is lost (the central acknowledged what it did not store)."""
        seqs: dict[str, list[int]] = {}
        for edge, seq in self._query(
                "SELECT stream_edge, seq FROM samples WHERE stream_epoch = {p} "
                "UNION ALL SELECT edge, seq FROM intervals WHERE stream_epoch = {p} "
                "UNION ALL SELECT stream_edge, seq FROM events WHERE stream_epoch = {p}",
                3, epoch):
            seqs.setdefault(str(edge), []).append(int(seq))
        readings = self._query(
            "SELECT stream_edge, count(*) - count(DISTINCT device || '/' || point || '/' || "
            "CAST(ts AS TEXT)) FROM samples WHERE stream_epoch = {p} GROUP BY stream_edge",
            1, epoch)
        twice = {str(edge): int(d) for edge, d in readings}
        out = []
        for inst in self.plan:
            expected, acked = produced[inst.edge]
            rows = seqs.get(inst.edge, [])
            stored = set(rows)
            valid = {q for q in stored if 1 <= q <= expected}
            out.append(InstitutionCount(
                institution=inst.id, type=inst.type, district=inst.district,
                expected=expected, stored=len(valid), missing=expected - len(valid),
                duplicated=(len(rows) - len(stored)) + twice.get(inst.edge, 0),
                unexpected=len(stored - valid), unacked=expected - acked,
                lost=acked - sum(1 for q in valid if q <= acked)))
        return out

    def _query(self, sql: str, params: int, value: int) -> list[tuple[Any, ...]]:
        if self.o.store == "postgres":
            import psycopg

            assert self.o.postgres_dsn is not None
            password = (self.o.postgres_password_file.read_text(encoding="utf-8").strip()
                        if self.o.postgres_password_file is not None
                        else os.environ.get("GREENGUARD_POSTGRES_PASSWORD"))
            with psycopg.connect(self.o.postgres_dsn, password=password,
                                 autocommit=True) as conn:
                return [tuple(r) for r in conn.execute(sql.format(p="%s").encode(),
                                                       (value,) * params).fetchall()]
        import sqlite3

        db = sqlite3.connect(f"file:{self.dir / 'central.sqlite'}?mode=ro", uri=True)
        try:
            return [tuple(r) for r in db.execute(sql.format(p="?"), (value,) * params)]
        finally:
            db.close()


async def _wait_port(port: int, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise DistrictError(f"nothing listening on 127.0.0.1:{port} after "
                                    f"{within_s:g} s") from None
            await asyncio.sleep(0.05)
        else:
            writer.close()
            await writer.wait_closed()
            return


@contextlib.contextmanager
def _workdir(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="greenguard-district-") as tmp:
        yield Path(tmp)


async def run_district(options: Options) -> DistrictResult:
    """One run (see the module docstring); `DistrictError` if it cannot start."""
    with _workdir(options.workdir) as workdir:
        district = District(options, workdir)
        district.prepare()
        try:
            await district.start()
            return await district.run()
        finally:
            district.stop()


def summary(result: DistrictResult, *, per_institution: bool) -> str:
    t = result.totals
    lines = [
        f"district: {len(result.institutions)} institutions, {result.options['workers']} "
        f"worker(s) on {result.options['store']}, {result.worker_kills} worker kill(s)",
        f"records: expected {t['expected']}, stored {t['stored']}, missing {t['missing']}, "
        f"duplicated {t['duplicated']}, unexpected {t['unexpected']}; lost after an ack "
        f"{t['lost']}, still unacknowledged at the edges {t['unacked']}",
        f"produced {result.records_per_s:,.0f} records/s; drained in "
        + ("—" if result.drained_in_s is None else f"{result.drained_in_s:.1f} s")
        + f"; {result.resends} resend(s), {result.acks_refused} ack(s) refused"]
    bad = [c for c in result.institutions
           if c.missing or c.duplicated or c.unexpected or c.lost]
    shown = result.institutions if per_institution else bad
    if shown:
        lines.append(f"{'institution':<18} {'type':<7} {'expected':>9} {'stored':>9} "
                     f"{'missing':>8} {'dup':>5} {'unacked':>8} {'lost':>5}")
        lines += [f"{c.institution:<18} {c.type:<7} {c.expected:>9} {c.stored:>9} "
                  f"{c.missing:>8} {c.duplicated:>5} {c.unacked:>8} {c.lost:>5}"
                  for c in shown]
    lines.append("OK: nothing missing, nothing duplicated" if result.ok else "FAILED")
    return "\n".join(lines)


# -- the command ------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=("district",),
                        help="simulate a district: many institutions, N central workers")
    parser.add_argument("--institutions", type=int, default=200, metavar="N",
                        help="institutions, each with its own edge (default 200)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="central ingest workers in one share group (default 1 on "
                             "sqlite, 2 on postgres)")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite",
                        help="the workers' store (default sqlite: one worker)")
    parser.add_argument("--postgres-dsn", metavar="DSN",
                        help="libpq connection string without password, for --store postgres")
    parser.add_argument("--postgres-password-file", type=Path, metavar="PATH",
                        help="file holding the PostgreSQL password (or env "
                             "GREENGUARD_POSTGRES_PASSWORD)")
    parser.add_argument("--duration", type=float, default=60.0, metavar="SECONDS",
                        help="how long the edges produce, real seconds (default 60)")
    parser.add_argument("--speed", type=float, default=60.0, metavar="X",
                        help="simulated seconds per real second (default 60: meters polled "
                             "every simulated minute, an hour of data per minute of run)")
    parser.add_argument("--seed", type=int, default=1, help="the district plan's seed")
    parser.add_argument("--kill-worker-at", type=float, metavar="SECONDS",
                        help="kill -9 worker 1 this many seconds into the run; restarted "
                             "1 s later, as a supervisor would")
    parser.add_argument("--resend-after", type=float, default=5.0, metavar="SECONDS",
                        help="an edge resends what is unacknowledged after this long without "
                             "an ack advancing (default 5; the edge agent's default is 15)")
    parser.add_argument("--drain-timeout", type=float, default=120.0, metavar="SECONDS",
                        help="how long to wait for every edge's last ack (default 120)")
    parser.add_argument("--dir", type=Path, metavar="PATH",
                        help="keep configs, logs and the SQLite store here (default: a "
                             "temporary directory, removed at the end)")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also write the result, per institution, as JSON")
    parser.add_argument("--per-institution", action="store_true",
                        help="print every institution's counts, not only failing ones")


def run(args: argparse.Namespace) -> int:
    workers = args.workers if args.workers is not None else (
        2 if args.store == "postgres" else 1)
    problems = [(flag, value) for flag, value, ok in (
        ("--institutions", args.institutions, args.institutions >= 1),
        ("--workers", workers, workers >= 1),
        ("--duration", args.duration, args.duration > 0),
        ("--speed", args.speed, args.speed > 0),
        ("--resend-after", args.resend_after, args.resend_after > 0),
        ("--kill-worker-at", args.kill_worker_at,
         args.kill_worker_at is None or 0 <= args.kill_worker_at < args.duration)) if not ok]
    if problems:
        for flag, value in problems:
            print(f"configuration error: {flag}: {value!r} is out of range", file=sys.stderr)
        return 2
    options = Options(institutions=args.institutions, workers=workers, store=args.store,
                      duration_s=args.duration, speed=args.speed, seed=args.seed,
                      kill_worker_at=args.kill_worker_at, drain_timeout_s=args.drain_timeout,
                      resend_after_s=args.resend_after,
                      postgres_dsn=args.postgres_dsn,
                      postgres_password_file=args.postgres_password_file, workdir=args.dir)
    try:
        result = asyncio.run(run_district(options))
    except DistrictError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary(result, per_institution=args.per_institution))
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(result), ensure_ascii=False, indent=1),
                             encoding="utf-8")
    return 0 if result.ok else 1

