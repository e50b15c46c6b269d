"""InfluxTelemetry against a loopback HTTP server that plays InfluxDB: bounded retries,
back-pressure, refused writes, token handling, and the Flux reads (answered with annotated
CSV, as InfluxDB 2 answers `/api/v2/query`). The write path against a real server is in
tests/contracts/test_telemetry_store.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from central.config import TelemetrySettings, load_settings
from central.errors import StoreError
from central.influx import InfluxTelemetry, flux_string, influx_token, series_flux
from central.ingest import Ingestor, IngestStats
from central.institution import ConfigError, MeterKey
from central.store import Store
from central.telemetry import SeriesPoint, TelemetryBatch
from protocols.clock import VirtualClock
from protocols.wire import Sample, StreamId, encode
from tests.httpstub import serving
from tests.unit.central.central_helpers import batch, interval, sample


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeInflux:
    """Answers each request with the next (status, content type, body) of `script`; the
    last one repeats."""

    script: list[tuple[int, str, bytes]] = field(default_factory=lambda: [(204, "", b"")])
    requests: list[Request] = field(default_factory=list)
    port: int = 0


@pytest.fixture
def fake() -> Iterator[FakeInflux]:
    state = FakeInflux()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length) if length else b""
            state.requests.append(Request(self.command, self.path, dict(self.headers), body))
            status, ctype, payload = state.script[min(len(state.requests),
                                                      len(state.script)) - 1]
            self.send_response(status)
            if ctype:
                self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_HEAD = _answer  # noqa: N815 - http.server's naming

        def log_message(self, format: str, *args: Any) -> None:
            return

    with serving(Handler, "fake-influx") as state.port:
        yield state


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _adapter(fake: FakeInflux, clock: FakeTime, **overrides: Any) -> InfluxTelemetry:
    settings = TelemetrySettings(**{"url": f"http://127.0.0.1:{fake.port}", "org": "school",
                                    "bucket": "tele", "attempts": 3, "retry_initial_s": 0.5,
                                    "cooldown_s": 10, **overrides})
    return InfluxTelemetry(settings, "s3cret", monotonic=clock.monotonic, sleep=clock.sleep)


BATCH = TelemetryBatch("site-1", StreamId("edge-1", 1), 0, 3, tuple(
    Sample(seq=i, ts=1_767_225_600_000 + i, device="m", point="power_w", value=float(i),
           unit="W") for i in (1, 2, 3)))


def test_write_posts_line_protocol_with_token_org_bucket_and_ms_precision(
        fake: FakeInflux) -> None:
    adapter = _adapter(fake, FakeTime(), batch_lines=2)
    try:
        adapter.write(BATCH)
    finally:
        adapter.close()
    assert [(r.method, r.path.split("?")[0]) for r in fake.requests] == [
        ("POST", "/api/v2/write")] * 2
    query = fake.requests[0].path.split("?")[1]
    assert sorted(query.split("&")) == ["bucket=tele", "org=school", "precision=ms"]
    assert fake.requests[0].headers["Authorization"] == "Token s3cret"
    lines = b"\n".join(r.body for r in fake.requests).decode().splitlines()
    assert lines == [f"sample,device=m,edge=edge-1,point=power_w,site=site-1,unit=W "
                     f"value={i}.0 {1_767_225_600_000 + i}" for i in (1, 2, 3)]
    assert adapter.lines_written == 3


def test_server_errors_are_retried_with_backoff_then_succeed(fake: FakeInflux) -> None:
    fake.script = [(503, "", b"busy"), (503, "", b"busy"), (204, "", b"")]
    clock = FakeTime()
    adapter = _adapter(fake, clock)
    try:
        adapter.write(BATCH)
    finally:
        adapter.close()
    assert len(fake.requests) == 3
    assert clock.sleeps == [0.5, 1.0]


def test_retries_are_bounded_and_the_failure_raises_then_cools_down(fake: FakeInflux) -> None:
    fake.script = [(503, "", b"overloaded")]
    clock = FakeTime()
    adapter = _adapter(fake, clock)
    try:
        with pytest.raises(StoreError, match=r"HTTP 503.*after 3 attempt"):
            adapter.write(BATCH)
        assert len(fake.requests) == 3
        # Back-pressure: within the cool-down no request is made, the write still fails.
        with pytest.raises(StoreError, match="not retried for another"):
            adapter.write(BATCH)
        assert len(fake.requests) == 3
        fake.script = [(204, "", b"")]
        clock.now += 10
        adapter.write(BATCH)
        assert len(fake.requests) == 4
        assert adapter.write_errors == 1
    finally:
        adapter.close()


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_client_errors_are_not_retried(fake: FakeInflux, status: int) -> None:
    fake.script = [(status, "application/json", json.dumps({"message": "nope"}).encode())]
    adapter = _adapter(fake, FakeTime())
    try:
        with pytest.raises(StoreError, match=f"HTTP {status}"):
            adapter.write(BATCH)
    finally:
        adapter.close()
    assert len(fake.requests) == 1


def test_connection_refused_raises_store_error() -> None:
    settings = TelemetrySettings(url="http://127.0.0.1:9", org="o", bucket="b", attempts=2,
                                 retry_initial_s=0)
    adapter = InfluxTelemetry(settings, "t")
    try:
        with pytest.raises(StoreError, match="after 2 attempt"):
            adapter.write(BATCH)
        with pytest.raises(StoreError):
            adapter.ping()
    finally:
        adapter.close()


def test_an_empty_batch_makes_no_request(fake: FakeInflux) -> None:
    adapter = _adapter(fake, FakeTime())
    try:
        adapter.write(TelemetryBatch("s", StreamId("e", 1), 0, 1, ()))
    finally:
        adapter.close()
    assert fake.requests == []


_SERIES_CSV = b"""#datatype,string,long,dateTime:RFC3339,double
#group,false,false,false,false
#default,_result,,,
,result,table,_time,_value
,,0,2026-01-01T00:00:00Z,15.5
,,0,2026-01-01T00:01:00.250Z,20

