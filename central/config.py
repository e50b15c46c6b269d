"""The central's process settings, from GREENGUARD_* environment variables or CLI flags,
validated at start-up before any I/O. The institution itself is central/institution.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from central.errors import ConfigError, Problem
from central.institution import SITE_RE, Id
from central.secretfile import read_secret_file
from central.validation import problems_from

# key=value `password=...` or a URI's `user:password@`
_DSN_PASSWORD = re.compile(r"(^|\s)password\s*=|://[^/@\s]*:[^/@\s]*@|[?&]password=", re.I)


class TelemetrySettings(BaseModel):
    """InfluxDB 2 telemetry store, written in addition to the SQL store (docs/influxdb.md).
    The token is never a setting: it is read at start-up from the environment variable
    named by `token_env`."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")]
    # "v2": /api/v2/write + Flux (InfluxDB 2.x); "v1": /write + InfluxQL /query (InfluxDB
    # 1.x, and 3.x's v1 compatibility API); `bucket` is then the database ("db" or "db/rp").
    api: Literal["v2", "v1"] = "v2"
    org: Annotated[str, Field(min_length=1)]
    bucket: Annotated[str, Field(min_length=1)]
    token_env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = (
        "GREENGUARD_INFLUX_TOKEN")
    batch_lines: Annotated[int, Field(ge=1, le=100_000)] = 5000
    attempts: Annotated[int, Field(ge=1, le=10)] = 3
    retry_initial_s: Annotated[float, Field(ge=0, le=10)] = 0.2
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 5.0
    cooldown_s: Annotated[float, Field(ge=0, le=600)] = 5.0
    # The central's computed figures (central/figures_export.py) are recomputed this often
    # (the days that new data touched, and today); 0 publishes none.
    figures_every_s: Annotated[float, Field(ge=0, le=86400)] = 60.0


