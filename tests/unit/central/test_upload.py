"""The platform uploader's pure parts and faces: the city file's errors, the key, the 分项
plan, cutting intervals into periods, the durable cursor, the API route and `--check`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from central.api import Tenant, create_app
from central.errors import ConfigError
from central.institution import InstitutionConfig, MeterKey, parse_institution
from central.profile import CoefficientProfile
from central.store import Store
from central.upload.city import load_city, read_secret
from central.upload.items import bucket, item_values, plan_items
from central.upload.state import UploadState, upload_state_path
from protocols.clock import VirtualClock
from simulators.cli import main as greenguard
from tests.unit.central.central_helpers import (
    INSTITUTION,
    authenticator,
    batch,
    bearer,
    interval,
)

CITIES = Path(__file__).resolve().parents[3] / "central" / "upload" / "cities"
CITY: dict[str, Any] = {
    "city": "Test", "platform": {"host": "127.0.0.1", "port": 9020}, "framing": "1F1F",
    "encryption": {"key_env": "PLATFORM_KEY"}, "start": "2025-01-01",
    "buildings": {"A": {"building_id": "330302D101", "gateway_id": "01"},
                  "B": {"building_id": "330302A101X0001"}}}


def _city(tmp_path: Path, **changes: Any) -> Path:
    doc = {**CITY, **changes}
    path = tmp_path / "city.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def _problems(exc: ConfigError) -> dict[str, str]:
    return {f: r for f, _v, r in exc.problems}


def test_example_cities_load() -> None:
    hourly = load_city(CITIES / "example-hourly-1f1f.yaml")
    quarter = load_city(CITIES / "example-15min-55aa.yaml")
    assert (hourly.framing.value, hourly.period_min) == ("1F1F", 60)
    assert (quarter.framing.value, quarter.period_min, quarter.zipped) == ("55AA", 15, True)


def test_city_errors_name_the_field(tmp_path: Path) -> None:
    path = _city(tmp_path, framing="AA55", period_min=30, encoding="klingon",
                 items=["01000", "01Z00"],
                 buildings={"A": {"building_id": "330302Q101", "gateway_id": "0 1"},
                            "B": {"building_id": "33030G101"}})
    with pytest.raises(ConfigError) as info:
        load_city(path)
    problems = _problems(info.value)
    assert set(problems) >= {"framing", "period_min"}
    path = _city(tmp_path, encoding="klingon", items=["01000", "01Z00"],
                 buildings={"A": {"building_id": "330302Q101", "gateway_id": "0 1"},
                            "B": {"building_id": "33030G101"}})
    with pytest.raises(ConfigError) as info:
        load_city(path)
    problems = _problems(info.value)
    assert "type letter" in problems["buildings.A.building_id"]
    assert "gateway" in problems["buildings.A.gateway_id"]
    assert "characters" in problems["buildings.B.building_id"]
    assert "items[1]" in problems
    assert "encoding" in problems
    with pytest.raises(ConfigError, match="exactly one of key_file and key_env"):
        load_city(_city(tmp_path, encryption={"encrypt": "data"}))


def test_key_from_env_or_file_never_shown(tmp_path: Path) -> None:
    city = load_city(_city(tmp_path))
    secret = read_secret(city.encryption, "city", env={"PLATFORM_KEY": "abcdefghijklmnop"})
    assert secret.aes_key == b"abcdefghijklmnop"
    assert "abcd" not in repr(secret)
    hexed = read_secret(city.encryption, "city", env={"PLATFORM_KEY": "00" * 16})
    assert hexed.aes_key == bytes(16)
    with pytest.raises(ConfigError) as info:
        read_secret(city.encryption, "city", env={"PLATFORM_KEY": "short-secret-xyz1"})
    assert "short-secret" not in str(info.value)
    with pytest.raises(ConfigError, match="unset"):
        read_secret(city.encryption, "city", env={})
    (tmp_path / "k").write_text("abcdefghijklmnop\n", encoding="utf-8")
    city = load_city(_city(tmp_path, encryption={"key_file": "k"}))  # beside the city file
    assert read_secret(city.encryption, "city").text == "abcdefghijklmnop"


def _institution(extra_meters: list[dict[str, Any]]) -> InstitutionConfig:
    return parse_institution({**INSTITUTION, "meters": INSTITUTION["meters"] + extra_meters})


def test_plan_rolls_children_up_and_never_adds_a_level0_meter_twice(tmp_path: Path) -> None:
    inst = _institution([
        {"edge": "edge-1", "device": "light-1", "building": "A", "energy": "electricity",
         "role": "sub", "item": "01A10"},
        {"edge": "edge-1", "device": "light-2", "building": "A", "energy": "electricity",
         "role": "sub", "item": "01A20"}])
    city = load_city(_city(tmp_path))
    plans = {p.building: p for p in plan_items(inst, city)}
    a = plans["A"].items
    assert set(a) == {"01000", "01B00", "01A00", "01A10", "01A20", "02000"}
    assert [k.device for k in a["01A00"]] == ["light-1", "light-2"]
    assert [k.device for k in a["01B00"]] == ["meter-a-ac"]  # tagged 01B00 itself
    assert [k.device for k in a["01000"]] == ["meter-a"]  # main only, no sub-meter
    assert set(plans["B"].items) == {"01000"}
    sums = {k: 1.0 for ks in a.values() for k in ks}
    assert item_values(plans["A"], sums)["01A00"] == 2.0
    only = load_city(_city(tmp_path, items=["01000"]))
    assert {c for p in plan_items(inst, only) for c in p.items} == {"01000"}


def test_bucket_prorates_like_interval_sums(store: Store) -> None:
    t0 = 1_735_689_600_000
    key = MeterKey("edge-1", "meter-a", "energy_import_kwh")
    records = [interval(1, start=t0 + 5 * 60_000, quantity=6.0, duration_s=1800),
               interval(2, start=t0 + 35 * 60_000, quantity=3.0, duration_s=900),
               interval(3, start=t0 + 50 * 60_000, quantity=2.5, duration_s=900)]
    store.store_batch(batch(records, after=0), "site-1")
    lo, hi, pm = t0, t0 + 4 * 900_000, 900_000
    got = bucket(store.interval_rows(lo, hi, [key]), lo, hi, pm)
    for p in range(lo, hi, pm):
        expected = store.interval_sums(p, p + pm, [key])[key]
        assert got.sums.get(p, {}).get(key, 0.0) == pytest.approx(expected)
    assert got.covered[t0][key] == 10 * 60_000  # the first 5 minutes have no data
    assert got.covered[t0 + 900_000][key] == 900_000


def test_cursor_moves_over_accepted_periods_in_any_order(tmp_path: Path) -> None:
    state = UploadState(tmp_path / "u.sqlite")
    pm = 900_000
    state.init_cursor("A", 0)
    state.accept("A", 2 * pm, "d2", 1, pm)
    state.accept("A", pm, "d1", 2, pm)
    assert state.cursor("A", 0) == 0
    state.accept("A", 0, "d0", 3, pm, "continuous")
    assert state.cursor("A", 0) == 3 * pm
    state.accept("A", pm, "d1b", 4, pm)  # a re-send does not move it back
    assert state.cursor("A", 0) == 3 * pm
    assert state.accepted("A", 0, 3 * pm) == {0: "d0", pm: "d1b", 2 * pm: "d2"}
    assert state.counters() == {"report:accepted": 3, "continuous:accepted": 1}
    state.close()


async def test_upload_route(tmp_path: Path, store: Store, institution: InstitutionConfig,
                            profile: CoefficientProfile) -> None:
    auth = authenticator()
    app = create_app(store, [Tenant(institution, profile)], VirtualClock(1.7e9), auth)
    url = "/api/v1/institutions/demo-school/upload"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test",
                                 headers=bearer(auth, "viewer", ["demo-school"])) as c:
        r = await c.get(url)
        assert r.json() == {"configured": False, "buildings": [], "counters": {}, "log": []}
        db = tmp_path / "central.sqlite"
        app.state.upload_database = db
        state = UploadState(upload_state_path(db, "demo-school"))
        state.init_cursor("A", 0)
        state.accept("A", 0, "d", 10, 900_000)
        state.log(20, "A", 900_000, "continuous", "refused", "data continuous refused")
        state.set_backlog("A", 7, 20)
        state.close()
        body = (await c.get(url, params={"limit": 10})).json()
        assert body["configured"] is True
        (a,) = body["buildings"]
        assert (a["building"], a["last_accepted"], a["backlog"]) == ("A", 0, 7)
        assert a["last_error"]["outcome"] == "refused"
        assert [e["outcome"] for e in body["log"]] == ["refused", "accepted"]
        assert body["counters"] == {"report:accepted": 1, "continuous:refused": 1}
        assert (await c.get("/api/v1/institutions/other/upload")).status_code == 404


def test_cli_check(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                   monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "inst.yaml").write_text(yaml.safe_dump(INSTITUTION, allow_unicode=True),
                                        encoding="utf-8")
    monkeypatch.setenv("PLATFORM_KEY", "abcdefghijklmnop")
    args = ["upload", "--config", str(tmp_path / "inst.yaml"), "--city", str(_city(tmp_path)),
            "--db", str(tmp_path / "c.sqlite"), "--check"]
    assert greenguard(args) == 0
    out = capsys.readouterr().out
    assert "A -> 330302D101/01: 01000, 01B00, 02000" in out
    monkeypatch.delenv("PLATFORM_KEY")
    assert greenguard(args) == 2
    assert "encryption.key_env" in capsys.readouterr().err


def test_cli_institution_picks_one_of_a_directory(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/platform-upload.md: `--institution ID` when the config names several."""
    configs = tmp_path / "institutions"
    configs.mkdir()
    for iid in ("demo-school", "other-school"):
        doc = {**INSTITUTION, "institution": {**INSTITUTION["institution"], "id": iid}}
        (configs / f"{iid}.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True),
                                             encoding="utf-8")
    monkeypatch.setenv("PLATFORM_KEY", "abcdefghijklmnop")
    args = ["upload", "--config", str(configs), "--city", str(_city(tmp_path)),
            "--db", str(tmp_path / "c.sqlite"), "--check"]
    assert greenguard(args) == 2
    assert "--institution" in capsys.readouterr().err
    assert greenguard([*args, "--institution", "other-school"]) == 0
    assert "A -> 330302D101/01" in capsys.readouterr().out
