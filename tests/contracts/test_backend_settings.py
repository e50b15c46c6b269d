"""Choosing the store backend: SQLite by default, PostgreSQL with a DSN whose password is
never part of the DSN; the shared-subscription topics of scale-out workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.config import load_settings
from central.errors import ConfigError
from central.ingest import uplink_subscriptions

DSN = "host=db.example port=5432 dbname=greenguard user=greenguard"


def test_sqlite_stays_the_default(tmp_path: Path) -> None:
    s = load_settings(institution_config=tmp_path / "i.yaml")
    assert (s.store, s.postgres_dsn, s.mqtt_share_group) == ("sqlite", None, None)
    assert s.postgres_secret() is None


def test_postgres_needs_a_dsn(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="postgres_dsn"):
        load_settings(institution_config=tmp_path / "i.yaml", store="postgres")


@pytest.mark.parametrize("dsn", [DSN + " password=hunter2",
                                 "postgresql://greenguard:hunter2@db/greenguard",
                                 "postgresql://db/greenguard?password=hunter2"])
def test_a_password_in_the_dsn_is_refused(tmp_path: Path, dsn: str) -> None:
    with pytest.raises(ConfigError, match="must not contain a password") as info:
        load_settings(institution_config=tmp_path / "i.yaml", store="postgres",
                      postgres_dsn=dsn)
    assert "hunter2" not in str(info.value)


def test_password_from_a_file_or_the_environment(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "pg.secret"
    secret.write_text("s3cret\n", encoding="utf-8")
    secret.chmod(0o600)
    s = load_settings(institution_config=tmp_path / "i.yaml", store="postgres",
                      postgres_dsn=DSN, postgres_password_file=secret)
    assert s.postgres_secret() == "s3cret"
    assert "s3cret" not in repr(s)
    missing = load_settings(institution_config=tmp_path / "i.yaml", store="postgres",
                            postgres_dsn=DSN, postgres_password_file=tmp_path / "nope")
    with pytest.raises(ConfigError, match=r"postgres_password_file.*nope"):
        missing.postgres_secret()
    monkeypatch.setenv("GREENGUARD_POSTGRES_PASSWORD", "from-env")
    s = load_settings(institution_config=tmp_path / "i.yaml", store="postgres",
                      postgres_dsn=DSN)
    assert s.postgres_secret() == "from-env"
    assert "from-env" not in repr(s)
    with pytest.raises(ConfigError, match="not both"):
        load_settings(institution_config=tmp_path / "i.yaml", store="postgres",
                      postgres_dsn=DSN, postgres_password_file=secret)


def test_shared_subscription_topics() -> None:
    assert uplink_subscriptions() == ["gg/v1/+/+/telemetry", "gg/v1/+/+/events",
                                      "gg/v1/+/+/state"]
    assert uplink_subscriptions("+", "central") == ["$share/central/gg/v1/+/+/telemetry",
                                                    "$share/central/gg/v1/+/+/events",
                                                    "$share/central/gg/v1/+/+/state"]


def test_share_group_must_be_an_id(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mqtt_share_group"):
        load_settings(institution_config=tmp_path / "i.yaml", mqtt_share_group="a/#")
