"""`greenguard central`: argument wiring and start-up validation, without any network."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from central import cli
from central.config import load_settings
from central.control import load_signer
from central.errors import ConfigError
from tests.unit.central.central_helpers import INSTITUTION, TEST_SECRET


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(argv)


def test_check_validates_config_and_profile(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "institution.yaml"
    config.write_text(yaml.safe_dump(INSTITUTION, allow_unicode=True), encoding="utf-8")
    secret = tmp_path / "auth.secret"
    secret.write_text(TEST_SECRET, encoding="utf-8")
    secret.chmod(0o600)
    assert cli.run(parse("--config", str(config), "--auth-secret-file", str(secret),
                         "--check")) == 0
    assert "ok (2 buildings, 4 meters)" in capsys.readouterr().out


def test_config_error_exits_2_naming_field_and_value(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    bad = dict(INSTITUTION, buildings=[{"id": "A", "name": "a", "floor_area_m2": -5}])
    config = tmp_path / "institution.yaml"
    config.write_text(yaml.safe_dump(bad, allow_unicode=True), encoding="utf-8")
    assert cli.run(parse("--config", str(config), "--check")) == 2
    err = capsys.readouterr().err
    assert "buildings[0].floor_area_m2" in err
    assert "-5" in err


def test_bad_flag_value_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("--config", str(tmp_path / "x.yaml"), "--http-port", "70000", "--check")
    assert cli.run(args) == 2
    assert "http_port" in capsys.readouterr().err


def test_control_key_and_mqtt_login_flags(tmp_path: Path) -> None:
    """docs/security.md: `--control-key`, `--mqtt-username` and `--mqtt-password-file`; the
    password file gets the secret-file checks (0600, not empty)."""
    password = tmp_path / "mqtt.password"
    password.write_text("s3cret-pw\n", encoding="utf-8")
    password.chmod(0o600)
    args = parse("--config", str(tmp_path / "x.yaml"), "--control-key",
                 str(tmp_path / "keys" / "control.key"), "--mqtt-username", "central",
                 "--mqtt-password-file", str(password), "--notify-config",
                 str(tmp_path / "notify.yaml"))
    settings = load_settings(**{k: getattr(args, k, None) for k in cli._SETTINGS})
    assert settings.control_key_path == tmp_path / "keys" / "control.key"
    assert settings.mqtt_username == "central"
    assert settings.mqtt_secret() == "s3cret-pw"
    assert settings.notify_config == tmp_path / "notify.yaml"  # docs/notifications.md
    signer = load_signer(settings.control_key_path)  # created at first start, 0600
    assert (tmp_path / "keys" / "control.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "keys" / "control.pub").read_text().strip() == signer.public_key
    password.chmod(0o644)
    with pytest.raises(ConfigError, match=r"mqtt_password_file.*chmod 600"):
        settings.mqtt_secret()
