"""deploy/compose.yaml: valid against the Compose Specification schema (no Docker engine runs
in CI), every service restarts and reports health, and no credential is written in it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "deploy" / "compose.yaml"
SCHEMA = REPO / "tests" / "data" / "compose-spec.json"
# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}; $$ is a literal $
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable substitution, enough for this file: a missing required variable
    is an error, as `docker compose` makes it."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if env.get(name):
            return env[name]
        if op and op.endswith("?"):
            raise KeyError(f"{name}: {arg}")
        return arg if op else ""

    return _VAR.sub(one, value.replace("$$", "\0")).replace("\0", "$")


def variables(value: Any) -> list[re.Match[str]]:
    if isinstance(value, dict):
        return [m for v in value.values() for m in variables(v)]
    if isinstance(value, list):
        return [m for v in value for m in variables(v)]
    return list(_VAR.finditer(value.replace("$$", ""))) if isinstance(value, str) else []


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


ENV = {"GREENGUARD_BROKER_CERTS": "/srv/gg/broker", "GREENGUARD_CENTRAL_CERTS": "/srv/gg/central",
       "GREENGUARD_INSTITUTION": "/srv/gg/institution.yaml",
       "GREENGUARD_INFLUX_TOKEN": "0123456789abcdef", "GRAFANA_INFLUX_TOKEN": "fedcba9876543210"}


def test_the_file_is_valid_before_and_after_interpolation(
        compose: dict[str, Any], validator: jsonschema.Draft7Validator) -> None:
    for doc in (compose, interpolate(compose, ENV)):
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
        assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_the_validator_rejects_what_compose_rejects(
        compose: dict[str, Any], validator: jsonschema.Draft7Validator) -> None:
    """The schema check is not vacuous: typical mistakes fail it."""
    broken = [
        {**compose, "services": {**compose["services"],
                                 "central": {**compose["services"]["central"],
                                             "restart": ["always"]}}},
        {**compose, "services": {**compose["services"],
                                 "postgres": {**compose["services"]["postgres"],
                                              "helthcheck": {}}}},
        {**compose, "volume": {}},
    ]
    for doc in broken:
        assert list(validator.iter_errors(doc))


def test_a_missing_required_variable_stops_compose_with_its_message(
        compose: dict[str, Any]) -> None:
    for name in ENV:
        env = {k: v for k, v in ENV.items() if k != name}
        with pytest.raises(KeyError, match=name):
            interpolate(compose, env)


def test_every_service_restarts_and_reports_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"mosquitto", "influxdb", "postgres", "central", "grafana"}
    for name, service in services.items():
        assert service.get("restart") in ("unless-stopped", "always", "on-failure"), name
        check = service.get("healthcheck", {})
        assert check.get("test"), name
        assert not check.get("disable"), name
        assert service["logging"]["options"]["max-size"], name
    assert {k: v["condition"] for k, v in services["central"]["depends_on"].items()} == {
        "mosquitto": "service_healthy", "influxdb": "service_healthy",
        "postgres": "service_healthy"}


SECRET_WORDS = re.compile(r"password|passwd|token|secret|_key\b|apikey", re.I)


def test_no_credential_is_written_in_the_file(compose: dict[str, Any]) -> None:
    """A value under a secret-looking name is a /run/secrets file or a required variable,
    and the required variables carry a message saying what to set."""
    for name, service in compose["services"].items():
        env = service.get("environment", {})
        assert isinstance(env, dict), f"{name}: environment as a mapping, please"
        for key, value in env.items():
            if not SECRET_WORDS.search(key) or key.endswith("_KEY_FILE"):
                continue
            value = str(value)
            if key.endswith("FILE"):
                assert value.startswith("/run/secrets/"), (name, key, value)
            else:
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", value), (name, key, value)
    for secret in compose["secrets"].values():
        assert secret["file"].startswith("./secrets/")
    ignored = (REPO / "deploy" / ".gitignore").read_text(encoding="utf-8").split()
    assert "secrets/" in ignored
    assert ".env" in ignored
    for match in variables(compose):
        if match.group(2) and match.group(2).endswith("?"):
            assert match.group(3).strip().startswith("set "), match.group(0)


def test_mounts_point_at_the_committed_broker_config_and_grafana_provisioning(
        compose: dict[str, Any]) -> None:
    services = compose["services"]
    mosquitto = services["mosquitto"]["volumes"]
    assert "./mosquitto/mosquitto.conf:/mosquitto/config/mosquitto.conf:ro" in mosquitto
    assert "./mosquitto/acl:/mosquitto/config/acl:ro" in mosquitto
    for local in ("mosquitto/mosquitto.conf", "mosquitto/acl", "central/Dockerfile"):
        assert (REPO / "deploy" / local).is_file(), local
    grafana = services["grafana"]["volumes"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in grafana
    # The dashboards are mounted where the provisioned provider looks for them, and every
    # variable the provisioned data source reads is set in Grafana's environment.
    provider = yaml.safe_load((REPO / "deploy/grafana/provisioning/dashboards/greenguard.yaml")
                              .read_text(encoding="utf-8"))
    provider_path = provider["providers"][0]["options"]["path"]
    assert f"./grafana/dashboards:{provider_path}:ro" in [v.split("  ")[0] for v in grafana]
    datasource = (REPO / "deploy/grafana/provisioning/datasources/greenguard-influxdb.yaml"
                  ).read_text(encoding="utf-8")
    wanted = set(re.findall(r"\$\{(\w+)\}", datasource))
    assert wanted, "the data source reads its settings from the environment"
    assert wanted <= set(services["grafana"]["environment"]), wanted
    assert services["central"]["build"]["dockerfile"] == "deploy/central/Dockerfile"
    # The broker's only published port is TLS; databases stay on the host's loopback.
    assert services["mosquitto"]["ports"] == ["8883:8883"]
    assert all(p.startswith("127.0.0.1:") for s in ("influxdb", "central")
               for p in services[s]["ports"])
    assert "ports" not in services["postgres"]


def test_the_central_uses_tls_towards_the_broker(compose: dict[str, Any]) -> None:
    env = compose["services"]["central"]["environment"]
    assert env["GREENGUARD_MQTT_PORT"] == "8883"
    assert {env[k].rsplit("/", 1)[1] for k in ("GREENGUARD_MQTT_CA_FILE",
                                                "GREENGUARD_MQTT_CERT_FILE",
                                                "GREENGUARD_MQTT_KEY_FILE")} == {
        "ca.crt", "central.crt", "central.key"}
