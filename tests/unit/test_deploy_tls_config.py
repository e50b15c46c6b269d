"""MQTT TLS options of the edge config and the central settings: checked at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from central.config import load_settings
from central.errors import ConfigError as CentralConfigError
from central.ingest import tls_parameters
from edge.config import parse_edge_config
from edge.errors import ConfigError


def edge(tmp_path: Path, **mqtt: Any) -> Any:
    return parse_edge_config({
        "edge_id": "e1", "site": "s", "mqtt": {"port": 8883, **mqtt},
        "devices": [{"id": "m1", "host": "127.0.0.1", "model": "eastron-sdm120"}]})


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name in ("ca.crt", "e1.crt", "e1.key"):
        (tmp_path / name).write_text("x")
        out[name] = tmp_path / name
    return out


def test_edge_accepts_a_complete_tls_section(tmp_path: Path, files: dict[str, Path]) -> None:
    config = edge(tmp_path, ca_file=str(files["ca.crt"]), cert_file=str(files["e1.crt"]),
                  key_file=str(files["e1.key"]))
    assert config.mqtt.cert_file == files["e1.crt"]


@pytest.mark.parametrize(("mqtt", "message"), [
    ({"cert_file": "e1.crt", "ca_file": "ca.crt"}, "cert_file and key_file go together"),
    ({"cert_file": "e1.crt", "key_file": "e1.key"}, "cert_file needs ca_file"),
    ({"ca_file": "missing.crt"}, "no such file"),
])
def test_edge_refuses_an_incomplete_tls_section(tmp_path: Path, files: dict[str, Path],
                                                mqtt: dict[str, str], message: str) -> None:
    given = {k: str(tmp_path / v) for k, v in mqtt.items()}
    with pytest.raises(ConfigError, match=message) as info:
        edge(tmp_path, **given)
    assert "mqtt" in str(info.value)


def test_central_settings_take_tls_files_from_the_environment(
        tmp_path: Path, files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENGUARD_MQTT_CA_FILE", str(files["ca.crt"]))
    monkeypatch.setenv("GREENGUARD_MQTT_CERT_FILE", str(files["e1.crt"]))
    monkeypatch.setenv("GREENGUARD_MQTT_KEY_FILE", str(files["e1.key"]))
    settings = load_settings(institution_config=tmp_path / "institution.yaml")
    tls = tls_parameters(settings.mqtt_ca_file, settings.mqtt_cert_file,
                         settings.mqtt_key_file)
    assert tls is not None
    assert (tls.ca_certs, tls.certfile, tls.keyfile) == (
        str(files["ca.crt"]), str(files["e1.crt"]), str(files["e1.key"]))
    assert tls_parameters(None) is None


def test_central_settings_refuse_a_key_without_its_certificate(
        tmp_path: Path, files: dict[str, Path]) -> None:
    with pytest.raises(CentralConfigError) as info:
        load_settings(institution_config=tmp_path / "i.yaml", mqtt_ca_file=files["ca.crt"],
                      mqtt_key_file=files["e1.key"])
    assert "mqtt_cert_file and mqtt_key_file go together" in str(info.value)
    with pytest.raises(CentralConfigError) as info:
        load_settings(institution_config=tmp_path / "i.yaml",
                      mqtt_ca_file=tmp_path / "nope.crt")
    assert ("mqtt_ca_file", tmp_path / "nope.crt", "no such file") in info.value.problems
