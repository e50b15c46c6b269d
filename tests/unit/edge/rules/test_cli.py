"""`greenguard edge --config edge.yaml override set|clear|list` on a real rules state file,
and the running agent's view of what the CLI wrote."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from edge.rules.overrides import OverrideStore
from simulators.cli import main
from tests.unit.edge.rules.test_runtime import config


@pytest.fixture
def edge_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(config(), allow_unicode=True))
    return path


def cli(edge_yaml: Path, *args: str) -> int:
    return main(["edge", "--config", str(edge_yaml), "override", *args])


def test_set_list_clear(edge_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(edge_yaml, "set", "ac-301", "on", "on", "--for", "2h",
               "--reason", "parents' evening") == 0
    oid = capsys.readouterr().out.split()[0]
    assert oid.startswith("cli-")
    store = OverrideStore(edge_yaml.parent / "rules.sqlite")
    try:
        [active] = store.all()
        assert (active.override.device, active.override.point, active.override.value,
                active.override.origin) == ("ac-301", "on", True, "cli")
        assert active.override.expires - active.created == pytest.approx(7200, abs=5)
    finally:
        store.close()
    assert cli(edge_yaml, "list") == 0
    listed = capsys.readouterr().out
    assert oid in listed
    assert "parents' evening" in listed
    assert cli(edge_yaml, "clear", oid) == 0
    assert cli(edge_yaml, "clear", oid) == 2
    assert "no active override" in capsys.readouterr().err
    assert cli(edge_yaml, "list") == 0
    assert "(cleared)" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "message"), [
    (["ac-301", "setpoint_c", "5", "--for", "1h"], "below the allowed minimum 16"),
    (["ac-301", "setpoint_c", "nan", "--for", "1h"], "finite"),
    (["ac-301", "setpoint_c", "warm", "--for", "1h"], "must be a number"),
    (["ac-dc", "on", "off", "--for", "1h"], "protected"),
    (["ac-999", "on", "off", "--for", "1h"], "unknown device 'ac-999'"),
    (["ac-301", "on", "off", "--for", "soon"], "--for: must look like"),
    (["ac-301", "on", "off", "--until", "2001-01-01T10:00"], "in the past"),
    (["ac-301", "on", "off", "--until", "tomorrow"], "--until: must be an ISO time"),
])
def test_bad_overrides_are_refused(edge_yaml: Path, capsys: pytest.CaptureFixture[str],
                                   args: list[str], message: str) -> None:
    assert cli(edge_yaml, "set", *args) == 2
    assert message in capsys.readouterr().err
    store = OverrideStore(edge_yaml.parent / "rules.sqlite")
    try:
        assert store.all() == []
    finally:
        store.close()


def test_without_rules_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = config()
    del raw["rules"]
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert cli(path, "list") == 2
    assert "no rules: section" in capsys.readouterr().err