"""

_LATEST_CSV = (
    "#datatype,string,long,dateTime:RFC3339,string,string,string,string,string,double\n"
    "#group,false,false,false,true,true,true,true,false,false\n"
    "#default,_result,,,,,,,,\n"
    ",result,table,_time,edge,device,point,_field,unit,_value\n"
    ",,0,2026-01-01T00:00:00.123Z,edge-1,m,power_w,value,W,1500\n"
    ",,1,2026-01-01T00:00:01Z,edge-1,ac,setpoint_c,value,°C,26\n"
    "\n"
    "#datatype,string,long,dateTime:RFC3339,string,string,string,string,string,string\n"
    "#group,false,false,false,true,true,true,true,false,false\n"
    "#default,_result,,,,,,,,\n"
    ",result,table,_time,edge,device,point,_field,unit,_value\n"
    ",,2,2026-01-01T00:00:02Z,edge-1,ac,mode,text,,cool\n\n").encode()


def test_series_reads_flux_results(fake: FakeInflux) -> None:
    fake.script = [(200, "text/csv; charset=utf-8", _SERIES_CSV)]
    adapter = _adapter(fake, FakeTime())
    key = MeterKey("edge-1", "m", "power_w")
    try:
        got = adapter.series(key, 1_767_225_600_000, 1_767_225_780_000, 60_000)
    finally:
        adapter.close()
    assert got == [SeriesPoint(1_767_225_600_000, 15.5), SeriesPoint(1_767_225_660_250, 20.0)]
    (request,) = fake.requests
    assert request.path.startswith("/api/v2/query")
    sent = json.loads(request.body)["query"]
    assert sent == series_flux("tele", key, 1_767_225_600_000, 1_767_225_780_000, 60_000)
    assert "range(start: 2026-01-01T00:00:00.000Z, stop: 2026-01-01T00:03:00.000Z)" in sent
    assert "aggregateWindow(every: 60000ms, fn: mean" in sent


def test_latest_reads_numbers_and_text(fake: FakeInflux) -> None:
    fake.script = [(200, "text/csv; charset=utf-8", _LATEST_CSV)]
    adapter = _adapter(fake, FakeTime())
    try:
        got = adapter.latest(["power_w", "setpoint_c", "mode"])
    finally:
        adapter.close()
    assert {k: (v.ts, v.value, v.unit) for k, v in got.items()} == {
        MeterKey("edge-1", "m", "power_w"): (1_767_225_600_123, 1500.0, "W"),
        MeterKey("edge-1", "ac", "setpoint_c"): (1_767_225_601_000, 26.0, "°C"),
        MeterKey("edge-1", "ac", "mode"): (1_767_225_602_000, "cool", ""),
    }
    sent = json.loads(fake.requests[0].body)["query"]
    assert 'r.point == "power_w" or r.point == "setpoint_c" or r.point == "mode"' in sent


def test_a_failed_query_raises_store_error(fake: FakeInflux) -> None:
    fake.script = [(500, "application/json", b'{"message": "boom"}')]
    adapter = _adapter(fake, FakeTime())
    try:
        with pytest.raises(StoreError, match="HTTP 500"):
            adapter.series(MeterKey("e", "d", "p"), 0, 1000, 10)
    finally:
        adapter.close()


def test_flux_strings_escape_quotes_backslashes_and_interpolation() -> None:
    assert flux_string('a"b\\c${x}') == '"a\\"b\\\\c\\${x}"'


def test_token_comes_from_the_environment_only() -> None:
    settings = TelemetrySettings(url="http://influx:8086", org="o", bucket="b")
    assert influx_token(None, {}) is None
    assert influx_token(settings, {"GREENGUARD_INFLUX_TOKEN": " abc "}) == "abc"
    with pytest.raises(ConfigError, match="GREENGUARD_INFLUX_TOKEN"):
        influx_token(settings, {})
    assert "token" not in TelemetrySettings.model_fields


def test_settings_take_the_telemetry_section_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENGUARD_TELEMETRY__URL", "https://influx.example:8086")
    monkeypatch.setenv("GREENGUARD_TELEMETRY__ORG", "district")
    monkeypatch.setenv("GREENGUARD_TELEMETRY__BUCKET", "greenguard")
    settings = load_settings(institution_config="x.yaml")
    assert settings.telemetry == TelemetrySettings(url="https://influx.example:8086",
                                                   org="district", bucket="greenguard")
    monkeypatch.setenv("GREENGUARD_TELEMETRY__URL", "influx:8086")
    with pytest.raises(ConfigError, match=r"telemetry\.url"):
        load_settings(institution_config="x.yaml")


def test_ingest_acks_only_after_the_telemetry_store_took_the_batch(
        fake: FakeInflux, tmp_path: Path) -> None:
    fake.script = [(503, "", b"down")]
    clock = FakeTime()
    adapter = _adapter(fake, clock, attempts=1, cooldown_s=0)
    store = Store(tmp_path / "central.sqlite")
    ingestor = Ingestor(store, VirtualClock(1_750_000_000.0), IngestStats(), adapter)
    payload = encode(batch([sample(1), interval(2)], after=0))
    try:
        assert ingestor.handle("gg/v1/site-1/edge-1/telemetry", payload) is None
        assert ingestor.stats.store_errors == 1
        fake.script = [(204, "", b"")]
        out = ingestor.handle("gg/v1/site-1/edge-1/telemetry", payload)
        assert out is not None
        assert out.ack.upto == 2
    finally:
        adapter.close()
        store.close()
    written = fake.requests[-1].body.decode().splitlines()
    assert [line.split(",")[0] for line in written] == ["sample", "interval"]
    assert all(",site=site-1," in line for line in written)
