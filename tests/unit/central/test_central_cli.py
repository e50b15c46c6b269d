"""`greenguard central`: argument wiring and start-up validation, without any network."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from central import cli
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
