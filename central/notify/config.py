"""notify.yaml: channels (shared), and per institution the recipients, routes, quiet hours
and the life of an alarm (escalation, reminders, flapping window).

Validated before any I/O with field-named errors (`ConfigError`, e.g.
`institutions.demo-school.routes[0].stages[1].recipients[0]: unknown channel or list`).
Secrets are never values in the file: `{env: NAME}` or `{file: path}`, read at start-up.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from central.errors import ConfigError, Problem
from central.notify.channels import (
    Channel,
    DingTalkChannel,
    EmailChannel,
    FeishuChannel,
    SmsChannel,
    SmtpSecurity,
    WebhookChannel,
    WeComChannel,
)
from central.validation import problems_from, read_yaml

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
HHMM = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")]
EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
PHONE = re.compile(r"^\+?\d{6,15}$")
KIND_ZH = {"leak": "漏水", "lights_on": "灯未关", "bin_full": "垃圾桶满溢",
           "actuation_failed": "控制失败", "offline": "设备离线", "device_offline": "设备离线"}
KIND_SEVERITY = {"leak": "critical", "actuation_failed": "major", "offline": "major",
                 "device_offline": "major", "lights_on": "minor", "bin_full": "minor"}
Severity = Literal["critical", "major", "minor", "info"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(_Model):
    """Where a secret lives: an environment variable or a file (first line, stripped)."""

    env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env or file")
        return self

    def resolve(self, field: str) -> SecretStr:
        if self.env is not None:
            value = os.environ.get(self.env)
            if not value:
                raise ConfigError("notify", [(field, f"env:{self.env}",
                                              "environment variable is not set")])
            return SecretStr(value)
        assert self.file is not None
        try:
            value = self.file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError("notify", [(field, str(self.file),
                                          f"cannot read: {exc.strerror}")]) from None
        if not value:
            raise ConfigError("notify", [(field, str(self.file), "file is empty")])
        return SecretStr(value)


class _ChannelBase(_Model):
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0


class WeComConfig(_ChannelBase):
    kind: Literal["wecom"]
    key: SecretRef
    url: str = WeComChannel.URL


class DingTalkConfig(_ChannelBase):
    kind: Literal["dingtalk"]
    access_token: SecretRef
    secret: SecretRef | None = None  # 加签; None: the robot uses keywords or an IP list
    keywords: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    url: str = DingTalkChannel.URL


class FeishuConfig(_ChannelBase):
    kind: Literal["feishu"]
    hook: SecretRef  # the last part of the hook URL
    secret: SecretRef | None = None  # 签名校验
    url: str = FeishuChannel.URL


class EmailConfig(_ChannelBase):
    kind: Literal["email"]
    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    security: SmtpSecurity = SmtpSecurity.STARTTLS
    sender: Annotated[str, Field(min_length=3)]
    username: str | None = None
    password: SecretRef | None = None
    ca_file: Path | None = None  # a private CA; default: the system's trust store

    @model_validator(mode="after")
    def _auth(self) -> EmailConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        if self.password is not None and self.security is SmtpSecurity.NONE:
            raise ValueError("a password is never sent without TLS (security: none)")
        return self


class WebhookConfig(_ChannelBase):
    kind: Literal["webhook"]
    url: SecretRef  # URLs of webhooks often carry a token
    secret: SecretRef | None = None


class SmsConfig(_ChannelBase):
    kind: Literal["sms"]
    url: Annotated[str, Field(pattern=r"^https?://\S+$")]
    body: dict[str, Any]
    headers: dict[str, str] = Field(default_factory=dict)
    secret: SecretRef | None = None
    ok_field: str | None = None
    ok_value: str = "0"
    max_chars: Annotated[int, Field(ge=20, le=1000)] = 300


ChannelConfig = Annotated[WeComConfig | DingTalkConfig | FeishuConfig | EmailConfig
                          | WebhookConfig | SmsConfig, Field(discriminator="kind")]


class Hours(_Model):
    start: HHMM
    end: HHMM  # before start: the window crosses midnight

    def contains(self, t: dt.time) -> bool:
        s, e = _minutes(self.start), _minutes(self.end)
        m = t.hour * 60 + t.minute
        return s <= m < e if s <= e else (m >= s or m < e)


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _critical() -> list[Severity]:
    return ["critical"]


class QuietHours(Hours):
    """Messages routed inside this window wait for its end, except these kinds and
    severities (a leak always goes out)."""

    except_kinds: list[str] = Field(default_factory=lambda: ["leak"])
    except_severities: list[Severity] = Field(default_factory=_critical)


class Stage(_Model):
    after_min: Annotated[float, Field(ge=0, le=7 * 24 * 60)] = 0.0
    recipients: Annotated[list[str], Field(min_length=1)]


class Route(_Model):
    name: Name
    kinds: list[str] = Field(default_factory=list)  # empty: every kind
    severities: list[Severity] = Field(
        default_factory=list)
    buildings: list[str] = Field(default_factory=list)
    hours: Hours | None = None  # only alarms raised inside these hours (local time)
    stages: Annotated[list[Stage], Field(min_length=1)]
    repeat_every_min: Annotated[float, Field(gt=0)] | None = None
    max_reminders: Annotated[int, Field(ge=0, le=100)] = 3
    delay_s: Annotated[float, Field(ge=0, le=3600)] = 0.0  # an alarm gone sooner: no message
    notify_cleared: bool = True

    @model_validator(mode="after")
    def _stages(self) -> Route:
        if self.stages[0].after_min != 0:
            raise ValueError("stages[0].after_min must be 0 (the first message goes at once)")
        for a, b in zip(self.stages, self.stages[1:], strict=False):
            if b.after_min <= a.after_min:
                raise ValueError("stages must have increasing after_min")
        return self


class Digest(_Model):
    """The daily digest for the energy liaison: yesterday's figures at `at` (local)."""

    at: HHMM = "08:00"
    recipients: Annotated[list[str], Field(min_length=1)]
    working_days_only: bool = True  # on the working calendar (调休 make-up days included)


