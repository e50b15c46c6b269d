"""Fault run of the platform uploader (issue 16): a simulated month against the test
receiver, which refuses for a day, stalls for an hour and drops connections; late data for
one building and a correction of an accepted period. Afterwards the receiver holds every
period of every building exactly once (the corrected period twice, the second time with the
new values), each equal to the central's `interval_sums` per 分项 item.

The clock is virtual (passes at simulated times, pacing sleeps skip ahead); only the
receiver's stall costs real time (the uploader's timeout). The receiver shares no code with
the uploader. Both example cities run: 1F1F hourly and 55AA 15-minute, zipped, GB2312.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from central.institution import InstitutionConfig, MeterKey
from central.reader import TenantReader
from central.store import Store
from central.upload.city import CityConfig, load_city, read_secret, wire_settings
from central.upload.state import UploadState
from central.upload.uploader import Uploader
from protocols.platform.codec import PlatformCodec
from protocols.wire import Batch, IntervalRecord, StreamId
from simulators.platform_receiver import Mode, PlatformReceiver, ReceiverSettings

pytestmark = pytest.mark.integration

TZ = ZoneInfo("Asia/Shanghai")
CITIES = Path(__file__).resolve().parents[2] / "central" / "upload" / "cities"
KEY = "k3y-of-16-chars!"
DAY_MS = 86_400_000
T0 = int(datetime(2026, 3, 1, tzinfo=TZ).timestamp() * 1000)

INSTITUTION: dict[str, Any] = {
    "institution": {"id": "demo-school", "name": "示范中学", "type": "school"},
    "buildings": [{"id": "teaching", "name": "教学楼", "floor_area_m2": 8000},
                  {"id": "dormitory", "name": "宿舍楼", "floor_area_m2": 5000},
                  {"id": "admin", "name": "行政楼", "floor_area_m2": 2000}],
    "headcount": {"staff": 100, "students_daily_avg": 1000},
    "targets": {2026: {"kgce_per_m2": 5, "kgce_per_person": 50, "water_m3_per_person": 9}},
    "meters": [
        {"edge": "edge-1", "device": "teach-main", "building": "teaching",
         "energy": "electricity", "role": "main"},
        {"edge": "edge-1", "device": "teach-ac", "building": "teaching",
         "energy": "electricity", "role": "sub", "item": "01B10"},
        {"edge": "edge-1", "device": "teach-water", "building": "teaching",
         "energy": "water", "role": "main"},
        {"edge": "edge-2", "device": "admin-main", "building": "admin",
         "energy": "electricity", "role": "main"},
    ],
}
KEYS = {"teaching": [MeterKey("edge-1", "teach-main", "energy_import_kwh"),
                     MeterKey("edge-1", "teach-ac", "energy_import_kwh"),
                     MeterKey("edge-1", "teach-water", "water_m3")],
        "admin": [MeterKey("edge-2", "admin-main", "energy_import_kwh")]}


class SimClock:
    """Virtual time: the test sets `t`; pacing sleeps move it forward at once."""

    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    @property
    def synced(self) -> bool:
        return True

    async def sleep_until(self, when: float) -> None:
        self.t = max(self.t, when)
        await asyncio.sleep(0)

    def register(self) -> None:
        return None

    def unregister(self) -> None:
        return None


def _quantity(key: MeterKey, start: int) -> float:
    base = {"teach-main": 30.0, "teach-ac": 11.0, "teach-water": 0.4, "admin-main": 7.0}
    return round(base[key.device] * (1 + ((start // 900_000) % 7) / 10), 3)


class Feed:
    """Intervals of 15 minutes per meter, stored as the edges' batches would."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.seq = {"edge-1": 0, "edge-2": 0}

    def put(self, edge: str, lo: int, hi: int, bump: float = 0.0) -> None:
        keys = [k for ks in KEYS.values() for k in ks if k.edge == edge]
        recs: list[IntervalRecord] = []
        for start in range(lo, hi, 900_000):
            for k in keys:
                recs.append(IntervalRecord(
                    seq=self.seq[edge] + len(recs) + 1, device=k.device, point=k.point,
                    start=start, duration_s=900, quantity=_quantity(k, start) + bump,
                    unit="m3" if k.point == "water_m3" else "kWh"))
        for i in range(0, len(recs), 500):
            chunk = tuple(recs[i:i + 500])
            self.store.store_batch(Batch(stream=StreamId(edge, 1), after=self.seq[edge],
                                         sent=T0, synced=True, records=chunk), "school")
            self.seq[edge] += len(chunk)


def _city(name: str, port: int, key_file: Path) -> CityConfig:
    city = load_city(CITIES / name)
    enc = city.encryption.model_copy(update={"key_file": key_file, "key_env": None})
    return city.model_copy(update={
        "platform": city.platform.model_copy(update={"port": port}), "encryption": enc,
        "start": datetime.fromtimestamp(T0 / 1000, TZ).date(), "timeout_s": 0.3,
        "rate_per_s": 50.0, "max_per_pass": 5000})


