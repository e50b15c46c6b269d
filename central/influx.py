"""InfluxDB 2 adapter of the `TelemetryStore` port (docs/influxdb.md has the schema).

Measurements, one line per record, timestamps in milliseconds (`precision=ms`):

    sample    tags site, edge, device, point, unit [, building, zone, item]
              fields value (float; booleans 0/1) | text (string)         time = sample ts
    interval  same tags; fields delta (float), seconds (int), estimated, gap, reset (bool)
                                                                           time = start
    event     tags site, edge, [device,] name, severity; fields data (JSON), seq (int)
                                                                           time = event ts

Why it looks like this:

- Line protocol is built here, not by influxdb-client's `Point`, so that escaping is one
  small function fuzzed against a parser (tests/unit/central/test_influx_lineprotocol.py):
  tag values may be Chinese, contain spaces, commas, equals signs or backslashes; control
  characters that line protocol cannot carry become spaces, empty tags are left out.
- Idempotence comes from InfluxDB itself: a point is identified by measurement, tag set and
  timestamp, so a resent batch overwrites its own points with the same values. Numbers are
  always written as floats so that an integer sample can never conflict with a float one.
- Writes are synchronous and bounded: batches of `batch_lines` lines, `attempts` tries per
  batch with a short backoff on 5xx, 429 and connection errors, then `StoreError`. Ingest
  does not acknowledge, the edge keeps the rows and resends (back-pressure). After a failure
  the adapter refuses writes for `cooldown_s` without touching the network, so a dead
  InfluxDB does not stall ingest with one timeout per batch.
- Reads use Flux through the query API. Compliance never reads here (it reads the SQL
  store), so nothing the institution is scored on depends on Flux.
- `api: v1` (InfluxDB 1.x, which has no `/api/v2/write` before 1.8, and 3.x's v1 API):
  the same lines go to `/write?db=…&precision=ms` and reads use InfluxQL on `/query`;
  the token, if any, travels as `Authorization: Token …` (1.8+ and 3.x).
- `write_lines` writes prepared lines with the same batching, retries and cool-down: the
  central's published figures (`central.figures_export`) go through it.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from central.config import TelemetrySettings
from central.errors import ConfigError, StoreError
from central.institution import MeterKey
from central.storeport import LatestSample
from central.telemetry import (
    DeviceTags,
    PlaceTags,
    SeriesPoint,
    TelemetryBatch,
    TelemetryStore,
    check_series_args,
    numeric,
)
from protocols.wire import Event, IntervalFlag, IntervalRecord, Sample

FieldValue = float | int | bool | str

# -- line protocol ---------------------------------------------------------------------

_CONTROL = str.maketrans({"\n": " ", "\r": " ", "\t": " "})
_TAG_ESCAPE = str.maketrans({"\\": "\\\\", ",": "\\,", "=": "\\=", " ": "\\ "})
_MEASUREMENT_ESCAPE = str.maketrans({"\\": "\\\\", ",": "\\,", " ": "\\ "})
_STRING_ESCAPE = str.maketrans({"\\": "\\\\", '"': '\\"'})


def clean(text: str) -> str:
    """What line protocol can carry of a tag key/value or string field: no line breaks."""
    return text.translate(_CONTROL)


def escape_tag(text: str) -> str:
    return clean(text).translate(_TAG_ESCAPE)


def _field_value(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"field value must be finite (got {value!r})")
        return repr(value)
    return '"' + clean(value).translate(_STRING_ESCAPE) + '"'


def series_key(measurement: str, tags: Mapping[str, str | None]) -> str:
    """Measurement and tag set, escaped; tags sorted by key (as InfluxDB recommends), empty
    or None tag values left out."""
    cleaned = {clean(k): clean(v) for k, v in tags.items() if v is not None and clean(v)}
    parts = [clean(measurement).translate(_MEASUREMENT_ESCAPE)]
    parts.extend(f"{escape_tag(k)}={escape_tag(cleaned[k])}" for k in sorted(cleaned))
    return ",".join(parts)


def field_set(fields: Mapping[str, FieldValue]) -> str:
    if not fields:
        raise ValueError("a line needs at least one field")
    values = {clean(k): v for k, v in fields.items()}
    return ",".join(f"{escape_tag(k)}={_field_value(v)}" for k, v in values.items())


def build_line(measurement: str, tags: Mapping[str, str | None],
               fields: Mapping[str, FieldValue], ts_ms: int) -> str:
    """One line of InfluxDB line protocol. At least one field is required."""
    return f"{series_key(measurement, tags)} {field_set(fields)} {int(ts_ms)}"


def _place(tags: PlaceTags) -> dict[str, str | None]:
    return {"building": tags.building, "zone": tags.zone, "item": tags.item}


def record_lines(batch: TelemetryBatch, places: DeviceTags) -> list[str]:
    """The batch as line protocol, per the schema in the module docstring. A batch repeats
    the same few series, so each series key is escaped once per batch."""
    edge = batch.stream.edge
    heads: dict[tuple[str, str, str, str], str] = {}

    def point_head(measurement: str, device: str, point: str, unit: str) -> str:
        key = (measurement, device, point, unit)
        head = heads.get(key)
        if head is None:
            head = heads[key] = series_key(measurement, {
                "site": batch.site, "edge": edge, "device": device, "point": point,
                "unit": unit, **_place(places.lookup(edge, device, point))})
        return head

    lines: list[str] = []
    for r in batch.records:
        if isinstance(r, Sample):
            head = point_head("sample", r.device, r.point, r.unit)
            number = numeric(r.value)
            body = (f"value={_field_value(number)}" if number is not None
                    else f"text={_field_value(str(r.value))}")
            lines.append(f"{head} {body} {int(r.ts)}")
        elif isinstance(r, IntervalRecord):
            head = point_head("interval", r.device, r.point, r.unit)
            body = field_set({
                "delta": float(r.quantity), "seconds": int(r.duration_s),
                "estimated": IntervalFlag.ESTIMATED in r.flags,
                "gap": IntervalFlag.GAP in r.flags,
                "reset": IntervalFlag.RESET in r.flags})
            lines.append(f"{head} {body} {int(r.start)}")
        elif isinstance(r, Event):
            tags = {"site": batch.site, "edge": edge, "device": r.device, "name": r.name,
                    "severity": r.severity.value}
            data = json.dumps(r.data, ensure_ascii=False, sort_keys=True)
            lines.append(build_line("event", tags, {"data": data, "seq": int(r.seq)}, r.ts))
    return lines


def chunks(lines: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for i in range(0, len(lines), size):
        yield lines[i:i + size]


# -- Flux --------------------------------------------------------------------------------


def flux_string(text: str) -> str:
    """A Flux string literal (Flux interpolates `${...}`, so `$` is escaped too)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def flux_time(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def series_flux(bucket: str, key: MeterKey, start_ms: int, end_ms: int, step_ms: int) -> str:
    return (
        f"from(bucket: {flux_string(bucket)})\n"
        f"  |> range(start: {flux_time(start_ms)}, stop: {flux_time(end_ms)})\n"
        f'  |> filter(fn: (r) => r._measurement == "sample" and r._field == "value"'
        f" and r.edge == {flux_string(key.edge)} and r.device == {flux_string(key.device)}"
        f" and r.point == {flux_string(key.point)})\n"
        '  |> group()\n  |> sort(columns: ["_time"])\n'
        f'  |> aggregateWindow(every: {step_ms}ms, fn: mean, createEmpty: false,'
        ' timeSrc: "_start")\n'
        '  |> keep(columns: ["_time", "_value"])\n')


def latest_flux(bucket: str, points: Sequence[str] | None) -> str:
    wanted = ""
    if points is not None:
        wanted = " and (" + " or ".join(f"r.point == {flux_string(p)}" for p in points) + ")"
    return (
        f"from(bucket: {flux_string(bucket)})\n"
        "  |> range(start: 0)\n"
        f'  |> filter(fn: (r) => r._measurement == "sample"{wanted})\n'
        '  |> group(columns: ["edge", "device", "point", "_field"])\n'
        "  |> last()\n")


def _ms(moment: Any) -> int:
    if not isinstance(moment, datetime):
        raise StoreError("query", f"unexpected _time {moment!r} in a Flux result")
    return round(moment.timestamp() * 1000)


# -- the adapter -------------------------------------------------------------------------


def influx_token(settings: TelemetrySettings | None,
                 environ: Mapping[str, str] | None = None) -> str | None:
    """The InfluxDB token from the environment variable the settings name; None when no
    telemetry store is configured. A configured store without a token is a `ConfigError`
    at start-up, before any connection is made."""
    if settings is None:
        return None
    env = os.environ if environ is None else environ
    token = env.get(settings.token_env, "").strip()
    if not token:
        raise ConfigError("settings", [(
            "telemetry.token_env", settings.token_env,
            "this environment variable must hold the InfluxDB API token (tokens are never "
            "read from files or flags)")])
    return token


@dataclass(frozen=True, slots=True)
class WriteFailure:
    """Why a write attempt failed and whether another attempt may succeed."""

    reason: str
    retryable: bool


class HttpStatusError(Exception):
    """A v1 endpoint answered with an HTTP error status."""

    def __init__(self, status: int, body: str) -> None:
        self.status = status
        self.body = body
        super().__init__(f"HTTP {status}: {body}")


def classify(exc: Exception) -> WriteFailure:
    """HTTP 5xx, 429 and transport errors are worth another try; any other HTTP status
    (401 bad token, 404 unknown bucket, 400/422 bad line) is not."""
    from influxdb_client.rest import ApiException

    if isinstance(exc, HttpStatusError):
        return WriteFailure(f"HTTP {exc.status}: {exc.body[:300]}",
                            exc.status >= 500 or exc.status == 429)
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        body = str(exc.body or exc.reason or "")[:300]
        return WriteFailure(f"HTTP {status}: {body}", status >= 500 or status == 429
                            or status == 0)
    return WriteFailure(f"{type(exc).__name__}: {exc}", True)


class InfluxTelemetry(TelemetryStore):
    """Writes line protocol to InfluxDB 2 (`/api/v2/write`, precision ms); reads with Flux."""

    def __init__(self, settings: TelemetrySettings, token: str, *,
                 places: DeviceTags | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.settings = settings
        self.places = places if places is not None else DeviceTags()
        self._monotonic = monotonic
        self._sleep = sleep
        self._refuse_until = 0.0
        self._last_failure = ""
        self.lines_written = 0
        self.write_errors = 0
        self._client = InfluxDBClient(url=settings.url, token=token, org=settings.org,
                                      timeout=int(settings.timeout_s * 1000), retries=False)
        self._write = self._client.write_api(write_options=SYNCHRONOUS)
        self._v1 = V1Http(settings, token) if settings.api == "v1" else None

    # writes

    def write(self, batch: TelemetryBatch) -> None:
        self.write_lines(record_lines(batch, self.places))

    def write_lines(self, lines: Sequence[str]) -> None:
        """Prepared line-protocol lines (ms timestamps), batched and retried like `write`."""
        if not lines:
            return
        now = self._monotonic()
        if now < self._refuse_until:
            raise StoreError("telemetry write", f"InfluxDB failed {self._last_failure}; "
                             f"not retried for another {self._refuse_until - now:.1f}s")
        for chunk in chunks(lines, self.settings.batch_lines):
            self._write_chunk(chunk)
        self.lines_written += len(lines)

    def _write_chunk(self, chunk: Sequence[str]) -> None:
        from influxdb_client.domain.write_precision import WritePrecision

        precision: Any = WritePrecision.MS  # the generated class types its constants as str
        delay = self.settings.retry_initial_s
        failure = WriteFailure("no attempt", False)
        for attempt in range(1, self.settings.attempts + 1):
            try:
                if self._v1 is not None:
                    self._v1.write("\n".join(chunk))
                else:
                    self._write.write(bucket=self.settings.bucket, org=self.settings.org,
                                      record="\n".join(chunk), write_precision=precision)
                return
            except Exception as exc:  # classified below; never swallowed
                failure = classify(exc)
                if not failure.retryable or attempt == self.settings.attempts:
                    break
                self._sleep(delay)
                delay *= 2
        self.write_errors += 1
        self._last_failure = f"({failure.reason})"
        self._refuse_until = self._monotonic() + self.settings.cooldown_s
        raise StoreError("telemetry write", f"InfluxDB at {self.settings.url}: "
                         f"{failure.reason} after {attempt} attempt(s)")

    # reads

    def _query(self, flux: str) -> list[dict[str, Any]]:
        try:
            tables = self._client.query_api().query(flux, org=self.settings.org)
        except Exception as exc:
            raise StoreError("query", classify(exc).reason) from exc
        return [dict(record.values) for table in tables for record in table.records]

    def series(self, key: MeterKey, start_ms: int, end_ms: int, step_ms: int
               ) -> list[SeriesPoint]:
        check_series_args(start_ms, end_ms, step_ms)
        if end_ms == start_ms:
            return []
        if self._v1 is not None:
            return [SeriesPoint(int(row[0]), float(row[1])) for row in self._v1.rows(
                series_influxql(key, start_ms, end_ms, step_ms)) if row[1] is not None]
        rows = self._query(series_flux(self.settings.bucket, key, start_ms, end_ms, step_ms))
        return [SeriesPoint(_ms(row["_time"]), float(row["_value"])) for row in rows
                if row.get("_value") is not None]

    def latest(self, points: Iterable[str] | None = None) -> dict[MeterKey, LatestSample]:
        wanted = None if points is None else list(points)
        if wanted == []:
            return {}
        out: dict[MeterKey, LatestSample] = {}
        if self._v1 is not None:
            return self._v1.latest(wanted)
        for row in self._query(latest_flux(self.settings.bucket, wanted)):
            key = MeterKey(str(row["edge"]), str(row["device"]), str(row["point"]))
            value: float | str = (str(row["_value"]) if row.get("_field") == "text"
                                  else float(row["_value"]))
            sample = LatestSample(_ms(row["_time"]), value, str(row.get("unit") or ""))
            if key not in out or sample.ts >= out[key].ts:
                out[key] = sample
        return out

    def ping(self) -> None:
        if self._v1 is not None:
            self._v1.ping()
            return
        try:
            ok = self._client.ping()
        except Exception as exc:
            raise StoreError("ping", classify(exc).reason) from exc
        if not ok:
            raise StoreError("ping", f"InfluxDB at {self.settings.url} does not answer /ping")

    def close(self) -> None:
        if self._v1 is not None:
            self._v1.close()
        self._write.close()  # type: ignore[no-untyped-call]
        self._client.close()  # type: ignore[no-untyped-call]



# -- InfluxDB 1.x: /write and InfluxQL ----------------------------------------------------


def influxql_string(text: str) -> str:
    """An InfluxQL single-quoted string literal (tag values in WHERE)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def series_influxql(key: MeterKey, start_ms: int, end_ms: int, step_ms: int) -> str:
    """Mean per `step_ms` bucket (buckets aligned to the epoch, like `aggregateWindow`)."""
    return (f"SELECT mean(value) FROM sample WHERE edge = {influxql_string(key.edge)} "
            f"AND device = {influxql_string(key.device)} "
            f"AND point = {influxql_string(key.point)} "
            f"AND time >= {start_ms}ms AND time < {end_ms}ms "
            f"GROUP BY time({step_ms}ms) fill(none)")


class V1Http:
    """`/write`, `/query` and `/ping` of InfluxDB 1.x (and 3.x's v1 API), over urllib3 (a
    dependency of influxdb-client). `bucket` is "db" or "db/rp"."""

    def __init__(self, settings: TelemetrySettings, token: str) -> None:
        import urllib3

        self.base = settings.url.rstrip("/")
        db, _, rp = settings.bucket.partition("/")
        self.db, self.rp = db, rp
        self.headers = {"Authorization": f"Token {token}"} if token else {}
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(total=settings.timeout_s), retries=False)

    def _request(self, method: str, path: str, fields: Mapping[str, str],
                 body: bytes | None = None) -> bytes:
        from urllib.parse import urlencode

        url = f"{self.base}{path}?{urlencode(fields)}" if fields else f"{self.base}{path}"
        answer = self._http.request(method, url, body=body, headers=self.headers)
        if answer.status >= 300:
            raise HttpStatusError(answer.status, answer.data.decode("utf-8", "replace"))
        return bytes(answer.data)

    def write(self, text: str) -> None:
        fields = {"db": self.db, "precision": "ms"}
        if self.rp:
            fields["rp"] = self.rp
        self._request("POST", "/write", fields, text.encode("utf-8"))

    def query(self, influxql: str) -> list[dict[str, Any]]:
        """The statements' series (name, tags, columns, values); an error names the query."""
        try:
            raw = self._request("POST", "/query", {"db": self.db, "epoch": "ms",
                                                   "q": influxql})
        except Exception as exc:
            raise StoreError("query", classify(exc).reason) from exc
        out: list[dict[str, Any]] = []
        for result in json.loads(raw).get("results", []):
            if "error" in result:
                raise StoreError("query", f"{result['error']} in {influxql!r}")
            out.extend(result.get("series", []))
        return out

    def rows(self, influxql: str) -> list[list[Any]]:
        return [list(v) for s in self.query(influxql) for v in s.get("values", [])]

    def latest(self, points: Sequence[str] | None) -> dict[MeterKey, LatestSample]:
        where = ""
        if points is not None:
            where = " WHERE " + " OR ".join(f"point = {influxql_string(p)}" for p in points)
        out: dict[MeterKey, LatestSample] = {}
        for field_name in ("value", "text"):
            for s in self.query(f"SELECT last({field_name}) FROM sample{where} "
                                "GROUP BY edge, device, point, unit"):
                tags = s.get("tags", {})
                key = MeterKey(str(tags["edge"]), str(tags["device"]), str(tags["point"]))
                for ts, value in s.get("values", []):
                    if value is None:
                        continue
                    sample = LatestSample(int(ts), str(value) if field_name == "text"
                                          else float(value), str(tags.get("unit") or ""))
                    if key not in out or sample.ts >= out[key].ts:
                        out[key] = sample
        return out

    def ping(self) -> None:
        try:
            self._request("GET", "/ping", {})
        except Exception as exc:
            raise StoreError("ping", classify(exc).reason) from exc

    def close(self) -> None:
        self._http.clear()
