"""The savings estimate (central/savings.py, docs/savings.md): golden cases worked by hand,
and the assembly through a tenant reader over a real SQLite store."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest

from central.api import Tenant, create_app
from central.errors import ConfigError
from central.institution import InstitutionConfig, parse_institution
from central.period import Period
from central.profile import load_profile
from central.reader import TenantReader
from central.savings import (
    AuditWrite,
    Kind,
    Mode,
    Series,
    Unit,
    WorkingTime,
    estimate,
    hourly,
    roll_up,
    savings_for,
)
from central.store import Store
from protocols.clock import VirtualClock
from protocols.wire import Event, Record, Severity
from tests.unit.central.central_helpers import (
    INSTITUTION,
    SHANGHAI,
    authenticator,
    batch,
    bearer,
    local_ms,
    local_ts,
    sample,
)

H = 3600.0


def institution(**savings: Any) -> InstitutionConfig:
    doc = copy.deepcopy(INSTITUTION)
    doc["ac_units"] = [{"edge": "edge-1", "device": "ac-1", "building": "A", "zone": "301"}]
    doc["plugs"] = [{"edge": "edge-1", "device": "plug-pc", "building": "B"}]
    doc["working_hours"] = {"start": "08:00", "end": "17:30"}
    doc["savings"] = savings
    return parse_institution(doc)


def off(ts: float, *, device: str = "ac-1", rule: str = "after-hours",
        dry_run: bool = False) -> AuditWrite:
    return AuditWrite("edge-1", device, ts, rule, "rule", "after hours", "on", True, False,
                      dry_run)


def clamp(ts: float, before: float = 22.0, after: float = 26.0) -> AuditWrite:
    return AuditWrite("edge-1", "ac-1", ts, "ac-26", "rule", "setpoint", "setpoint_c",
                      before, after)


def run(writes: list[AuditWrite], units: dict[tuple[str, str], Unit], *,
        mode: Mode = Mode.EFFECT, occupancy: dict[tuple[str, str], Series] | None = None,
        **settings: Any) -> list[Any]:
    inst = institution(**settings)
    return estimate(writes, units, occupancy or {}, WorkingTime.of(inst), inst.savings, mode)


def ac(load_w: float = 1000.0, at: float = 0.0, **points: Series) -> dict[tuple[str, str],
                                                                          Unit]:
    return {("edge-1", "ac-1"): Unit("A", "301", Series.of([(at, load_w)]), None, points)}


def test_friday_evening_switch_off_is_held_to_monday_but_capped() -> None:
    t = local_ts(2026, 6, 12, 18, 0)  # Friday; next working start Monday 15 June 08:00
    [a] = run([off(t)], ac(1000.0, t - 600))
    assert (a.kind, a.ended_by, a.end - a.start) == (Kind.SWITCH_OFF, "cap", 16 * H)
    assert a.kwh == pytest.approx(16.0)  # 1 kW × 16 h
    [b] = run([off(t)], ac(1000.0, t - 600), max_hold_h=72)
    assert (b.ended_by, b.end) == ("working_start", local_ts(2026, 6, 15, 8, 0))
    assert b.kwh == pytest.approx(62.0)  # Friday 18:00 → Monday 08:00


def test_a_make_up_saturday_ends_the_hold() -> None:
    """调休: Saturday 9 May 2026 is a working day (for the Labour Day holiday)."""
    t = local_ts(2026, 5, 8, 18, 30)
    [a] = run([off(t)], ac(2000.0, t - 60))
    assert (a.ended_by, a.end) == ("working_start", local_ts(2026, 5, 9, 8, 0))
    assert a.kwh == pytest.approx(2.0 * 13.5)
    # And a statutory holiday does not: Thursday 18 June 2026 before the Dragon Boat Festival.
    t = local_ts(2026, 6, 18, 18, 0)
    [b] = run([off(t)], ac(1000.0, t - 60), max_hold_h=100)
    assert b.end == local_ts(2026, 6, 22, 8, 0)


def test_a_setpoint_clamp_saves_a_share_per_degree_until_the_unit_is_switched_off() -> None:
    t = local_ts(2026, 6, 16, 9, 0)
    evening = local_ts(2026, 6, 16, 17, 40)
    [c, o] = run([clamp(t), off(evening)], ac(1900.0, t - 300))
    assert (c.kind, c.ended_by, c.end) == (Kind.SETPOINT, "next_write", evening)
    assert c.share == pytest.approx(0.24)  # 6 % per °C × 4 °C
    assert c.kwh == pytest.approx(1.9 * 0.24 * (evening - t) / H)
    assert o.ended_by == "working_start"
    # Someone sets 22 °C again at 11:00: the clamp saved until then (EFFECT mode) …
    again = Series.of([(t + 5, 26.0), (local_ts(2026, 6, 16, 11, 0), 22.0)])
    [c2, _] = run([clamp(t), off(evening)], ac(1900.0, t - 300, setpoint_c=again))
    assert (c2.ended_by, c2.end) == ("changed", local_ts(2026, 6, 16, 11, 0))
    # … and the unit seen off ends a clamp too.
    seen = Series.of([(t - 300, True), (local_ts(2026, 6, 16, 12, 0), False)])
    [c3] = run([clamp(t)], ac(1900.0, t - 300, on=seen))
    assert (c3.ended_by, c3.end) == ("unit_off", local_ts(2026, 6, 16, 12, 0))


def test_a_switch_off_ends_when_the_unit_is_switched_back_on_or_the_zone_is_occupied() -> None:
    t = local_ts(2026, 6, 16, 12, 20)  # a vacancy switch-off at lunch
    back = local_ts(2026, 6, 16, 13, 30)
    on = Series.of([(t, False), (t + 600, False), (back, True)])
    [a] = run([off(t, rule="vacancy")], ac(1500.0, t - 60, on=on))
    assert (a.ended_by, a.end) == ("changed", back)
    assert a.kwh == pytest.approx(1.5 * 70 / 60)
    # Without a seen switch-on: the end of the working period …
    [b] = run([off(t, rule="vacancy")], ac(1500.0, t - 60))
    assert (b.ended_by, b.end) == ("working_end", local_ts(2026, 6, 16, 17, 30))
    # … unless the zone's sensor sees someone back first.
    pir = Series.of([(t, False), (back - 600, True)])
    [c] = run([off(t, rule="vacancy")], ac(1500.0, t - 60), occupancy={("edge-1", "301"): pir})
    assert (c.ended_by, c.end) == ("occupied", back - 600)


def test_counterfactual_mode_ends_when_the_recording_changes_from_before() -> None:
    """A replay over samples recorded without the write: the unit stayed on (as recorded)
    until someone switched it off at 19:00 — the replayed 17:40 write saved 80 minutes."""
    t = local_ts(2026, 6, 16, 17, 40)
    recorded = Series.of([(t - 600, True), (t + 600, True), (local_ts(2026, 6, 16, 19), False)])
    [a] = run([off(t)], ac(1200.0, t - 600, on=recorded), mode=Mode.COUNTERFACTUAL)
    assert (a.ended_by, a.hours) == ("changed", pytest.approx(80 / 60))
    # The same samples read as a real run's effect: True after an off write is "back on".
    [b] = run([off(t)], ac(1200.0, t - 600, on=recorded), mode=Mode.EFFECT)
    assert (b.ended_by, b.end) == ("changed", t + 600)


def test_no_load_gives_no_figure_and_a_stale_load_is_not_used() -> None:
    t = local_ts(2026, 6, 16, 18, 0)
    [a] = run([off(t)], ac(1000.0, t - 2 * H))  # older than load_window_s (1 h)
    assert (a.load_w, a.kwh) == (None, None)
    [b] = run([off(t)], {("edge-1", "ac-1"): Unit("A", "301", None, 800.0)})
    assert (b.load_from, b.kwh) == ("rated", pytest.approx(0.8 * 14))


def test_dry_run_writes_are_rolled_up_apart_and_overrides_are_not_savings() -> None:
    t = local_ts(2026, 6, 16, 18, 0)
    units = {**ac(1000.0, t - 60),
             ("edge-1", "plug-pc"): Unit("B", None, Series.of([(t - 60, 80.0)]))}
    override_on = AuditWrite("edge-1", "ac-1", t - 5, "override:x", "override", "event",
                             "on", False, True)
    items = run([off(t), off(t, device="plug-pc", dry_run=True), override_on], units)
    assert [(i.write.device, i.write.dry_run) for i in items] == [("ac-1", False),
                                                                   ("plug-pc", True)]
    report = roll_up(items, kgce_per_kwh=0.1229, tz=SHANGHAI)
    assert report.total.writes == 1
    assert report.total.kwh == pytest.approx(14.0)
    assert report.total.kgce == pytest.approx(14.0 * 0.1229)
    assert report.dry_run.writes == 1
    assert report.dry_run.kwh == pytest.approx(0.08 * 14)
    assert list(report.per_building) == ["A"]
    assert list(report.per_month) == ["2026-06"]
    d = report.as_dict()
    assert d["estimate"] is True
    assert (d["total"]["cost"], d["total"]["co2_kg"]) == (None, None)  # shown as "—"


class FlatTariff:
    def __init__(self) -> None:
        self.calls: list[list[tuple[float, float, float]]] = []

    def electricity_cost(self, intervals: Iterable[tuple[float, float, float]]) -> float:
        spans = list(intervals)
        self.calls.append(spans)
        return sum(kwh for _, _, kwh in spans) * 0.6


class Grid:
    def co2_kg(self, energy: str, quantity: float, start_ts: float, end_ts: float) -> float:
        assert energy == "electricity"
        return quantity * 0.5366


def test_cost_and_co2_through_the_protocols_split_at_whole_hours() -> None:
    t = local_ts(2026, 6, 16, 17, 45)
    [a] = run([off(t)], ac(1000.0, t - 60), max_hold_h=1)
    spans = hourly(a)
    assert [(s - t, e - t) for s, e, _ in spans] == [(0, 900), (900, 3600)]
    assert sum(k for _, _, k in spans) == pytest.approx(1.0)
    tariff = FlatTariff()
    report = roll_up([a], kgce_per_kwh=0.1229, tz=SHANGHAI, tariff=tariff, carbon=Grid())
    assert report.total.cost == pytest.approx(0.6)
    assert report.total.co2_kg == pytest.approx(0.5366)
    assert tariff.calls == [spans]


def test_savings_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError) as exc:
        institution(max_hold_h=0)
    assert "max_hold_h" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        institution(loads=[{"edge": "edge-1", "device": "ac-1", "rated_w": -5}])
    assert "rated_w" in str(exc.value)
    assert "-5" in str(exc.value)


def _audit(seq: int, ts: int, device: str, data: dict[str, Any] | str) -> Event:
    body = data if isinstance(data, dict) else {"raw": data}
    return Event(seq, ts, "audit.write", Severity.INFO, device, body)


def test_savings_for_reads_through_the_tenant_reader(tmp_path: Path) -> None:
    inst = institution(loads=[{"edge": "edge-1", "device": "ac-1", "meter": "ac-1-power"}],
                       occupancy=[{"edge": "edge-1", "device": "pir", "zone": "301"}])
    t = local_ms(2026, 6, 12, 18, 0)  # Friday
    base = {"source": "rule", "reason": "after hours", "point": "on", "before": True,
            "after": False, "dry_run": False}
    records: list[Record] = [
        sample(1, ts=t - 300_000, device="ac-1-power", value=1200.0),
        sample(2, ts=t - 300_000, device="plug-pc", value=80.0),
        _audit(3, t, "ac-1", {**base, "rule": "after-hours"}),
        _audit(4, t, "plug-pc", {**base, "rule": "after-hours"}),
        _audit(5, t + 1000, "ac-1", "not an audit payload"),
        sample(6, ts=t + 4 * 3_600_000, device="pir", point="occupied", value=True, unit=""),
    ]
    with Store(tmp_path / "s.sqlite") as store:
        store.store_batch(batch(records, after=0), "site")
        # Another institution's edge writes the same device names: never counted.
        store.store_batch(batch([_audit(1, t, "ac-1", {**base, "rule": "x"})], after=0,
                                edge="edge-9"), "site")
        reader = TenantReader(store, inst)
        report = savings_for(reader, inst, load_profile("national"),
                             Period.month(2026, 6, SHANGHAI))
    assert report.malformed == 1
    assert set(report.per_rule) == {"after-hours"}
    by_device = {i.write.device: i for i in report.items}
    assert (by_device["ac-1"].ended_by, by_device["ac-1"].hours) == ("occupied", 4.0)
    assert by_device["ac-1"].kwh == pytest.approx(4.8)
    assert by_device["plug-pc"].ended_by == "cap"
    assert by_device["plug-pc"].kwh == pytest.approx(0.08 * 16)
    assert report.per_building["A"].kwh == pytest.approx(4.8)
    assert report.total.kwh == pytest.approx(4.8 + 1.28)
    json.dumps(report.as_dict(items=True))


async def test_the_savings_route(tmp_path: Path) -> None:
    inst = institution(loads=[{"edge": "edge-1", "device": "ac-1", "rated_w": 1000}])
    t = local_ms(2026, 6, 12, 18, 0)
    data = {"rule": "after-hours", "source": "rule", "reason": "after hours", "point": "on",
            "before": True, "after": False, "dry_run": False}
    auth = authenticator()
    with Store(tmp_path / "s.sqlite") as store:
        store.store_batch(batch([_audit(1, t, "ac-1", data)], after=0), "site")
        app = create_app(store, [Tenant(inst, load_profile("national"))],
                         VirtualClock(local_ts(2026, 7, 1)), auth)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://test",
                                     headers=bearer(auth, "viewer", ["demo-school"])) as c:
            base = "/api/v1/institutions/demo-school/savings"
            r = await c.get(base, params={"period": "2026-06", "items": "true"})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["estimate"] is True
            assert body["per_rule"]["after-hours"]["kwh"] == pytest.approx(16.0)
            assert body["items"][0]["load_from"] == "rated"
            r = await c.get(base, params={"period": "2026-05-01/2026-05-31"})
            assert r.json()["total"]["kwh"] is None  # no writes: "—", not 0
            for bad in ("June", "2026-13", "2026-06-30/2026-06-01"):
                r = await c.get(base, params={"period": bad})
                assert r.status_code in (400, 422), bad
                assert "period" in r.text, bad


def test_the_monthly_report_has_a_savings_section_in_html_pdf_and_xlsx(tmp_path: Path) -> None:
    import openpyxl

    from central.ledger import SqliteLedger
    from central.report_output import produce

    inst = institution(loads=[{"edge": "edge-1", "device": "ac-1", "rated_w": 1000}])
    data = {"rule": "after-hours", "source": "rule", "reason": "after hours", "point": "on",
            "before": True, "after": False, "dry_run": False}
    ledger = SqliteLedger(":memory:")
    with Store(tmp_path / "s.sqlite") as store:
        store.store_batch(batch([_audit(1, local_ms(2026, 6, 12, 18, 0), "ac-1", data),
                                 _audit(2, local_ms(2026, 6, 15, 18, 0), "ac-1",
                                        {**data, "dry_run": True})], after=0), "site")
        reader = TenantReader(store, inst)

        def report(fmt: str) -> bytes:
            return produce(reader, ledger, inst, load_profile("national"), report="monthly",
                           fmt=fmt, year=2026, number=6, now=local_ts(2026, 7, 1))[0]

        html = report("html").decode()
        assert "规则节约（估算）" in html
        assert "<td>after-hours</td><td>1</td><td>16.0</td>" in html
        assert "另有 1 次试运行（dry_run）写入未计入" in html
        assert report("pdf")[:5] == b"%PDF-"
        (tmp_path / "m.xlsx").write_bytes(report("xlsx"))
    ledger.close()
    sheet = openpyxl.load_workbook(tmp_path / "m.xlsx")["规则节约（估算）"]
    rows = {r[0]: r for r in sheet.iter_rows(values_only=True) if r and r[0]}
    assert rows["after-hours"][1:3] == (1, 16.0)
    # No tariff: cost "—"; CO₂ by the shipped national grid factor valid in 2026 (the 2023
    # factor, 0.5306 kgCO₂/kWh, docs/carbon.md): 16 kWh × 0.5306 = 8.49 kg.
    assert rows["合计"][4] == "—"
    assert rows["合计"][5] == pytest.approx(16.0 * 0.5306, abs=0.005)


def test_savings_are_priced_by_the_institutions_tariff_and_emission_factors(
        tmp_path: Path) -> None:
    """With a `tariff:` section the route's figures use the real TariffBook and the shipped
    emission factors: the avoided kWh spread over the hold at whole hours, priced by time of
    use, and weighed by the grid factor valid then."""
    from central.carbon import EmissionFactors
    from central.cost import tariff_book
    from central.savings import hourly

    doc = copy.deepcopy(INSTITUTION)
    doc["ac_units"] = [{"edge": "edge-1", "device": "ac-1", "building": "A", "zone": "301"}]
    doc["working_hours"] = {"start": "08:00", "end": "17:30"}
    doc["savings"] = {"loads": [{"edge": "edge-1", "device": "ac-1", "rated_w": 1000}]}
    doc["tariff"] = {"use": "cn-sample-general-ic"}
    inst = parse_institution(doc)
    data = {"rule": "after-hours", "source": "rule", "reason": "after hours", "point": "on",
            "before": True, "after": False, "dry_run": False}
    with Store(tmp_path / "s.sqlite") as store:
        store.store_batch(batch([_audit(1, local_ms(2026, 6, 12, 18, 0), "ac-1", data)],
                                after=0), "site")
        report = savings_for(TenantReader(store, inst), inst, load_profile("national"),
                             Period.month(2026, 6, SHANGHAI))
    (item,) = report.items
    assert item.kwh == pytest.approx(16.0)  # 1 kW from Friday 18:00, capped at 16 h
    book, factors = tariff_book(inst), EmissionFactors.for_institution(inst)
    assert book is not None
    yuan = book.electricity_cost(hourly(item))
    assert 0 < yuan < 16.0 * 2  # some valley, flat and peak hours of a summer night
    assert report.total.cost == pytest.approx(yuan)
    assert report.total.co2_kg == pytest.approx(16.0 * 0.5306, abs=1e-3)
    assert report.total.co2_kg == pytest.approx(
        factors.co2_kg("electricity", 16.0, item.start, item.end))
