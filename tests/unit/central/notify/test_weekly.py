"""The liaison's weekly digest: the year-to-date compliance figures from a real store through
`compliance_for`, scheduled on the working calendar on a virtual clock, delivered once per
week and recipient to a loopback webhook, also across a restart."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

from pydantic import SecretStr

from central.institution import InstitutionConfig
from central.metrics import compliance_for
from central.notify.channels import WebhookChannel
from central.notify.digest import DigestTenant, MetricsDigestSource
from central.notify.notifier import Notifier
from central.notify.queue import NotifyQueue
from central.profile import CoefficientProfile
from central.projection import INSUFFICIENT_ZH
from central.store import Store
from tests.unit.central.central_helpers import batch, interval, local_ms, local_ts
from tests.unit.central.notify.helpers import ManualClock, config
from tests.unit.central.notify.receivers import BotReceiver, Received, serve

DAY_S = 86_400
PROJECTED = re.compile(r"(预计全年|全年实际) \d")


def fill(store: Store, first: dt.date, days: int) -> None:
    """Daily records of the institution's three main meters: 100 + 50 kWh, 10 m³ a day."""
    recs_1, recs_2 = [], []
    for i in range(days):
        d = first + dt.timedelta(days=i)
        start = local_ms(d.year, d.month, d.day, 0, 0)
        recs_1 += [interval(2 * i + 1, start=start, quantity=100.0, duration_s=DAY_S),
                   interval(2 * i + 2, start=start, quantity=10.0, duration_s=DAY_S,
                            device="water-a", point="water_m3", unit="m3")]
        recs_2.append(interval(i + 1, start=start, quantity=50.0, duration_s=DAY_S,
                               device="meter-b"))
    now = local_ts(first.year, first.month, first.day) + days * DAY_S
    store.store_batch(batch(recs_1, after=0), "site-1", now=now)
    store.store_batch(batch(recs_2, after=0, edge="edge-2"), "site-1", now=now)


def source(store: Store, institution: InstitutionConfig,
           profile: CoefficientProfile) -> MetricsDigestSource:
    @contextlib.contextmanager
    def reader() -> Iterator[Store]:
        yield store

    return MetricsDigestSource(reader, {"demo-school": DigestTenant(institution, profile,
                                                                    None)})


def notifier(path: Path, clock: ManualClock, rx: BotReceiver,
             digests: MetricsDigestSource) -> Notifier:
    cfg = config(institutions={"demo-school": {
        "recipients": {"liaison": ["ops", "boss"]},
        "digest": {"at": "08:30", "recipients": ["liaison"]},
        "weekly": {"weekday": 1}}})
    hook = {name: WebhookChannel(name, url=SecretStr(rx.url(f"/{name}")))
            for name in ("ops", "boss")}
    return Notifier(cfg, hook, NotifyQueue(path), clock, link_secret=b"k" * 32,
                    digests=digests)


def weekly(rx: BotReceiver) -> list[Received]:
    return [r for r in rx.received if r.body["title"].startswith("【节能周报】")]


