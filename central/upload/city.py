"""A city's platform access document as configuration (one YAML per city).

The city's own access document wins over the guideline: framing, period, heartbeat,
encryption, the MD5 order, the text encoding, the ids per building and the item tree are
fields here, not code. Validation names the field and value of every problem
(`ConfigError.problems`) and never touches the network. The AES key is read from a file or
an environment variable, never from the YAML, and never appears in a repr or a log line.
"""

from __future__ import annotations

import codecs
import enum
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from central import codes
from central.errors import ConfigError, Problem
from central.institution import InstitutionConfig
from central.validation import problems_from, read_yaml
from protocols.errors import WireError
from protocols.platform.codec import Encrypt, WireSettings
from protocols.platform.crypto import AesCbc, Md5Order, Padding
from protocols.platform.framing import Framing
from protocols.platform.ids import check_gateway_id, parse_building_id

Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Endpoint(_Model):
    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)]


class IvSource(enum.StrEnum):
    KEY = "key"  # the IV is the key (most access documents)


class Encryption(_Model):
    encrypt: Encrypt = Encrypt.DATA
    padding: Padding = Padding.PKCS7
    key_file: Path | None = None  # 16 characters, or 32 hex digits
    key_env: str | None = None
    iv: IvSource | Annotated[str, Field(pattern=r"^[0-9a-fA-F]{32}$")] = IvSource.KEY

    @model_validator(mode="after")
    def _one_key(self) -> Encryption:
        if (self.key_file is None) == (self.key_env is None):
            raise ValueError("give exactly one of key_file and key_env (the key is never "
                             "written in the city file)")
        return self


class BuildingIds(_Model):
    building_id: str
    gateway_id: str = "01"


class CityConfig(_Model):
    city: Annotated[str, Field(min_length=1, max_length=100)]
    platform: Endpoint
    framing: Framing
    period_min: Literal[15, 60] = 15
    heartbeat_s: Positive = 60.0
    encryption: Encryption
    md5_order: Md5Order = Md5Order.SEQUENCE_KEY
    encoding: str = "utf-8"
    zipped: bool = False
    decimals: Annotated[int, Field(ge=0, le=6)] = 2
    timeout_s: Positive = 10.0
    rate_per_s: Positive = 5.0  # backlog frames per second, at most
    max_per_pass: Annotated[int, Field(ge=1)] = 500  # periods per building per pass
    settle_min: Annotated[float, Field(ge=0)] = 5.0  # upload a period this long after its end
    resend_window_h: Annotated[float, Field(ge=0)] = 48.0  # re-check accepted periods
    start: date  # the first period uploaded (local midnight of this day)
    buildings: dict[str, BuildingIds]  # institution building id -> platform ids
    items: list[str] | None = None  # None: every item a meter feeds

    @model_validator(mode="after")
    def _checks(self) -> CityConfig:
        problems: list[Problem] = []
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            problems.append(("encoding", self.encoding, "unknown text encoding (utf-8, "
                             "gb2312, utf-16-le …)"))
        seen: dict[str, str] = {}
        for name, ids in self.buildings.items():
            for field, check in (("building_id", parse_building_id),
                                 ("gateway_id", check_gateway_id)):
                try:
                    check(getattr(ids, field), f"buildings.{name}.{field}")
                except WireError as exc:
                    problems.append((exc.field, exc.value, exc.reason))
            pair = f"{ids.building_id}/{ids.gateway_id}"
            if pair in seen:
                problems.append((f"buildings.{name}.building_id", ids.building_id,
                                 f"same building and gateway id as building {seen[pair]}"))
            seen.setdefault(pair, name)
        table = codes.items()
        known = set(table.energy_categories) | set(table.electricity_items)
        for i, code in enumerate(self.items or []):
            if code not in known:
                problems.append((f"items[{i}]", code, "not an energy category or electricity "
                                 "sub-item of central/codes/items.yaml"))
        if problems:
            raise PydanticCustomError("cross_field", "{problems}", {"problems": problems})
        return self

    def check_against(self, institution: InstitutionConfig) -> None:
        """`ConfigError` for a city building the institution does not have."""
        known = {b.id for b in institution.buildings}
        problems: list[Problem] = [
            (f"buildings.{name}", name, f"not a building of institution "
             f"{institution.institution.id} (known: {', '.join(sorted(known))})")
            for name in self.buildings if name not in known]
        if problems:
            raise ConfigError(f"city {self.city}", problems)


@dataclass(frozen=True)
class Secret:
    """The shared key: text for the MD5, bytes for AES. Shown as *** everywhere."""

    text: str
    aes_key: bytes

    def __repr__(self) -> str:
        return "Secret(***)"


def read_secret(enc: Encryption, source: str, env: dict[str, str] | None = None) -> Secret:
    """The key from `key_file` or `key_env`: 16 characters (the text is the AES key) or
    32 hex digits (the bytes are); `ConfigError` naming the field, never the key."""
    environ = os.environ if env is None else env
    if enc.key_file is not None:
        field, where = "encryption.key_file", str(enc.key_file)
        try:
            text = enc.key_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(source, [(field, where, f"cannot read: {exc}")]) from None
    else:
        field, where = "encryption.key_env", str(enc.key_env)
        text = environ.get(str(enc.key_env), "").strip()
        if not text:
            raise ConfigError(source, [(field, where, "environment variable unset or empty")])
    raw = text.encode("utf-8")
    if len(raw) == 16:
        return Secret(text, raw)
    if len(text) == 32:
        try:
            return Secret(text, bytes.fromhex(text))
        except ValueError:
            pass
    raise ConfigError(source, [(field, where, f"the key must be 16 characters or 32 hex "
                                f"digits (it has {len(raw)} bytes; not shown)")])


def load_city(path: str | Path) -> CityConfig:
    source = str(path)
    data: Any = read_yaml(Path(path))
    try:
        city = CityConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, problems_from(exc)) from None
    base = Path(path).parent
    key_file = city.encryption.key_file
    if key_file is not None and not key_file.is_absolute():  # relative to the city file
        enc = city.encryption.model_copy(update={"key_file": base / key_file})
        city = city.model_copy(update={"encryption": enc})
    return city


def wire_settings(city: CityConfig, secret: Secret | None) -> WireSettings:
    enc = city.encryption
    cipher = None
    if enc.encrypt is not Encrypt.NONE:
        if secret is None:
            raise ConfigError(f"city {city.city}", [("encryption.encrypt", enc.encrypt.value,
                                                     "needs the key")])
        iv = None if enc.iv == IvSource.KEY else bytes.fromhex(str(enc.iv))
        cipher = AesCbc(secret.aes_key, iv, enc.padding)
    return WireSettings(framing=city.framing, cipher=cipher, encrypt=enc.encrypt,
                        encoding=city.encoding, zipped=city.zipped, decimals=city.decimals)
