"""notify.yaml at start-up: secrets from files and the environment, field-named errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.config import CentralSettings
from central.errors import ConfigError
from central.institution import InstitutionConfig
from central.notify.channels import DingTalkChannel
from central.notify.config import build_channels, parse_notify
from central.notify.service import open_notifier
from tests.unit.central.central_helpers import TEST_SECRET
from tests.unit.central.notify.helpers import ManualClock


def test_secrets_come_from_files_and_environment(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    token = tmp_path / "ding.token"
    token.write_text("dt-from-file\n", encoding="utf-8")
    monkeypatch.setenv("GG_DING_SECRET", "SEC-env")
    cfg = parse_notify({"channels": {"d": {"kind": "dingtalk",
                                           "access_token": {"file": str(token)},
                                           "secret": {"env": "GG_DING_SECRET"}}}})
    [ding] = build_channels(cfg).values()
    assert isinstance(ding, DingTalkChannel)
    assert ding.secrets() == ("dt-from-file", "SEC-env")
    assert "dt-from-file" not in repr(cfg)
    with pytest.raises(ConfigError,
                       match=r"channels\.d\.access_token: give exactly one of env or file"):
        parse_notify({"channels": {"d": {"kind": "dingtalk", "access_token": {}}}})
    with pytest.raises(ConfigError, match=r"channels\.d\.access_token: cannot read"):
        build_channels(parse_notify({"channels": {"d": {
            "kind": "dingtalk", "access_token": {"file": str(tmp_path / "missing")}}}}))


def test_the_central_refuses_a_notify_file_for_an_unknown_institution(
        tmp_path: Path, institution: InstitutionConfig) -> None:
    path = tmp_path / "notify.yaml"
    path.write_text("institutions:\n  other-school: {}\n", encoding="utf-8")
    settings = CentralSettings(institution_config=tmp_path / "i.yaml",
                               database=tmp_path / "central.sqlite", notify_config=path)
    with pytest.raises(ConfigError, match=r"institutions\.other-school: not an institution"):
        open_notifier(settings, [institution], ManualClock(), TEST_SECRET)
    path.write_text("institutions:\n  demo-school: {}\n", encoding="utf-8")
    notifier = open_notifier(settings, [institution], ManualClock(), TEST_SECRET)
    assert notifier is not None
    notifier.close()
    assert (tmp_path / "central.notify.sqlite").exists()


def test_the_weekly_digest_is_validated_and_defaults_to_the_daily_digests_schedule() -> None:
    channels = {"ops": {"kind": "webhook", "url": {"env": "NOTIFY_TEST_URL"}}}
    cfg = parse_notify({"channels": channels, "institutions": {"s": {
        "recipients": {"liaison": ["ops"]},
        "digest": {"at": "07:45", "recipients": ["liaison"]}, "weekly": {}}}})
    schedule = cfg.weekly_schedule("s")
    assert schedule is not None
    assert (schedule[0].weekday, schedule[1], schedule[2]) == (1, "07:45", ["ops"])
    own = parse_notify({"channels": channels, "institutions": {"s": {
        "weekly": {"weekday": 5, "at": "16:00", "recipients": ["ops"]}}}})
    schedule = own.weekly_schedule("s")
    assert schedule is not None
    assert (schedule[0].weekday, schedule[1], schedule[2]) == (5, "16:00", ["ops"])
    assert parse_notify({"channels": channels}).weekly_schedule("s") is None
    for weekly, message in [
            ({}, r"institutions\.s\.weekly\.recipients: required when there is no daily"),
            ({"recipients": ["mail"]},
             r"institutions\.s\.weekly\.recipients\[0\]: unknown channel or recipient list"),
            ({"weekday": 8, "recipients": ["ops"]}, r"institutions\.s\.weekly\.weekday"),
            ({"at": "8:00", "recipients": ["ops"]}, r"institutions\.s\.weekly\.at")]:
        with pytest.raises(ConfigError, match=message):
            parse_notify({"channels": channels, "institutions": {"s": {"weekly": weekly}}})
