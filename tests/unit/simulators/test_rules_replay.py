"""`greenguard rules replay` over a small SQLite store: a winter day recorded with the AC at
20 °C and left on until 22:00, replayed with a pack that holds heating at ≤ 18 °C and
switches off after hours even in an occupied room (worked by hand below)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from central.store import Store
from protocols.wire import Record, Sample
from simulators.cli import main
from simulators.rules_replay import ReplayError, parse_pack
from tests.unit.central.central_helpers import INSTITUTION, batch, local_ms, local_ts

STEP = 600_000

PACK: dict[str, Any] = {"rules": {"tick_s": 600, "rules": [
    {"id": "winter-18", "type": "setpoint_limits", "heating_max_c": 18},
    {"id": "after-hours", "type": "after_hours_off", "warning_min": 10,
     "hold_if_occupied": False}]}}


def recording() -> list[Record]:
    """Tuesday 6 January 2026, every 10 minutes from 20:00 the evening before."""
    out: list[Record] = []
    seq = 0
    for ts in range(local_ms(2026, 1, 5, 20, 0), local_ms(2026, 1, 7, 0, 0), STEP):
        on = local_ms(2026, 1, 6, 8, 0) <= ts < local_ms(2026, 1, 6, 22, 0)
        occupied = local_ms(2026, 1, 6, 8, 0) <= ts < local_ms(2026, 1, 6, 17, 45)
        for device, point, value, unit in (
                ("ac-1", "on", on, ""), ("ac-1", "mode", "heat", ""),
                ("ac-1", "setpoint_c", 20.0, "°C"),
                ("ac-1-power", "power_w", 1500.0 if on else 0.0, "W"),
                ("pir", "occupied", occupied, "")):
            seq += 1
            out.append(Sample(seq, ts, device, point, value, unit))
    return out


@pytest.fixture
def site(tmp_path: Path) -> dict[str, Path]:
    doc = copy.deepcopy(INSTITUTION)
    doc["ac_units"] = [{"edge": "edge-1", "device": "ac-1", "building": "A", "zone": "301"}]
    doc["working_hours"] = {"start": "08:00", "end": "17:30"}
    doc["savings"] = {"loads": [{"edge": "edge-1", "device": "ac-1", "meter": "ac-1-power"}],
                      "occupancy": [{"edge": "edge-1", "device": "pir", "zone": "301"}]}
    inst = tmp_path / "institution.yaml"
    inst.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    pack = tmp_path / "winter-18.yaml"
    pack.write_text(yaml.safe_dump(PACK), encoding="utf-8")
    db = tmp_path / "central.sqlite"
    with Store(db) as store:
        store.store_batch(batch(recording(), after=0), "site")
    return {"config": inst, "pack": pack, "db": db}


def replay(site: dict[str, Path], *extra: str) -> list[str]:
    return ["rules", "replay", "--pack", str(site["pack"]), "--from", "2026-01-06",
            "--to", "2026-01-07", "--config", str(site["config"]), "--db", str(site["db"]),
            *extra]


def test_replay_reports_each_write_the_occupied_switch_off_and_the_savings(
        site: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(replay(site, "--json")) == 0
    out = json.loads(capsys.readouterr().out)
    writes = [(w["time"][11:19], w["device"], w["rule"], w["point"], w["before"], w["after"],
               w["occupied"]) for w in out["writes"]]
    assert writes == [("08:00:05", "ac-1", "winter-18", "setpoint_c", 20.0, 18.0, None),
                      ("17:40:05", "ac-1", "after-hours", "on", True, False, True)]
    assert out["occupied_switch_offs"] == 1
    clamp, off = (w["estimate"] for w in out["writes"])
    # Clamp: 1.5 kW × 6 %/°C × 2 °C from 08:00:05 until the switch-off at 17:40:05.
    assert (clamp["ended_by"], clamp["load_w"]) == ("next_write", 1500.0)
    assert clamp["kwh"] == pytest.approx(1.5 * 0.12 * (9 + 40 / 60), abs=1e-3)
    # Switch-off: the recording shows the unit switched off by hand at 22:00.
    assert off["ended_by"] == "changed"
    assert off["until"] == local_ts(2026, 1, 6, 22, 0)
    expected = 1.5 * (22 * 3600 - (17 * 3600 + 40 * 60 + 5)) / 3600
    assert off["kwh"] == pytest.approx(expected, abs=1e-3)
    savings = out["savings"]
    assert set(savings["per_rule"]) == {"winter-18", "after-hours"}
    assert savings["total"]["kwh"] == pytest.approx(expected + clamp["kwh"], abs=1e-2)
    assert savings["total"]["kgce"] == pytest.approx(savings["total"]["kwh"] * 0.1229,
                                                     rel=1e-3)
    # No tariff in the config: no cost. CO₂ by the shipped national grid factor valid in
    # 2026 (0.5306 kgCO₂/kWh, docs/carbon.md).
    assert savings["total"]["cost"] is None
    assert savings["total"]["co2_kg"] == pytest.approx(savings["total"]["kwh"] * 0.5306,
                                                       abs=1e-2)


def test_replay_table(site: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(replay(site)) == 0
    text = capsys.readouterr().out
    assert "winter-18" in text
    assert "switch-offs into occupied rooms: 1" in text
    total = next(line for line in text.splitlines() if line.startswith("total"))
    assert total.split()[1:3] == ["2", "8.2"]  # 6.50 + 1.74 kWh
    assert total.split()[-2:] == ["—", "4.4"]  # no tariff; 8.24 kWh × 0.5306 kgCO₂/kWh


def test_a_pack_that_changes_nothing_writes_nothing(
        site: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    site["pack"].write_text(yaml.safe_dump({"rules": {"tick_s": 600, "rules": [
        {"id": "winter-20", "type": "setpoint_limits"}]}}), encoding="utf-8")
    assert main(replay(site, "--json")) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["writes"] == []
    assert out["savings"]["total"]["kwh"] is None  # nothing estimated: "—", not 0


@pytest.mark.parametrize(("pack", "words"), [
    ({"rules": {"rules": [{"id": "w", "type": "setpoint_limits", "heating_max_c": 40}]}},
     ["rules", "heating_max_c", "40"]),
    ({"rules": {"tick_s": 0, "rules": []}}, ["tick_s", "0"]),
    ({"rules": {"rules": [{"id": "w", "type": "no_such_rule"}]}}, ["no_such_rule"]),
    ({"rules": {"rules": []}, "devices": []}, ["unknown key 'devices'"]),
    ({"rules": {"enabled": False, "rules": [{"id": "w", "type": "setpoint_limits"}]}},
     ["rules.enabled", "false"]),
    ({"rules": {"rules": []}}, ["rules.rules"]),
    (["not", "a", "mapping"], ["rules:"]),
])
def test_bad_packs_name_the_field_and_value(pack: Any, words: list[str]) -> None:
    with pytest.raises(ReplayError) as exc:
        parse_pack(pack, "pack.yaml")
    for word in words:
        assert word in str(exc.value)


def test_bad_arguments_name_the_flag(site: dict[str, Path],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    args = replay(site)
    args[args.index("--from") + 1] = "yesterday"
    assert main(args) == 2
    assert "--from" in capsys.readouterr().err
    args = replay(site)
    args[args.index("--to") + 1] = "2026-01-05"
    assert main(args) == 2
    assert "--to" in capsys.readouterr().err
    args = replay(site)
    args[args.index("--db") + 1] = str(site["db"].with_name("missing.sqlite"))
    assert main(args) == 2
    assert "missing.sqlite" in capsys.readouterr().err
    assert main([*replay(site), "--edge", "edge-2"]) == 2
    assert "no recorded samples" in capsys.readouterr().err
