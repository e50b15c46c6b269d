"""The liaison's daily digest: figures from a real store, scheduling on the working calendar,
one message per day and recipient."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from central.compliance import ComplianceReport
from central.errors import StoreError
from central.institution import InstitutionConfig, parse_institution
from central.notify.channels import FakeChannel
from central.notify.digest import (
    BuildingEnergy,
    DigestFigures,
    DigestTenant,
    MetricsDigestSource,
    digest_message,
)
from central.notify.notifier import Notifier
from central.notify.queue import NotifyQueue
from central.profile import CoefficientProfile
from central.store import Store
from protocols.wire import Event, Sample, Severity
from tests.unit.central.central_helpers import (
    INSTITUTION,
    batch,
    interval,
    local_ms,
    local_ts,
    sample,
)
from tests.unit.central.notify.helpers import ManualClock, config, signal


class Figures:
    def __init__(self) -> None:
        self.asked: list[dt.date] = []

    def is_working_day(self, institution: str, day: dt.date) -> bool:
        return day.weekday() < 5

    def figures(self, institution: str, day: dt.date) -> DigestFigures:
        self.asked.append(day)
        return DigestFigures(day=day, buildings=[BuildingEnergy("教学楼", 120.0, 30.0),
                                                 BuildingEnergy("行政楼", 50.0, 45.5)],
                             standby_after_hours_kwh=1.25, rule_writes=7)

    def compliance(self, institution: str, day: dt.date) -> ComplianceReport:
        raise AssertionError("no weekly digest is configured here")


async def test_digest_goes_once_a_working_day_at_its_time(tmp_path: Path) -> None:
    clock = ManualClock(local_ts(2026, 6, 1, 7, 59))  # a Monday
    ops = FakeChannel("ops")
    source = Figures()
    cfg = config(institutions={"school": {
        "digest": {"at": "08:00", "recipients": ["ops"]},
        "routes": [{"name": "all", "stages": [{"recipients": ["ops"]}]}]}})
    n = Notifier(cfg, {"ops": ops}, NotifyQueue(tmp_path / "n.sqlite"), clock,
                 link_secret=b"k" * 32, digests=source)
    n.observe([signal("raised", clock.now() - 3600)])
    await n.step()
    assert [m.title for m, _ in ops.sent] == ["【紧急告警】漏水 · 教学楼 101"]
    clock.advance(60)
    await n.step()
    clock.advance(3600)
    await n.step()
    digest = ops.sent[-1][0]
    assert digest.title == "【节能日报】2026-05-31"
    assert digest.lines[:3] == ("非工作时间用电：75.5 kWh", "· 行政楼：45.5 / 50.0 kWh（占 91%）",
                                "· 教学楼：30.0 / 120.0 kWh（占 25%）")
    assert "规则自动操作：7 次" in digest.lines
    assert "未恢复告警：1 条" in digest.lines
    assert len(ops.sent) == 2
    assert source.asked == [dt.date(2026, 5, 31)]
    clock.t = local_ts(2026, 6, 6, 9, 0)  # Saturday: no digest
    await n.step()
    assert len(ops.sent) == 2


def test_figures_come_from_the_store(store: Store, institution: InstitutionConfig,
                                     profile: CoefficientProfile) -> None:
    night, day = local_ms(2025, 7, 2, 2, 0), local_ms(2025, 7, 2, 10, 0)  # a Wednesday
    write = Event(seq=3, ts=day, name="audit.write", severity=Severity.INFO,
                  device="meter-a", data={"rule": "after-hours"})
    store.store_batch(batch([interval(1, start=night, quantity=1.5),
                             interval(2, start=day, quantity=2.5), write], after=0),
                      "site-1", now=local_ts(2025, 7, 3))

    @contextlib.contextmanager
    def reader() -> Iterator[Store]:
        yield store

    source = MetricsDigestSource(reader, {"demo-school": DigestTenant(institution, profile,
                                                                      None)})
    f = source.figures("demo-school", dt.date(2025, 7, 2))
    assert [(b.name, b.kwh, b.after_hours_kwh) for b in f.buildings] == [
        ("教学楼 Teaching", 4.0, 1.5), ("行政楼 Admin", 0.0, 0.0)]
    assert f.rule_writes == 1
    assert source.is_working_day("demo-school", dt.date(2025, 7, 2))


def test_rooms_left_on_after_hours(store: Store, profile: CoefficientProfile) -> None:
    """On/mode samples of the institution's AC units, outside working hours (08:00–18:00
    on a Wednesday), longest first; an exempt unit and daytime use are not listed, a sample
    holds at most the policy's 30 minutes, yesterday's last sample carries into the day."""
    cfg = parse_institution({**INSTITUTION, "ac_units": [
        {"edge": "edge-1", "device": "ac-301", "building": "A", "zone": "301"},
        {"edge": "edge-2", "device": "ac-302", "building": "B"},
        {"edge": "edge-1", "device": "ac-303", "building": "A", "zone": "303",
         "on_point": None},
        {"edge": "edge-1", "device": "ac-dc", "building": "A", "zone": "机房",
         "exempt": True}]})
    one: list[Sample] = []
    for minute in range(0, 180, 10):  # 17:00–19:50 on, off at 20:00: 2 h after 18:00
        one.append(sample(0, ts=local_ms(2025, 7, 2, 17, 0) + minute * 60_000,
                          device="ac-301", point="on", value=True, unit=""))
    one.append(sample(0, ts=local_ms(2025, 7, 2, 20, 0), device="ac-301", point="on",
                      value=False, unit=""))
    for hh, mm, mode in [(7, 0, "cool"), (7, 20, "cool"), (7, 40, "off"), (9, 0, "cool"),
                         (11, 0, "off")]:
        one.append(sample(0, ts=local_ms(2025, 7, 2, hh, mm), device="ac-303", point="mode",
                          value=mode, unit=""))
    for hh in range(24):
        one.append(sample(0, ts=local_ms(2025, 7, 2, hh, 5), device="ac-dc", point="on",
                          value=1, unit=""))
    two = [sample(0, ts=local_ms(2025, 7, 1, 23, 50), device="ac-302", point="on",
                  value=True, unit=""),
           sample(0, ts=local_ms(2025, 7, 2, 23, 0), device="ac-302", point="on",
                  value=True, unit="")]
    ordered = sorted(one, key=lambda r: r.ts)
    store.store_batch(batch([dataclasses.replace(r, seq=i + 1) for i, r in enumerate(ordered)],
                            after=0), "site-1", now=local_ts(2025, 7, 3))
    store.store_batch(batch([dataclasses.replace(r, seq=i + 1) for i, r in enumerate(two)],
                            after=0, edge="edge-2"), "site-1", now=local_ts(2025, 7, 3))

    @contextlib.contextmanager
    def reader() -> Iterator[Store]:
        yield store

    source = MetricsDigestSource(reader, {"demo-school": DigestTenant(cfg, profile, None)})
    f = source.figures("demo-school", dt.date(2025, 7, 2))
    assert [(r.building, r.room, r.device, round(r.after_hours_s)) for r in f.rooms_on] == [
        ("教学楼 Teaching", "301", "ac-301", 7200),
        ("行政楼 Admin", "ac-302", "ac-302", 3000),
        ("教学楼 Teaching", "303", "ac-303", 2400)]
    message = digest_message(institution="demo-school", figures=f, open_alarms=[], key="k",
                             dashboard_url="http://dash.example", tz=cfg.institution.tz)
    i = message.lines.index("非工作时间仍开着的空调（前 3 间）：")
    assert message.lines[i + 1:i + 4] == ("· 教学楼 Teaching 301（ac-301）：2.0 小时",
                                          "· 行政楼 Admin ac-302：0.8 小时",
                                          "· 教学楼 Teaching 303（ac-303）：0.7 小时")
    assert message.data["rooms_on"][0]["device"] == "ac-301"
    quiet = source.figures("demo-school", dt.date(2025, 7, 4))
    assert quiet.rooms_on == []
    assert "非工作时间仍开着的空调：无" in digest_message(
        institution="demo-school", figures=quiet, open_alarms=[], key="k",
        dashboard_url="http://dash.example", tz=cfg.institution.tz).lines


class Unreachable(Figures):
    """The store is down until `up` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.up = False

    def figures(self, institution: str, day: dt.date) -> DigestFigures:
        if not self.up:
            raise StoreError("read", "the database is unreachable")
        return super().figures(institution, day)


async def test_a_digest_that_cannot_be_made_holds_back_no_alarm(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock(local_ts(2026, 6, 1, 8, 0))  # a Monday, digest time
    ops = FakeChannel("ops")
    source = Unreachable()
    cfg = config(institutions={"school": {
        "digest": {"at": "08:00", "recipients": ["ops"]},
        "routes": [{"name": "all", "stages": [{"recipients": ["ops"]}]}]}})
    n = Notifier(cfg, {"ops": ops}, NotifyQueue(tmp_path / "n.sqlite"), clock,
                 link_secret=b"k" * 32, digests=source)
    n.observe([signal("raised", clock.now() - 60)])
    assert await n.step() == 1
    assert [m.title for m, _ in ops.sent] == ["【紧急告警】漏水 · 教学楼 101"]
    assert "a digest could not be made" in caplog.text
    source.up = True
    clock.advance(60)
    await n.step()
    assert [m.title for m, _ in ops.sent][1:] == ["【节能日报】2026-05-31"]
