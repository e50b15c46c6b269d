"""Contract suite of the `TelemetryStore` port, run against every adapter.

- `sqlite`: `SqliteTelemetry` over a real SQLite file; read back from its tables.
- `influx`: `InfluxTelemetry` writing real HTTP to Debian's `victoria-metrics`, which accepts
  InfluxDB's `/api/v2/write`; read back through VictoriaMetrics' export API
  (`/api/v1/export`), which names a series `<measurement>_<field>` with the tags as labels
  and keeps string fields as 0 (their presence, not their text).

Under CI=true a missing victoria-metrics fails the influx cases instead of skipping them.
The port's read half (`series`, `latest`) runs here for SQLite; the InfluxDB adapter reads
with Flux, which VictoriaMetrics does not speak, so its queries are tested against a
loopback server in tests/unit/central/test_influx.py.

Fixtures live in this file on purpose (tests/contracts/ is shared with other suites).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import yaml

from central.config import CentralSettings, TelemetrySettings
from central.errors import StoreError
from central.influx import InfluxTelemetry
from central.ingest import IngestStats
from central.institution import MeterKey
from central.service import run_central
from central.store import Store
from central.telemetry import (
    DeviceTags,
    PlaceTags,
    SeriesPoint,
    SqliteTelemetry,
    TelemetryBatch,
    TelemetryStore,
)
from protocols.clock import SystemClock
from protocols.wire import (
    Ack,
    Batch,
    Birth,
    Channel,
    Event,
    IntervalFlag,
    IntervalRecord,
    Record,
    Sample,
    Severity,
    Signed,
    StreamId,
    decode,
    encode,
    topic,
)
from tests import system
from tests.conftest import Broker, free_port
from tests.unit.central.central_helpers import TEST_SECRET

pytestmark = pytest.mark.integration

T0 = 1_767_225_600_123  # 2026-01-01T00:00:00.123Z: odd milliseconds on purpose
STREAM = StreamId("edge-1", 7)
VM_BINARY = "/usr/bin/victoria-metrics"

Row = tuple[Any, ...]


@dataclass
class Backend:
    """An adapter plus a way to see, independently of it, what it stored."""

    name: str
    store: TelemetryStore
    numbers: Callable[[str, str], list[tuple[int, float]]]  # (device, point) -> [(ts, value)]
    texts: Callable[[str, str], list[int]]  # timestamps of text samples
    intervals: Callable[[str, str], list[tuple[int, float, int, frozenset[str]]]]
    events: Callable[[], list[tuple[int, str, str, str | None, int]]]
    stop: Callable[[], None]  # make the next write fail


# -- SQLite ------------------------------------------------------------------------------


def _sqlite_backend(tmp_path: Path) -> Iterator[Backend]:
    store = Store(tmp_path / "central.sqlite")
    adapter = SqliteTelemetry(store)

    def samples(device: str, point: str) -> list[Row]:
        return [r for r in store.rows("samples") if r[4] == device and r[5] == point]

    def numbers(device: str, point: str) -> list[tuple[int, float]]:
        return sorted((int(r[3]), float(r[6])) for r in samples(device, point) if r[7] != "s")

    def texts(device: str, point: str) -> list[int]:
        return sorted(int(r[3]) for r in samples(device, point) if r[7] == "s")

    def intervals(device: str, point: str) -> list[tuple[int, float, int, frozenset[str]]]:
        return sorted((int(r[3]), float(r[5]), int(r[4]),
                       frozenset(f for f in str(r[7]).split(",") if f))
                      for r in store.rows("intervals") if r[1] == device and r[2] == point)

    def events() -> list[tuple[int, str, str, str | None, int]]:
        return sorted((int(r[3]), r[4], r[5], r[6], int(r[2])) for r in store.rows("events"))

    try:
        yield Backend("sqlite", adapter, numbers, texts, intervals, events, store.close)
    finally:
        store.close()


# -- VictoriaMetrics -----------------------------------------------------------------------


@dataclass
class VictoriaMetrics:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def export(self, selector: str) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=30):
            pass
        query = urllib.parse.urlencode({"match[]": selector})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=30) as resp:
            body = resp.read().decode()
        return [json.loads(line) for line in body.splitlines() if line.strip()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _vm_binary() -> str:
    return system.require("victoria-metrics")


def _start_vm(tmp_path: Path, port: int | None = None) -> VictoriaMetrics:
    port = port if port is not None else free_port()
    proc = subprocess.Popen(
        [_vm_binary(), f"-storageDataPath={tmp_path / 'vm'}",
         f"-httpListenAddr=127.0.0.1:{port}", "-retentionPeriod=100y",
         # Samples of one series with the same timestamp are one sample, as in InfluxDB.
         "-dedup.minScrapeInterval=1ms", "-loggerLevel=ERROR"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    vm = VictoriaMetrics(port, proc)
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{vm.url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return vm
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            vm.stop()
            raise RuntimeError(f"victoria-metrics did not start on port {port}")
        time.sleep(0.1)


PLACES = DeviceTags(
    by_point={MeterKey("edge-1", "meter-a", "power_w"):
              PlaceTags("teaching", "东区 1,2=楼 west", "01A00")},
    by_device={("edge-1", "ac-1"): PlaceTags("teaching", "3楼 room 301")})


def _influx_backend(tmp_path: Path) -> Iterator[Backend]:
    vm = _start_vm(tmp_path)
    settings = TelemetrySettings(url=vm.url, org="greenguard", bucket="telemetry",
                                 batch_lines=2, attempts=2, retry_initial_s=0.05,
                                 timeout_s=5, cooldown_s=0)
    adapter = InfluxTelemetry(settings, "test-token", places=PLACES)

    def series(name: str, **labels: str) -> list[dict[str, Any]]:
        matchers = [f'__name__="{name}"', *(f'{k}="{v}"' for k, v in labels.items())]
        return vm.export("{" + ",".join(matchers) + "}")

    def points(name: str, **labels: str) -> list[tuple[int, float]]:
        return sorted((int(ts), float(v)) for s in series(name, **labels)
                      for ts, v in zip(s["timestamps"], s["values"], strict=True))

    def numbers(device: str, point: str) -> list[tuple[int, float]]:
        return points("sample_value", device=device, point=point)

    def texts(device: str, point: str) -> list[int]:
        return [ts for ts, _ in points("sample_text", device=device, point=point)]

    def intervals(device: str, point: str) -> list[tuple[int, float, int, frozenset[str]]]:
        delta = dict(points("interval_delta", device=device, point=point))
        seconds = dict(points("interval_seconds", device=device, point=point))
        flags = {f: dict(points(f"interval_{f}", device=device, point=point))
                 for f in ("estimated", "gap", "reset")}
        return sorted((ts, q, int(seconds[ts]),
                       frozenset(f for f in flags if flags[f][ts] == 1))
                      for ts, q in delta.items())

    def events() -> list[tuple[int, str, str, str | None, int]]:
        return sorted((int(ts), s["metric"]["name"], s["metric"]["severity"],
                       s["metric"].get("device"), int(v))
                      for s in series("event_seq")
                      for ts, v in zip(s["timestamps"], s["values"], strict=True))

    try:
        yield Backend("influx", adapter, numbers, texts, intervals, events, vm.stop)
    finally:
        adapter.close()
        vm.stop()


@pytest.fixture(params=["sqlite", "influx"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    factory = _sqlite_backend if request.param == "sqlite" else _influx_backend
    yield from factory(tmp_path)


def _batch(records: list[Record], *, after: int = 0, site: str = "school-1") -> TelemetryBatch:
    upto = max(r.seq for r in records)
    return TelemetryBatch(site, STREAM, after, upto, tuple(records))


def _sample(seq: int, ts: int, value: float | int | bool | str, *, device: str = "meter-a",
            point: str = "power_w", unit: str = "W") -> Sample:
    return Sample(seq=seq, ts=ts, device=device, point=point, value=value, unit=unit)


# -- the contract ------------------------------------------------------------------------


def test_numeric_samples_keep_values_and_millisecond_timestamps(backend: Backend) -> None:
    backend.store.write(_batch([
        _sample(1, T0, 1520.5), _sample(2, T0 + 1, 7), _sample(3, T0 + 60_001, -0.25),
        _sample(4, T0 + 2, True, device="ac-1", point="on", unit=""),
        _sample(5, T0 + 3, False, device="ac-1", point="on", unit=""),
    ]))
    assert backend.numbers("meter-a", "power_w") == [(T0, 1520.5), (T0 + 1, 7.0),
                                                    (T0 + 60_001, -0.25)]
    assert backend.numbers("ac-1", "on") == [(T0 + 2, 1.0), (T0 + 3, 0.0)]


def test_text_samples_are_stored_apart_from_numbers(backend: Backend) -> None:
    backend.store.write(_batch([_sample(1, T0, "cool", device="ac-1", point="mode", unit=""),
                                _sample(2, T0 + 5, 24.5, device="ac-1", point="setpoint_c",
                                        unit="°C")]))
    assert backend.texts("ac-1", "mode") == [T0]
    assert backend.numbers("ac-1", "mode") == []
    assert backend.numbers("ac-1", "setpoint_c") == [(T0 + 5, 24.5)]


def test_rewriting_a_batch_is_idempotent(backend: Backend) -> None:
    batch = _batch([_sample(1, T0, 10.0), _sample(2, T0 + 1000, 20.0),
                    IntervalRecord(seq=3, device="meter-a", point="energy_import_kwh",
                                   start=T0, duration_s=900, quantity=1.25, unit="kWh"),
                    Event(seq=4, ts=T0 + 5, name="alarm.leak", severity=Severity.WARNING,
                          device="water-a", data={"state": "raised"})])
    backend.store.write(batch)
    first = (backend.numbers("meter-a", "power_w"),
             backend.intervals("meter-a", "energy_import_kwh"), backend.events())
    backend.store.write(batch)
    backend.store.write(batch)
    again = (backend.numbers("meter-a", "power_w"),
             backend.intervals("meter-a", "energy_import_kwh"), backend.events())
    assert again == first
    assert first[0] == [(T0, 10.0), (T0 + 1000, 20.0)]


def test_intervals_keep_quantity_duration_and_flags(backend: Backend) -> None:
    backend.store.write(_batch([
        IntervalRecord(seq=1, device="meter-a", point="energy_import_kwh", start=T0,
                       duration_s=900, quantity=2.5, unit="kWh"),
        IntervalRecord(seq=2, device="meter-a", point="energy_import_kwh", start=T0 + 900_000,
                       duration_s=1800, quantity=0.0, unit="kWh",
                       flags=frozenset({IntervalFlag.GAP, IntervalFlag.ESTIMATED})),
        IntervalRecord(seq=3, device="meter-a", point="energy_import_kwh",
                       start=T0 + 2_700_000, duration_s=900, quantity=0.125, unit="kWh",
                       flags=frozenset({IntervalFlag.RESET})),
    ]))
    assert backend.intervals("meter-a", "energy_import_kwh") == [
        (T0, 2.5, 900, frozenset()),
        (T0 + 900_000, 0.0, 1800, frozenset({"gap", "estimated"})),
        (T0 + 2_700_000, 0.125, 900, frozenset({"reset"})),
    ]


def test_events_keep_name_severity_device_and_seq(backend: Backend) -> None:
    backend.store.write(_batch([
        Event(seq=11, ts=T0, name="alarm.bin_full", severity=Severity.WARNING,
              device="bin-3", data={"state": "raised", "fill_pct": 92, "category": "其他垃圾",
                                    "hazardous": False, "rule": "bin_full"}),
        Event(seq=12, ts=T0 + 1, name="edge.started", severity=Severity.INFO),
    ]))
    assert backend.events() == [(T0, "alarm.bin_full", "warning", "bin-3", 11),
                                (T0 + 1, "edge.started", "info", None, 12)]


def test_batches_larger_than_one_request_arrive_whole(backend: Backend) -> None:
    # The influx backend sends 2 lines per request: 7 samples make 4 requests.
    backend.store.write(_batch([_sample(i, T0 + i * 1000, float(i)) for i in range(1, 8)]))
    assert backend.numbers("meter-a", "power_w") == [(T0 + i * 1000, float(i))
                                                    for i in range(1, 8)]


def test_a_failed_write_raises_store_error(backend: Backend) -> None:
    backend.store.write(_batch([_sample(1, T0, 1.0)]))
    backend.stop()
    with pytest.raises(StoreError):
        backend.store.write(_batch([_sample(2, T0 + 1, 2.0)], after=1))
    with pytest.raises(StoreError):
        backend.store.ping()


# -- InfluxDB schema: tags (the SQL store keeps places in the institution config instead) ----


@pytest.fixture
def vm(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    server = _start_vm(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def test_influx_lines_carry_the_schema_tags(vm: VictoriaMetrics) -> None:
    settings = TelemetrySettings(url=vm.url, org="o", bucket="b")
    adapter = InfluxTelemetry(settings, "t", places=PLACES)
    try:
        adapter.ping()
        adapter.write(_batch([
            _sample(1, T0, 1500.0),
            _sample(2, T0, 26.0, device="ac-1", point="setpoint_c", unit="°C"),
            IntervalRecord(seq=3, device="meter-a", point="power_w", start=T0,
                           duration_s=900, quantity=0.5, unit="W"),
            Event(seq=4, ts=T0, name="alarm.lights_on", severity=Severity.WARNING,
                  device="ac-1", data={"state": "raised", "rule": "lights_after_hours"}),
        ], site="示范 中学,1=a"))
    finally:
        adapter.close()
    labels = {s["metric"]["__name__"]: s["metric"]
              for s in vm.export('{__name__=~"sample_value|interval_delta|event_seq"}')
              if s["metric"].get("device") != "ac-1" or s["metric"]["__name__"] != "sample_value"}
    assert labels["sample_value"] == {
        "__name__": "sample_value", "site": "示范 中学,1=a", "edge": "edge-1",
        "device": "meter-a", "point": "power_w", "unit": "W", "building": "teaching",
        "zone": "东区 1,2=楼 west", "item": "01A00"}
    assert labels["interval_delta"] == {**labels["sample_value"], "__name__": "interval_delta"}
    assert labels["event_seq"] == {
        "__name__": "event_seq", "site": "示范 中学,1=a", "edge": "edge-1", "device": "ac-1",
        "name": "alarm.lights_on", "severity": "warning"}
    (ac,) = vm.export('{__name__="sample_value",device="ac-1"}')
    assert ac["metric"]["building"] == "teaching"
    assert ac["metric"]["zone"] == "3楼 room 301"
    assert "item" not in ac["metric"]
    assert ac["timestamps"] == [T0]
    assert ac["values"] == [26.0]


def test_series_and_latest_on_sqlite(tmp_path: Path) -> None:
    """The read half of the port on the embedded store (see the module docstring)."""
    store = SqliteTelemetry(Store(tmp_path / "c.sqlite"))
    try:
        store.write(_batch([_sample(1, T0 - 123, 10.0), _sample(2, T0 + 20_000, 20.0),
                            _sample(3, T0 + 70_000, 40.0), _sample(4, T0 + 80_000, True),
                            _sample(5, T0 + 90_000, "x", point="mode", unit="")]))
        minute = 60_000
        start = T0 - 123
        assert store.series(MeterKey("edge-1", "meter-a", "power_w"), start,
                            start + 3 * minute, minute) == [
            SeriesPoint(start, 15.0), SeriesPoint(start + minute, 20.5)]
        assert store.series(MeterKey("edge-1", "meter-a", "power_w"), start, start, minute) == []
        latest = store.latest()
        assert latest[MeterKey("edge-1", "meter-a", "power_w")].value is True
        assert latest[MeterKey("edge-1", "meter-a", "mode")].value == "x"
        assert set(store.latest(["mode"])) == {MeterKey("edge-1", "meter-a", "mode")}
        with pytest.raises(ValueError, match="step_ms"):
            store.series(MeterKey("edge-1", "meter-a", "power_w"), start, start + 1, 0)
    finally:
        store.close()


# -- wired into the central: MQTT ingest → SQL store + InfluxDB → ack ------------------------


@pytest.mark.slow
async def test_central_never_acks_past_a_batch_influx_refused(
        tmp_path: Path, mosquitto: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    vm = _start_vm(tmp_path)
    config = tmp_path / "institution.yaml"
    config.write_text(yaml.safe_dump({
        "institution": {"id": "demo", "name": "示范中学", "type": "school"},
        "buildings": [{"id": "A", "name": "教学楼", "floor_area_m2": 12000}],
        "headcount": {"staff": 120},
        "meters": [{"edge": "edge-1", "device": "m1", "building": "A",
                    "energy": "electricity", "role": "main", "zone": "东区 1"}],
    }, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("GG_TEST_INFLUX_TOKEN", "write-token")
    settings = CentralSettings(
        institution_config=config, database=tmp_path / "central.sqlite",
        mqtt_host=mosquitto.host, mqtt_port=mosquitto.port, mqtt_client_id="central-influx",
        http_port=free_port(), auth_secret=TEST_SECRET,
        telemetry=TelemetrySettings(url=vm.url, org="o", bucket="b", attempts=1,
                                    timeout_s=2, cooldown_s=0,
                                    token_env="GG_TEST_INFLUX_TOKEN"))
    stream = StreamId("edge-1", 1_767_225_600_000)

    def batch(after: int, *seqs: int) -> bytes:
        return encode(Batch(stream, after, T0, True, tuple(
            Sample(s, T0 + s, "m1", "power_w", float(s), "W") for s in seqs)))

    stats = IngestStats()
    ready = asyncio.Event()
    task = asyncio.create_task(run_central(settings, SystemClock(), ready=ready, stats=stats))
    try:
        async with asyncio.timeout(30):
            await ready.wait()
        async with aiomqtt.Client(mosquitto.host, mosquitto.port,
                                  identifier="fake-edge") as client:
            await client.subscribe(topic("school", "edge-1", Channel.ACK), qos=1)
            telemetry = topic("school", "edge-1", Channel.TELEMETRY)
            messages = aiter(client.messages)

            async def next_ack(within_s: float) -> int:
                async with asyncio.timeout(within_s):
                    message = await anext(messages)
                envelope = decode(message.payload)  # type: ignore[arg-type]
                assert isinstance(envelope, Signed)  # the central signs every ack
                ack = decode(envelope.msg.encode())
                assert isinstance(ack, Ack)
                return ack.upto

            # Like a real edge, announce the epoch with a birth first (admission.py).
            await client.publish(topic("school", "edge-1", Channel.STATE),
                                 encode(Birth(stream, T0, True, "test")), qos=1)
            await client.publish(telemetry, batch(0, 1, 2), qos=1)
            assert await next_ack(30) == 2

            vm.stop()  # InfluxDB goes away: the next batch must not be acknowledged
            await client.publish(telemetry, batch(2, 3), qos=1)
            with pytest.raises(TimeoutError):
                await next_ack(5)
            assert stats.store_errors == 1

            vm = _start_vm(tmp_path, port=vm.port)
            # Live data goes on before the edge resends: the cumulative ack must not cover
            # seq 3, which InfluxDB never got (the SQL watermark did not move past 2).
            await client.publish(telemetry, batch(3, 4), qos=1)
            assert await next_ack(30) == 2
            await client.publish(telemetry, batch(2, 3), qos=1)  # the edge resends
            assert await next_ack(30) == 4
        (series,) = vm.export('{__name__="sample_value"}')
        assert series["metric"] == {
            "__name__": "sample_value", "site": "school", "edge": "edge-1", "device": "m1",
            "point": "power_w", "unit": "W", "building": "A", "zone": "东区 1"}
        assert series["timestamps"] == [T0 + 1, T0 + 2, T0 + 3, T0 + 4]
        assert series["values"] == [1.0, 2.0, 3.0, 4.0]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        vm.stop()
