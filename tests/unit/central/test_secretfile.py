"""Secret files: owner-only, not empty, one value rather than a YAML document; each refusal
names the setting, the file and what to do."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from central import cli
from central.errors import ConfigError
from central.secretfile import read_secret_file
from tests.unit.central.central_helpers import INSTITUTION, TEST_SECRET


def secret_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "auth.secret"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_an_owner_only_file_gives_its_value(tmp_path: Path) -> None:
    assert read_secret_file(secret_file(tmp_path, TEST_SECRET + "\n"), "f") == TEST_SECRET
    assert read_secret_file(secret_file(tmp_path, TEST_SECRET, 0o400), "f") == TEST_SECRET
    assert read_secret_file(secret_file(tmp_path, " pw \n"), "f", keep_spaces=True) == " pw "


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = secret_file(tmp_path, TEST_SECRET, mode)
    with pytest.raises(ConfigError) as err:
        read_secret_file(path, "auth_secret_file")
    assert f"auth_secret_file: readable by others (mode {mode:04o})" in str(err.value)
    assert f"chmod 600 {path}" in str(err.value)


@pytest.mark.parametrize("text", ["", "\n", "  \n\n"])
def test_an_empty_file_says_it_is_empty(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError) as err:
        read_secret_file(secret_file(tmp_path, text), "auth_secret_file")
    assert "the file is empty" in str(err.value)
    assert "missing" not in str(err.value)


def test_the_institution_yaml_passed_as_the_secret_is_recognised(tmp_path: Path) -> None:
    path = secret_file(tmp_path, yaml.safe_dump(INSTITUTION, allow_unicode=True,
                                                sort_keys=False))
    with pytest.raises(ConfigError) as err:
        read_secret_file(path, "auth_secret_file")
    assert "holds a YAML mapping (keys: institution, buildings" in str(err.value)
    assert "passed to the wrong flag" in str(err.value)


def test_a_missing_file_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"auth_secret_file: cannot read: No such file"):
        read_secret_file(tmp_path / "nope", "auth_secret_file")


def test_the_central_command_reports_which(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "institution.yaml"
    config.write_text(yaml.safe_dump(INSTITUTION, allow_unicode=True), encoding="utf-8")
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    empty = secret_file(tmp_path, "")
    args = parser.parse_args(["--config", str(config), "--auth-secret-file", str(empty),
                              "--check"])
    assert cli.run(args) == 2
    err = capsys.readouterr().err
    assert "the file is empty" in err
    assert "auth_secret: missing" not in err  # not "the flag was not given"
    args = parser.parse_args(["--config", str(config), "--auth-secret-file", str(config),
                              "--check"])
    config.chmod(0o600)
    assert cli.run(args) == 2
    assert "holds a YAML mapping" in capsys.readouterr().err
