"""Channels: one port (`Channel.send(message, recipient) -> Answer`) and its adapters.

Every adapter turns the same `Message` into what its receiver expects and classifies the
receiver's answer into three outcomes the queue acts on:

- `ok`: delivered; the queue records it and never sends that key again;
- `retry`: the receiver is down, slow, rate-limiting or answered 5xx; try again later;
- `fail`: the receiver refused the message for good (wrong key, bad signature, a 4xx);
  retrying cannot help, so the delivery is marked failed and counted.

Adapters never raise for a send: network errors are answers too. Secrets (bot keys, access
tokens, signing secrets, passwords) are held as `SecretStr` and scrubbed from every answer
text before it reaches the delivery log (`redact`).

Formats follow the vendors' public documentation:

- WeCom (企业微信) group robot: POST `…/cgi-bin/webhook/send?key=KEY` with
  `{"msgtype": "markdown", "markdown": {"content": …}}` (≤ 4096 bytes); answer
  `{"errcode": 0, "errmsg": "ok"}`.
- DingTalk (钉钉) custom robot: POST `…/robot/send?access_token=T&timestamp=MS&sign=S` where
  `S = urlencode(base64(HMAC-SHA256(key=secret, msg=f"{MS}\\n{secret}")))`; body
  `{"msgtype": "markdown", "markdown": {"title", "text"}, "at": {"atMobiles", "isAtAll"}}`;
  a robot with keyword security refuses a message that contains none of its keywords
  (errcode 310000), so the adapter makes sure the title carries one.
- Feishu (飞书) custom bot: POST `…/open-apis/bot/v2/hook/HOOK` with `timestamp` (seconds)
  and `sign = base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b""))` in the JSON body;
  answer `{"code": 0, …}`.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import enum
import hashlib
import hmac
import json
import smtplib
import ssl
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import httpx
from pydantic import SecretStr

ANSWER_MAX = 500  # characters of a receiver's answer kept in the delivery log


class Outcome(enum.StrEnum):
    OK = "ok"
    RETRY = "retry"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Answer:
    outcome: Outcome
    detail: str  # the receiver's answer or the error, secrets removed, shortened


@dataclass(frozen=True, slots=True)
class Message:
    """One notification, channel-neutral. `key` is the idempotency key (alarm episode,
    recipient, stage): receivers that can deduplicate get it (webhook `Idempotency-Key`,
    e-mail `Message-ID`), people see its short form as 编号."""

    key: str
    title: str
    lines: tuple[str, ...]
    link: str | None = None
    ack_link: str | None = None
    severity: str = "alarm"
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return hashlib.sha256(self.key.encode()).hexdigest()[:10]

    def text(self) -> str:
        """Plain text (e-mail, SMS, Feishu)."""
        out = [self.title, *self.lines]
        if self.link:
            out.append(f"查看：{self.link}")
        if self.ack_link:
            out.append(f"确认：{self.ack_link}")
        out.append(f"编号：{self.ref}")
        return "\n".join(out)

    def markdown(self) -> str:
        """The markdown subset WeCom and DingTalk both render (headings, bold, links)."""
        out = [f"### {self.title}", *(f"> {line}" for line in self.lines)]
        links = []
        if self.link:
            links.append(f"[查看详情]({self.link})")
        if self.ack_link:
            links.append(f"[确认告警]({self.ack_link})")
        if links:
            out.append("  ".join(links))
        out.append(f"编号：{self.ref}")
        return "\n\n".join(out)


def redact(text: str, secrets: Iterable[str]) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "***")
            quoted = urllib.parse.quote(s, safe="")
            if quoted != s:
                text = text.replace(quoted, "***")
    return text if len(text) <= ANSWER_MAX else text[:ANSWER_MAX - 3] + "..."


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's `sign` query value (already URL-encoded, as its docs show)."""
    string_to_sign = f"{timestamp_ms}\n{secret}"
    digest = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest))


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu's `sign`: the string to sign is the HMAC key, the message is empty."""
    string_to_sign = f"{timestamp_s}\n{secret}"
    digest = hmac.new(string_to_sign.encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def webhook_signature(secret: str, timestamp_s: int, body: bytes) -> str:
    """Generic webhook: `sha256=` + hex HMAC-SHA256 over `"{timestamp}." + body`."""
    mac = hmac.new(secret.encode(), f"{timestamp_s}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class Channel(abc.ABC):
    """The port. `recipient` is the address after the channel name in a recipient entry
    ("" for a group bot; a mobile to @-mention, an e-mail address, a phone number)."""

    name: str

    @abc.abstractmethod
    async def send(self, message: Message, recipient: str) -> Answer:
        """Deliver once; never raises for receiver or network problems."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def secrets(self) -> tuple[str, ...]:
        return ()


class FakeChannel(Channel):
    """For unit tests of the queue and lifecycle: answers from a script, records sends."""

    def __init__(self, name: str = "fake", answers: Iterable[Outcome] = ()) -> None:
        self.name = name
        self.script = list(answers)
        self.sent: list[tuple[Message, str]] = []

    async def send(self, message: Message, recipient: str) -> Answer:
        outcome = self.script.pop(0) if self.script else Outcome.OK
        if outcome is Outcome.OK:
            self.sent.append((message, recipient))
        return Answer(outcome, outcome.value)


class HttpChannel(Channel):
    """Common HTTP handling: timeouts and network errors retry, 429/5xx retry, 4xx and
    redirects fail (redirects are not followed: a moved webhook is a configuration error)."""

    def __init__(self, name: str, *, timeout_s: float = 10.0,
                 client: httpx.AsyncClient | None = None) -> None:
        self.name = name
        self._client = client if client is not None else httpx.AsyncClient(timeout=timeout_s)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _post(self, url: str, *, content: bytes, headers: Mapping[str, str],
                    method: str = "POST") -> tuple[Answer | None, httpx.Response | None]:
        try:
            response = await self._client.request(method, url, content=content,
                                                  headers=dict(headers))
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            return Answer(Outcome.RETRY, redact(f"{type(exc).__name__}: {reason}",
                                                self.secrets())), None
        if response.status_code == 429 or response.status_code >= 500:
            return Answer(Outcome.RETRY, self._said(response)), response
        if not 200 <= response.status_code < 300:  # 4xx, and redirects: a wrong URL
            return Answer(Outcome.FAIL, self._said(response)), response
        return None, response

    def _said(self, response: httpx.Response) -> str:
        return redact(f"HTTP {response.status_code} {response.text}", self.secrets())

    def _json_answer(self, response: httpx.Response, code_field: str,
                     retry_codes: frozenset[int]) -> Answer:
        said = self._said(response)
        try:
            body = response.json()
            code = int(body.get(code_field, body.get("StatusCode", -1)))
        except (ValueError, TypeError, AttributeError):
            return Answer(Outcome.RETRY, said)
        if code == 0:
            return Answer(Outcome.OK, said)
        return Answer(Outcome.RETRY if code in retry_codes else Outcome.FAIL, said)


def _json(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


_JSON = {"Content-Type": "application/json; charset=utf-8"}


class WeComChannel(HttpChannel):
    URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
    RATE_LIMITED = frozenset({45009, -1})  # frequency limit; system busy
    MAX_BYTES = 4096

    def __init__(self, name: str, *, key: SecretStr, url: str = URL, **kw: Any) -> None:
        super().__init__(name, **kw)
        self.key = key
        self.url = url

    def secrets(self) -> tuple[str, ...]:
        return (self.key.get_secret_value(),)

    async def send(self, message: Message, recipient: str) -> Answer:
        content = message.markdown()
        if recipient:  # WeCom markdown mentions by userid: <@userid>
            content += f"\n<@{recipient}>"
        while len(content.encode()) > self.MAX_BYTES:
            content = content[:-64]
        url = f"{self.url}?key={urllib.parse.quote(self.key.get_secret_value(), safe='')}"
        answer, response = await self._post(url, content=_json(
            {"msgtype": "markdown", "markdown": {"content": content}}), headers=_JSON)
        if answer is not None or response is None:
            return answer or Answer(Outcome.RETRY, "no answer")
        return self._json_answer(response, "errcode", self.RATE_LIMITED)


class DingTalkChannel(HttpChannel):
    URL = "https://oapi.dingtalk.com/robot/send"
    RATE_LIMITED = frozenset({130101, -1})  # 20 messages a minute per robot; system busy

    def __init__(self, name: str, *, access_token: SecretStr, secret: SecretStr | None = None,
                 keywords: Iterable[str] = (), url: str = URL,
                 now_ms: Any = None, **kw: Any) -> None:
        super().__init__(name, **kw)
        self.access_token = access_token
        self.secret = secret
        self.keywords = tuple(keywords)
        self.url = url
        self._now_ms = now_ms

    def secrets(self) -> tuple[str, ...]:
        out = [self.access_token.get_secret_value()]
        if self.secret is not None:
            out.append(self.secret.get_secret_value())
        return tuple(out)

    def _timestamp_ms(self) -> int:
        return int(self._now_ms() if self._now_ms is not None else time.time() * 1000)

    async def send(self, message: Message, recipient: str) -> Answer:
        title = message.title
        text = message.markdown()
        if self.keywords and not any(k in title or k in text for k in self.keywords):
            title = f"{self.keywords[0]} {title}"
            text = f"{self.keywords[0]}\n\n{text}"
        at: dict[str, Any] = {"isAtAll": False}
        if recipient:
            at["atMobiles"] = [recipient]
            text += f"\n\n@{recipient}"
        query = f"access_token={urllib.parse.quote(self.access_token.get_secret_value())}"
        if self.secret is not None:
            ts = self._timestamp_ms()
            query += f"&timestamp={ts}&sign={dingtalk_sign(self.secret.get_secret_value(), ts)}"
        answer, response = await self._post(f"{self.url}?{query}", content=_json(
            {"msgtype": "markdown", "markdown": {"title": title, "text": text}, "at": at}),
            headers=_JSON)
        if answer is not None or response is None:
            return answer or Answer(Outcome.RETRY, "no answer")
        return self._json_answer(response, "errcode", self.RATE_LIMITED)


class FeishuChannel(HttpChannel):
    URL = "https://open.feishu.cn/open-apis/bot/v2/hook/"
    RATE_LIMITED = frozenset({9499, 11232, 11233})  # too many requests; frequency limits

    def __init__(self, name: str, *, hook: SecretStr, secret: SecretStr | None = None,
                 url: str = URL, now_s: Any = None, **kw: Any) -> None:
        super().__init__(name, **kw)
        self.hook = hook
        self.secret = secret
        self.url = url
        self._now_s = now_s

    def secrets(self) -> tuple[str, ...]:
        out = [self.hook.get_secret_value()]
        if self.secret is not None:
            out.append(self.secret.get_secret_value())
        return tuple(out)

    async def send(self, message: Message, recipient: str) -> Answer:
        paragraphs: list[list[dict[str, str]]] = [
            [{"tag": "text", "text": line}] for line in message.lines]
        links = []
        if message.link:
            links.append({"tag": "a", "text": "查看详情", "href": message.link})
        if message.ack_link:
            links.append({"tag": "a", "text": " 确认告警", "href": message.ack_link})
        if links:
            paragraphs.append(links)
        paragraphs.append([{"tag": "text", "text": f"编号：{message.ref}"}])
        if recipient:
            paragraphs.append([{"tag": "at", "user_id": recipient}])
        body: dict[str, Any] = {"msg_type": "post", "content": {"post": {"zh_cn": {
            "title": message.title, "content": paragraphs}}}}
        if self.secret is not None:
            ts = int(self._now_s() if self._now_s is not None else time.time())
            body = {"timestamp": str(ts), "sign": feishu_sign(self.secret.get_secret_value(),
                                                              ts), **body}
        answer, response = await self._post(
            self.url + urllib.parse.quote(self.hook.get_secret_value(), safe=""),
            content=_json(body), headers=_JSON)
        if answer is not None or response is None:
            return answer or Answer(Outcome.RETRY, "no answer")
        return self._json_answer(response, "code", self.RATE_LIMITED)


class WebhookChannel(HttpChannel):
    """Generic JSON: the message's fields, `Idempotency-Key`, and with a secret
    `X-Greenguard-Timestamp` + `X-Greenguard-Signature` (`webhook_signature`)."""

    def __init__(self, name: str, *, url: SecretStr, secret: SecretStr | None = None,
                 **kw: Any) -> None:
        super().__init__(name, **kw)
        self.url = url
        self.secret = secret

    def secrets(self) -> tuple[str, ...]:
        out = [self.url.get_secret_value()]
        if self.secret is not None:
            out.append(self.secret.get_secret_value())
        return tuple(out)

    async def send(self, message: Message, recipient: str) -> Answer:
        body = _json({"key": message.key, "ref": message.ref, "recipient": recipient,
                      "severity": message.severity, "title": message.title,
                      "lines": list(message.lines), "text": message.text(),
                      "link": message.link, "ack_link": message.ack_link,
                      "data": dict(message.data)})
        headers = {**_JSON, "Idempotency-Key": message.key}
        if self.secret is not None:
            ts = int(time.time())
            headers["X-Greenguard-Timestamp"] = str(ts)
            headers["X-Greenguard-Signature"] = webhook_signature(
                self.secret.get_secret_value(), ts, body)
        answer, response = await self._post(self.url.get_secret_value(), content=body,
                                            headers=headers)
        if answer is not None or response is None:
            return answer or Answer(Outcome.RETRY, "no answer")
        return Answer(Outcome.OK, self._said(response))


class SmsChannel(HttpChannel):
    """An SMS provider's HTTP API as a template: `body` is JSON whose strings may hold
    `{phone}`, `{text}`, `{key}` and `{secret}`; headers may hold `{secret}`. Success is
    HTTP 2xx and, when `ok_field` is set, that top-level field equal to `ok_value`."""

    def __init__(self, name: str, *, url: str, body: Mapping[str, Any],
                 headers: Mapping[str, str], secret: SecretStr | None = None,
                 ok_field: str | None = None, ok_value: str = "0",
                 max_chars: int = 300, **kw: Any) -> None:
        super().__init__(name, **kw)
        self.url = url
        self.body = body
        self.headers = headers
        self.secret = secret
        self.ok_field = ok_field
        self.ok_value = ok_value
        self.max_chars = max_chars

    def secrets(self) -> tuple[str, ...]:
        return (self.secret.get_secret_value(),) if self.secret is not None else ()

    def _fill(self, value: Any, values: Mapping[str, str]) -> Any:
        if isinstance(value, str):
            for k, v in values.items():
                value = value.replace("{" + k + "}", v)
            return value
        if isinstance(value, Mapping):
            return {k: self._fill(v, values) for k, v in value.items()}
        if isinstance(value, list):
            return [self._fill(v, values) for v in value]
        return value

    async def send(self, message: Message, recipient: str) -> Answer:
        text = "\n".join([message.title, *message.lines, f"编号{message.ref}"])
        values = {"phone": recipient, "text": text[:self.max_chars], "key": message.key,
                  "secret": self.secret.get_secret_value() if self.secret else ""}
        answer, response = await self._post(
            self._fill(self.url, values), content=_json(self._fill(self.body, values)),
            headers={**_JSON, **self._fill(dict(self.headers), values)})
        if answer is not None or response is None:
            return answer or Answer(Outcome.RETRY, "no answer")
        said = self._said(response)
        if self.ok_field is None:
            return Answer(Outcome.OK, said)
        try:
            got = str(response.json().get(self.ok_field))
        except (ValueError, AttributeError):
            return Answer(Outcome.RETRY, said)
        return Answer(Outcome.OK if got == self.ok_value else Outcome.FAIL, said)


class SmtpSecurity(enum.StrEnum):
    STARTTLS = "starttls"
    TLS = "tls"  # implicit TLS (port 465)
    NONE = "none"  # a relay on the same host only


class EmailChannel(Channel):
    """SMTP through the standard library in a worker thread (one connection per message:
    alarms are rare, and a stale pooled connection is a failure mode of its own)."""

    def __init__(self, name: str, *, host: str, port: int, sender: str,
                 security: SmtpSecurity = SmtpSecurity.STARTTLS, username: str | None = None,
                 password: SecretStr | None = None, ca_file: str | None = None,
                 timeout_s: float = 20.0) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.sender = sender
        self.security = security
        self.username = username
        self.password = password
        self.ca_file = ca_file
        self.timeout_s = timeout_s

    def secrets(self) -> tuple[str, ...]:
        return (self.password.get_secret_value(),) if self.password is not None else ()

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def _send_blocking(self, mail: EmailMessage) -> None:
        smtp: smtplib.SMTP
        if self.security is SmtpSecurity.TLS:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s,
                                    context=self._context())
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
        with smtp:
            smtp.ehlo()
            if self.security is SmtpSecurity.STARTTLS:
                smtp.starttls(context=self._context())
                smtp.ehlo()
            if self.username is not None and self.password is not None:
                smtp.login(self.username, self.password.get_secret_value())
            smtp.send_message(mail)

    async def send(self, message: Message, recipient: str) -> Answer:
        mail = EmailMessage()
        mail["Subject"] = message.title
        mail["From"] = self.sender
        mail["To"] = recipient
        # The same key gives the same Message-ID: mail systems drop a resent duplicate.
        digest = hashlib.sha256(message.key.encode()).hexdigest()[:32]
        mail["Message-ID"] = f"<{digest}@greenguard.invalid>"
        mail["X-Greenguard-Key"] = message.key
        mail.set_content(message.text())
        try:
            await asyncio.to_thread(self._send_blocking, mail)
        except smtplib.SMTPAuthenticationError as exc:
            return Answer(Outcome.FAIL, redact(f"auth refused: {exc.smtp_code}",
                                               self.secrets()))
        except smtplib.SMTPRecipientsRefused as exc:
            return Answer(Outcome.FAIL, redact(f"recipient refused: {exc.recipients}",
                                               self.secrets()))
        except smtplib.SMTPNotSupportedError as exc:  # no STARTTLS or no AUTH offered
            return Answer(Outcome.FAIL, redact(str(exc), self.secrets()))
        except smtplib.SMTPResponseException as exc:
            outcome = Outcome.FAIL if 500 <= exc.smtp_code < 600 else Outcome.RETRY
            return Answer(outcome, redact(f"SMTP {exc.smtp_code} {exc.smtp_error!r}",
                                          self.secrets()))
        except (OSError, smtplib.SMTPException) as exc:  # refused, timeout, TLS, dropped
            return Answer(Outcome.RETRY, redact(f"{type(exc).__name__}: {exc}",
                                                self.secrets()))
        return Answer(Outcome.OK, "250 accepted")