class WeeklyDigest(_Model):
    """The weekly digest: the year-to-date compliance figures and their coverage, on the
    first working day on or after `weekday` (ISO: 1 = Monday) of each week, at `at`."""

    weekday: Annotated[int, Field(ge=1, le=7)] = 1
    at: HHMM | None = None  # None: the daily digest's time (08:00 without a daily digest)
    recipients: Annotated[list[str], Field(min_length=1)] | None = None  # None: the daily's
    working_days_only: bool = True  # a holiday on `weekday` moves it to the next working day


class InstitutionRouting(_Model):
    digest: Digest | None = None
    weekly: WeeklyDigest | None = None
    recipients: dict[Name, list[str]] = Field(default_factory=dict)
    routes: list[Route] = Field(default_factory=list)
    quiet_hours: QuietHours | None = None
    severities: dict[str, Severity] = Field(
        default_factory=dict)  # per alarm kind, over KIND_SEVERITY


class Retry(_Model):
    initial_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    max_s: Annotated[float, Field(gt=0, le=86_400)] = 600.0
    give_up_after_h: Annotated[float, Field(gt=0, le=24 * 14)] = 24.0


class NotifyConfig(_Model):
    dashboard_url: Annotated[str, Field(pattern=r"^https?://\S+$")] = "http://127.0.0.1:8080"
    # Base URL the acknowledgement links point to (default: dashboard_url).
    ack_url: Annotated[str, Field(pattern=r"^https?://\S+$")] | None = None
    ack_link_valid_h: Annotated[float, Field(gt=0, le=24 * 30)] = 72.0
    timezone: str = "Asia/Shanghai"
    channels: dict[Name, ChannelConfig] = Field(default_factory=dict)
    institutions: dict[str, InstitutionRouting] = Field(default_factory=dict)
    flap_window_s: Annotated[float, Field(ge=0, le=86_400)] = 300.0
    retry: Retry = Retry()

    @model_validator(mode="after")
    def _references(self) -> NotifyConfig:
        problems: list[Problem] = []
        for iid, inst in self.institutions.items():
            base = f"institutions.{iid}"
            for lname, entries in inst.recipients.items():
                for i, entry in enumerate(entries):
                    problems += self._entry(f"{base}.recipients.{lname}[{i}]", entry, inst,
                                            allow_lists=False)
            if inst.digest is not None:
                for i, entry in enumerate(inst.digest.recipients):
                    problems += self._entry(f"{base}.digest.recipients[{i}]", entry, inst,
                                            allow_lists=True)
            if inst.weekly is not None and inst.weekly.recipients is not None:
                for i, entry in enumerate(inst.weekly.recipients):
                    problems += self._entry(f"{base}.weekly.recipients[{i}]", entry, inst,
                                            allow_lists=True)
            elif inst.weekly is not None and inst.digest is None:
                problems.append((f"{base}.weekly.recipients", None,
                                 "required when there is no daily digest to take them from"))
            for r, route in enumerate(inst.routes):
                for s, stage in enumerate(route.stages):
                    for i, entry in enumerate(stage.recipients):
                        problems += self._entry(
                            f"{base}.routes[{r}].stages[{s}].recipients[{i}]", entry, inst,
                            allow_lists=True)
        if problems:
            raise PydanticCustomError("cross_field", "{summary}", {
                "summary": "; ".join(f"{f}: {why}" for f, _, why in problems),
                "problems": problems})
        return self

    def _entry(self, field: str, entry: str, inst: InstitutionRouting, *,
               allow_lists: bool) -> list[Problem]:
        if allow_lists and entry in inst.recipients:
            return []
        channel, _, address = entry.partition(":")
        config = self.channels.get(channel)
        if config is None:
            known = sorted(self.channels) + (sorted(inst.recipients) if allow_lists else [])
            return [(field, entry, f"unknown channel or recipient list (known: "
                                   f"{', '.join(known) or 'none'})")]
        if config.kind == "email" and not EMAIL.match(address):
            return [(field, entry, "an email channel needs channel:address@domain")]
        if config.kind == "sms" and not PHONE.match(address):
            return [(field, entry, "an sms channel needs channel:phone-number")]
        return []

    def weekly_schedule(self, iid: str) -> tuple[WeeklyDigest, str, list[str]] | None:
        """The institution's weekly digest with its time and recipient entries resolved
        (defaults from the daily digest), or None without one."""
        inst = self.institutions.get(iid, InstitutionRouting())
        w = inst.weekly
        if w is None:
            return None
        at = w.at or (inst.digest.at if inst.digest is not None else "08:00")
        recipients = w.recipients or (inst.digest.recipients if inst.digest else [])
        return w, at, self.expand(iid, recipients)

    def expand(self, iid: str, entries: list[str]) -> list[str]:
        """Recipient entries with named lists replaced by their members, de-duplicated."""
        inst = self.institutions.get(iid, InstitutionRouting())
        out: list[str] = []
        for e in entries:
            for member in inst.recipients.get(e, [e]):
                if member not in out:
                    out.append(member)
        return out