@pytest.mark.parametrize(("city_file", "days"), [
    ("example-hourly-1f1f.yaml", 30),  # the month
    ("example-15min-55aa.yaml", 10),  # the same faults, in ten days of 15-minute periods
])
async def test_month_with_refusal_stall_drops_late_and_corrected_data(
        tmp_path: Path, city_file: str, days: int) -> None:
    key_file = tmp_path / "platform.key"
    key_file.write_text(KEY + "\n", encoding="utf-8")
    city0 = load_city(CITIES / city_file)
    rx_settings = ReceiverSettings.from_city(CITIES / city_file, key_text=KEY)
    institution = InstitutionConfig.model_validate(INSTITUTION)
    store = Store(tmp_path / "central.sqlite")
    feed = Feed(store)
    end = T0 + days * DAY_MS
    feed.put("edge-1", T0, end)
    gap = (T0 + 3 * DAY_MS, T0 + 4 * DAY_MS)  # edge-2 offline for a day, data late
    feed.put("edge-2", T0, gap[0])
    feed.put("edge-2", gap[1], end)
    clock = SimClock(T0 / 1000)
    async with PlatformReceiver(rx_settings, tmp_path / "rx.sqlite",
                                clock=clock.now) as rx:
        city = _city(city_file, rx.port, key_file)
        assert city.framing == city0.framing
        secret = read_secret(city.encryption, city.city)
        codec = PlatformCodec(wire_settings(city, secret))
        state = UploadState(tmp_path / "upload.sqlite")
        reader = TenantReader(store, institution)
        up = Uploader(reader, institution, city, secret, state, clock, codec=codec,
                      late_after_h=72)
        step_s = 3600
        for h in range(days * 24 + 2):
            clock.t = T0 / 1000 + h * step_s + 600
            day, hour = divmod(h, 24)
            rx.mode = (Mode.REFUSE if day == 2  # refuses for a day
                       else Mode.STALL if (day, hour) == (5, 9)  # hangs for an hour
                       else Mode.DROP if day == 6 and hour < 3  # drops on every data frame
                       else Mode.GARBAGE if (day, hour) == (6, 5)
                       else Mode.NORMAL)
            if (day, hour) == (4, 12):
                feed.put("edge-2", *gap)  # the edge comes back with its outbox
            if (day, hour) == (8, 0):  # a corrected reading of an accepted period
                feed.put("edge-1", T0 + 7 * DAY_MS, T0 + 7 * DAY_MS + 900_000, bump=1.0)
            if h % 50 == 7:
                rx.drop_all()  # the platform restarts now and then
            await up.heartbeat(up.plans[0])
            await up.run_pass()
        rx.mode = Mode.NORMAL
        clock.t += 3600
        await up.run_pass()
        await up.close()

        period_ms = city.period_min * 60_000
        got: dict[tuple[str, str], list[dict[str, float]]] = {}
        for building_id, _gw, t, items in rx.received():
            got.setdefault((building_id, t), []).append(items)
        ids = {b: city.buildings[b].building_id for b in KEYS}
        closed_end = (int(clock.t * 1000) - int(city.settle_min * 60_000)) // period_ms \
            * period_ms
        expected_periods = range(T0, min(end, closed_end), period_ms)
        assert len(got) == len(ids) * len(expected_periods)
        corrected = datetime.fromtimestamp((T0 + 7 * DAY_MS) / 1000, TZ).strftime(
            "%Y%m%d%H%M%S")
        wanted = None if city.items is None else set(city.items)
        places = 10 ** -city.decimals
        for p in expected_periods:
            t = datetime.fromtimestamp(p / 1000, TZ).strftime("%Y%m%d%H%M%S")
            for b, keys in KEYS.items():
                sums = reader.interval_sums(p, p + period_ms, keys)
                exp = {"01000": sums[keys[0]]}
                if b == "teaching":
                    exp |= {"01B10": sums[keys[1]], "01B00": sums[keys[1]],
                            "02000": sums[keys[2]]}
                exp = {c: v for c, v in exp.items() if wanted is None or c in wanted}
                rows = got[(ids[b], t)]
                assert len(rows) == (2 if (t == corrected and b == "teaching") else 1), (b, t)
                assert rows[-1].keys() == exp.keys()
                for code, v in exp.items():
                    assert rows[-1][code] == pytest.approx(v, abs=places / 2 + 1e-9), \
                        (b, t, code)
        events = rx.event_counts()
        assert events.get("refused", 0) > 0
        assert events.get("dropped", 0) > 0
        outcomes = state.counters()
        assert outcomes.get("continuous:timeout", 0) + outcomes.get("report:timeout", 0) > 0
        assert outcomes.get("report:refused", 0) + outcomes.get("continuous:refused", 0) > 0
        assert any(k.endswith(":garbage") for k in outcomes)
        assert state.entries(limit=1)
        state.close()
    store.close()