class CentralSettings(BaseSettings):
    """Process settings, from GREENGUARD_* environment variables or CLI flags. Nested
    settings use `__`: GREENGUARD_TELEMETRY__URL, GREENGUARD_TELEMETRY__BUCKET, ..."""

    model_config = SettingsConfigDict(env_prefix="GREENGUARD_", extra="forbid", frozen=True,
                                      env_nested_delimiter="__")

    institution_config: Path
    database: Path = Path("central.sqlite")
    ledger_database: Path | None = None  # bills, fuel, waste; default: <database>.ledger.sqlite
    mqtt_host: str = "127.0.0.1"
    mqtt_port: Annotated[int, Field(ge=1, le=65535)] = 1883
    mqtt_site: str = "+"  # "+" subscribes to every site on the broker
    mqtt_client_id: Id = "greenguard-central"
    mqtt_keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    # TLS to the production broker (deploy/mosquitto): the CA, and the central's client
    # certificate and key from `greenguard certs` (its CN is the ACL's greenguard-central).
    mqtt_ca_file: Path | None = None
    mqtt_cert_file: Path | None = None
    mqtt_key_file: Path | None = None
    http_host: str = "127.0.0.1"
    http_port: Annotated[int, Field(ge=1, le=65535)] = 8080
    # /metrics needs no token; it lists the edges (site, edge labels) only when this is on
    # (docs/monitoring.md): turn it on where only the scraper reaches /metrics.
    metrics_edges: bool = False
    # Request body limits (central/uploads.py; 413 above them, checked before reading).
    http_max_body_bytes: Annotated[int, Field(ge=1024)] = 2 << 20
    http_max_import_bytes: Annotated[int, Field(ge=1024)] = 32 << 20
    # Store backend: embedded SQLite (default) or a shared PostgreSQL (docs/scale-out.md).
    # The DSN never holds the password: it comes from GREENGUARD_POSTGRES_PASSWORD, from
    # postgres_password_file, or from libpq's own PGPASSWORD / ~/.pgpass.
    store: Literal["sqlite", "postgres"] = "sqlite"
    postgres_dsn: str | None = None
    postgres_password_file: Path | None = None
    postgres_password: pydantic.SecretStr | None = None  # environment only; no CLI flag
    # MQTT 5 shared subscription group: N workers with the same group share the uplink.
    mqtt_share_group: Id | None = None
    # Ingest refuses a batch reaching this far past its stream's watermark (admission.py).
    ingest_max_seq_ahead: Annotated[int, Field(ge=1000)] = 1_000_000_000
    # Ed25519 key that signs acks and commands (central/control.py); created at first start
    # when missing. Default: <database>.control.key
    control_key_file: Path | None = None
    # A broker with a password file (the demo's): the user, and the password from
    # GREENGUARD_MQTT_PASSWORD or mqtt_password_file.
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None  # environment only; no CLI flag
    mqtt_password_file: Path | None = None

    def backend_problems(self) -> list[Problem]:
        """Store settings that cannot work. Checked here rather than by pydantic, whose
        errors would quote every input, the DSN and password included."""
        problems: list[Problem] = []
        if self.store == "postgres" and not self.postgres_dsn:
            problems.append(("postgres_dsn", None, "store 'postgres' needs a DSN "
                                                   "(GREENGUARD_POSTGRES_DSN)"))
        if self.postgres_dsn and _DSN_PASSWORD.search(self.postgres_dsn):
            problems.append(("postgres_dsn", "<redacted>", "must not contain a password; use "
                             "GREENGUARD_POSTGRES_PASSWORD or postgres_password_file"))
        if self.postgres_password is not None and self.postgres_password_file is not None:
            problems.append(("postgres_password_file", str(self.postgres_password_file),
                             "give GREENGUARD_POSTGRES_PASSWORD or postgres_password_file, "
                             "not both"))
        return problems

    def postgres_secret(self) -> str | None:
        """The PostgreSQL password, read at start; None lets libpq find one itself."""
        if problems := self.backend_problems():
            raise ConfigError("settings", problems)
        if self.postgres_password is not None:
            return self.postgres_password.get_secret_value()
        if self.postgres_password_file is None:
            return None
        # Mode 0600 or stricter, not empty, not YAML (central/secretfile.py).
        return read_secret_file(self.postgres_password_file, "postgres_password_file",
                                keep_spaces=True)
    telemetry: TelemetrySettings | None = None  # InfluxDB; None: the SQL store only
    # API tokens: the HS256 signing secret (or a file holding it) and the token table.
    auth_secret: SecretStr | None = None
    auth_secret_file: Path | None = None
    auth_database: Path | None = None  # default: <database>.auth.sqlite
    # Alarm notifications (docs/notifications.md); queue file <database>.notify.sqlite.
    notify_config: Path | None = None

    @property
    def ledger_path(self) -> Path:
        if self.ledger_database is not None:
            return self.ledger_database
        return self.database.with_name(self.database.stem + ".ledger.sqlite")

    def ledger_path_for(self, institution: str, *, only: bool) -> Path:
        """The ledger of one institution: `ledger_path` when the central serves only one
        (unchanged from single-institution installs), else one file per institution."""
        if only:
            return self.ledger_path
        base = self.ledger_database or self.database
        return base.with_name(f"{base.stem}.{institution}.ledger.sqlite")

    def mqtt_secret(self) -> str | None:
        """The MQTT password, read at start; None without one."""
        if self.mqtt_password_file is not None:
            # Mode 0600 or stricter, not empty, not YAML (central/secretfile.py).
            return read_secret_file(self.mqtt_password_file, "mqtt_password_file")
        return None if self.mqtt_password is None else self.mqtt_password.get_secret_value()

    @property
    def control_key_path(self) -> Path:
        if self.control_key_file is not None:
            return self.control_key_file
        return self.database.with_name(self.database.stem + ".control.key")

    @property
    def auth_path(self) -> Path:
        if self.auth_database is not None:
            return self.auth_database
        return self.database.with_name(self.database.stem + ".auth.sqlite")

    def auth_secret_value(self) -> str | None:
        """The signing secret from `auth_secret_file` or `auth_secret` (unchecked)."""
        if self.auth_secret_file is not None:
            # Mode 0600 or stricter, not empty, not YAML (central/secretfile.py).
            return read_secret_file(self.auth_secret_file, "auth_secret_file")
        return None if self.auth_secret is None else self.auth_secret.get_secret_value()

    @field_validator("mqtt_site")
    @classmethod
    def _site(cls, value: str) -> str:
        if value != "+" and not SITE_RE.match(value):
            raise ValueError("must be '+' (all sites) or a site id")
        return value

    @field_validator("mqtt_ca_file", "mqtt_cert_file", "mqtt_key_file")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError("no such file")
        return value

    @model_validator(mode="after")
    def _tls_complete(self) -> CentralSettings:
        if (self.mqtt_cert_file is None) != (self.mqtt_key_file is None):
            raise ValueError("mqtt_cert_file and mqtt_key_file go together")
        if self.mqtt_cert_file is not None and self.mqtt_ca_file is None:
            raise ValueError("mqtt_cert_file needs mqtt_ca_file (the CA of the broker)")
        return self


def load_settings(**overrides: Any) -> CentralSettings:
    """Environment plus explicit overrides (CLI flags); None overrides are ignored."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        settings = CentralSettings(**given)
    except ValidationError as exc:
        raise ConfigError("settings", problems_from(exc)) from None
    if problems := settings.backend_problems():
        raise ConfigError("settings", problems)
    return settings