_KIND_IN_PATH = re.compile(r"^(channels\.[^.]+)\.(wecom|dingtalk|feishu|email|webhook|sms)(\.|$)")


def parse_notify(data: Any, source: str = "notify.yaml") -> NotifyConfig:
    try:
        return NotifyConfig.model_validate(data if data is not None else {})
    except ValidationError as exc:
        # pydantic puts the union's tag in the path (channels.d.dingtalk.secret): drop it.
        problems = [(_KIND_IN_PATH.sub(r"\1\3", f), v, why)
                    for f, v, why in problems_from(exc)]
        raise ConfigError(source, problems) from None


def load_notify(path: Path) -> NotifyConfig:
    return parse_notify(read_yaml(path), str(path))


def build_channels(config: NotifyConfig) -> dict[str, Channel]:
    """The channel adapters, secrets resolved; `ConfigError` naming the field of a missing
    environment variable or unreadable secret file. Opens no connection."""
    out: dict[str, Channel] = {}
    for name, c in config.channels.items():
        f = f"channels.{name}"
        if isinstance(c, WeComConfig):
            out[name] = WeComChannel(name, key=c.key.resolve(f"{f}.key"), url=c.url,
                                     timeout_s=c.timeout_s)
        elif isinstance(c, DingTalkConfig):
            out[name] = DingTalkChannel(
                name, access_token=c.access_token.resolve(f"{f}.access_token"),
                secret=c.secret.resolve(f"{f}.secret") if c.secret else None,
                keywords=c.keywords, url=c.url, timeout_s=c.timeout_s)
        elif isinstance(c, FeishuConfig):
            out[name] = FeishuChannel(
                name, hook=c.hook.resolve(f"{f}.hook"),
                secret=c.secret.resolve(f"{f}.secret") if c.secret else None, url=c.url,
                timeout_s=c.timeout_s)
        elif isinstance(c, EmailConfig):
            out[name] = EmailChannel(
                name, host=c.host, port=c.port, sender=c.sender, security=c.security,
                username=c.username,
                password=c.password.resolve(f"{f}.password") if c.password else None,
                ca_file=str(c.ca_file) if c.ca_file else None, timeout_s=c.timeout_s)
        elif isinstance(c, WebhookConfig):
            out[name] = WebhookChannel(
                name, url=c.url.resolve(f"{f}.url"),
                secret=c.secret.resolve(f"{f}.secret") if c.secret else None,
                timeout_s=c.timeout_s)
        else:
            out[name] = SmsChannel(
                name, url=c.url, body=c.body, headers=c.headers,
                secret=c.secret.resolve(f"{f}.secret") if c.secret else None,
                ok_field=c.ok_field, ok_value=c.ok_value, max_chars=c.max_chars,
                timeout_s=c.timeout_s)
    return out
