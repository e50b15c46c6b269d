"""Edge config: validated at start-up with messages naming device and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edge.config import load_edge_config, parse_edge_config
from edge.errors import ConfigError


def config(**device: Any) -> dict[str, Any]:
    dev = {"id": "b1-power", "host": "127.0.0.1", "model": "eastron-sdm120"} | device
    return {"edge_id": "edge-1", "site": "demo-school", "devices": [dev]}


def test_minimal_config_is_valid() -> None:
    cfg = parse_edge_config(config())
    assert cfg.devices[0].poll_interval_s == 60
    assert cfg.interval_s == 900


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"timeout_s": 60}, "devices[0] (id 'b1-power'): timeout_s (60.0) must be shorter"),
        ({"model": "acme-9000"}, "devices[0] (id 'b1-power').model: register map 'acme-9000'"),
        ({"points": ["power_w", "pressure_bar"]}, "'pressure_bar' is not in model"),
        ({"port": "x"}, "devices[0] (id 'b1-power').port"),
        ({"device_id": 300}, "devices[0] (id 'b1-power').device_id"),
        ({"item_code": "lighting"}, "devices[0] (id 'b1-power').item_code"),
        ({"colour": "red"}, "devices[0] (id 'b1-power').colour: Extra inputs are not permitted"),
    ],
)
def test_bad_device_fields_are_named(change: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_edge_config(config(**change))
    assert expected in str(err.value)


def test_duplicate_ids_and_addresses_are_refused() -> None:
    data = config()
    data["devices"].append(dict(data["devices"][0]))
    with pytest.raises(ConfigError, match=r"devices\[1\] \(id 'b1-power'\).id: duplicate"):
        parse_edge_config(data)
    data["devices"][1]["id"] = "b2-power"
    with pytest.raises(ConfigError, match=r"device_id: 1 at 127\.0\.0\.1:502 is already used"):
        parse_edge_config(data)


def test_interval_must_divide_a_day() -> None:
    data = config() | {"interval_s": 7 * 60}
    with pytest.raises(ConfigError, match="interval_s: must divide a day"):
        parse_edge_config(data)


def test_yaml_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text("edge_id: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"edge\.yaml is not valid YAML"):
        load_edge_config(path)
    with pytest.raises(ConfigError, match="cannot read edge config"):
        load_edge_config(tmp_path / "missing.yaml")
