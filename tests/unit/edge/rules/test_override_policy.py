"""`rules.overrides`: a central override is bounded in time, kept in a comfort band, and a
mode against the season needs `args.off_season: true` (issue 20: 16 °C in the heating
season, cooling in December and an override "until 2100" were all accepted)."""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from edge.config import parse_edge_config
from edge.errors import ConfigError
from edge.rules.commands import OverrideLimits, execute
from edge.rules.overrides import OverrideStore
from protocols.wire import Command

TZ = ZoneInfo("Asia/Shanghai")
DECEMBER = datetime(2026, 12, 4, 10, 0, tzinfo=TZ).timestamp()
JULY = datetime(2026, 7, 6, 10, 0, tzinfo=TZ).timestamp()
_IDS = itertools.count(1)


def _config(overrides: dict[str, Any] | None = None) -> Any:
    rules: dict[str, Any] = {"rules": [{"id": "ac", "type": "setpoint_limits"}]}
    if overrides is not None:
        rules["overrides"] = overrides
    return parse_edge_config({
        "edge_id": "edge-1", "site": "school",
        "buses": [{"id": "gw", "transport": "modbus_tcp", "host": "127.0.0.1", "port": 502}],
        "devices": [{"id": "ac-301", "driver": "modbus", "bus": "gw", "device_id": 10,
                     "model": "ac-controller-modbus"}],
        "rules": rules})


def _run(tmp_path: Path, now: float, args: dict[str, Any], *, last_s: float = 3600,
         overrides: dict[str, Any] | None = None) -> tuple[str, str]:
    cfg = _config(overrides)
    assert cfg.rules is not None
    store = OverrideStore(tmp_path / "rules.sqlite")
    now_ms = round(now * 1000)
    cmd = Command(f"c-{next(_IDS)}", "override.set", now_ms,
                  now_ms + round(last_s * 1000), {"device": "ac-301", "reason": "t", **args})
    try:
        out = execute(cmd, store=store, now=now, devices={d.id: d for d in cfg.devices},
                      protected=(), limits=OverrideLimits.of(cfg.rules, TZ))
    finally:
        store.close()
    return out.status, out.detail


def test_a_comfortable_setpoint_for_an_hour_is_applied(tmp_path: Path) -> None:
    assert _run(tmp_path, DECEMBER, {"point": "setpoint_c", "value": 19})[0] == "applied"


@pytest.mark.parametrize(("value", "why"), [(16, "comfort band 18–28"),
                                            (29.5, "comfort band 18–28")])
def test_setpoints_outside_the_comfort_band_are_rejected(tmp_path: Path, value: float,
                                                         why: str) -> None:
    status, detail = _run(tmp_path, DECEMBER, {"point": "setpoint_c", "value": value})
    assert status == "rejected"
    assert why in detail


def test_the_comfort_band_is_configured(tmp_path: Path) -> None:
    band = {"comfort_min_c": 16, "comfort_max_c": 26}
    assert _run(tmp_path, DECEMBER, {"point": "setpoint_c", "value": 16},
                overrides=band)[0] == "applied"


def test_an_override_until_2100_is_rejected(tmp_path: Path) -> None:
    long = datetime(2100, 1, 1, tzinfo=TZ).timestamp() - DECEMBER
    status, detail = _run(tmp_path, DECEMBER, {"point": "setpoint_c", "value": 20},
                          last_s=long)
    assert status == "rejected"
    assert "max_duration_s 86400" in detail
    assert _run(tmp_path, DECEMBER, {"point": "setpoint_c", "value": 20}, last_s=7200,
                overrides={"max_duration_s": 3600})[0] == "rejected"


def test_a_mode_against_the_season_needs_explicit_permission(tmp_path: Path) -> None:
    status, detail = _run(tmp_path, DECEMBER, {"point": "mode", "value": "cool"})
    assert status == "rejected"
    assert "heating season" in detail
    assert "off_season" in detail
    assert _run(tmp_path, JULY, {"point": "mode", "value": "heat"})[0] == "rejected"
    assert _run(tmp_path, DECEMBER, {"point": "mode", "value": "heat"})[0] == "applied"
    assert _run(tmp_path, DECEMBER, {"point": "mode", "value": "cool",
                                     "off_season": True})[0] == "applied"


def test_the_seasons_follow_the_policy_then_the_setpoint_rule(tmp_path: Path) -> None:
    assert _run(tmp_path, DECEMBER, {"point": "mode", "value": "cool"},
                overrides={"heating_months": [1, 2]})[0] == "applied"
    with pytest.raises(ConfigError, match=r"comfort_min_c 25\.0 must be below"):
        _config({"comfort_min_c": 25, "comfort_max_c": 20})