async def test_weekly_digest_on_the_working_calendar_once_a_week(
        tmp_path: Path, store: Store, institution: InstitutionConfig,
        profile: CoefficientProfile) -> None:
    """Fourteen days of data (fewer than projection.min_days): no projected figure. Monday
    2 June 2025 is the Dragon Boat holiday, so the week's digest goes on Tuesday at the
    daily digest's time; a restart and the rest of the week send nothing more; the next
    Monday sends the next week's."""
    fill(store, dt.date(2025, 5, 19), 14)
    digests = source(store, institution, profile)
    clock = ManualClock(local_ts(2025, 6, 2, 9, 0))  # Monday, a holiday
    with serve(BotReceiver()) as rx:
        n = notifier(tmp_path / "n.sqlite", clock, rx, digests)
        await n.step()
        assert weekly(rx) == []
        clock.t = local_ts(2025, 6, 3, 8, 29)
        await n.step()
        assert weekly(rx) == []
        clock.t = local_ts(2025, 6, 3, 8, 30)
        await n.step()
        got = weekly(rx)
        assert sorted(r.path for r in got) == ["/boss", "/ops"]
        body = got[0].body
        assert body["title"] == "【节能周报】2025 年度 · 2025-W23"
        assert body["key"] in {"weekly|demo-school|2025-W23|ops",
                               "weekly|demo-school|2025-W23|boss"}
        lines = body["lines"]
        assert lines[0] == "统计期：2025-01-01 至 2025-06-02（本年累计）"
        assert [line.split("：")[0] for line in lines[1:4]] == [
            "· 单位建筑面积能耗", "· 人均综合能耗", "· 人均用水量"]
        assert all(line.endswith(f"预计全年：{INSUFFICIENT_ZH}") for line in lines[1:4])
        assert f"预测：{INSUFFICIENT_ZH}" in lines
        assert not any(PROJECTED.search(line) or "考核得分" in line for line in lines)
        report = digests.compliance("demo-school", dt.date(2025, 6, 3))
        assert report.coverage is not None
        assert lines[-1] == report.coverage.text_zh
        assert lines[-1].startswith("数据覆盖 14 / 153 天")
        assert body["data"]["status"] == "insufficient"
        assert [i["projected"] for i in body["data"]["items"]] == [None, None, None]
        for day in (4, 5, 6):  # the rest of the week
            clock.t = local_ts(2025, 6, day, 10, 0)
            await n.step()
        n.close()
        again = notifier(tmp_path / "n.sqlite", clock, rx, digests)  # a restart
        await again.step()
        assert len(weekly(rx)) == 2
        clock.t = local_ts(2025, 6, 9, 8, 30)
        await again.step()
        assert sorted(r.body["key"] for r in weekly(rx)[2:]) == [
            "weekly|demo-school|2025-W24|boss", "weekly|demo-school|2025-W24|ops"]
        again.close()


async def test_weekly_digest_figures_follow_the_one_projection(
        tmp_path: Path, store: Store, institution: InstitutionConfig,
        profile: CoefficientProfile) -> None:
    """Sixty days of data: the projected figures, verdicts and score are
    `compliance_for`'s."""
    fill(store, dt.date(2025, 1, 1), 59)  # up to 28 February
    digests = source(store, institution, profile)
    clock = ManualClock(local_ts(2025, 3, 3, 8, 30))  # a working Monday
    with serve(BotReceiver()) as rx:
        n = notifier(tmp_path / "n.sqlite", clock, rx, digests)
        await n.step()
        [ops] = [r for r in weekly(rx) if r.path == "/ops"]
        n.close()
    report = compliance_for(store, institution, profile,
                            now=local_ts(2025, 3, 3), year=2025)
    assert report.projection.status == "provisional"
    lines = ops.body["lines"]
    assert lines[0] == "统计期：2025-01-01 至 2025-03-02（本年累计）"
    expected = []
    for item in report.items:
        assert item.projected is not None
        assert item.target is not None
        assert item.prorated_target is not None
        unit = {"kgce/m²": "kgce/m²", "kgce/person": "kgce/人", "m³/person": "m³/人"}[
            item.unit]
        expected.append(f"· {item.label_zh}：累计 {item.ytd:.3f} {unit}（年度目标 ≤ "
                        f"{item.target:.3f}，按期目标 {item.prorated_target:.3f}）；预计全年 "
                        f"{item.projected:.3f}，{'达标' if item.met else '超标'}")
    assert lines[1:4] == expected
    assert [i.met for i in report.items] == [False, False, True]  # 150 kWh, 10 m³ a day
    assert lines[4] == f"预测：{report.projection.note_zh}"
    assert report.score is not None
    assert lines[5] == f"考核得分（预计）：{report.score:.1f} / {report.max_score:.1f}"
    assert report.coverage is not None
    assert lines[6] == report.coverage.text_zh
    assert ops.body["data"]["status"] == "provisional"
