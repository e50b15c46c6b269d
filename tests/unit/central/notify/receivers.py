"""Loopback receivers that check what the vendors' docs define: DingTalk's and Feishu's
signatures, WeCom's markdown payload, keyword rules; an SMTP server with STARTTLS and AUTH.

They answer like the real services (errcode/code JSON) and can be told to be down (connection
refused is simulated by answering 503) or to answer a script of status codes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import urllib.parse
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class BotReceiver:
    """One loopback HTTP server playing WeCom, DingTalk, Feishu, a webhook and an SMS API."""

    wecom_key: str = "wk-1"
    ding_token: str = "dt-1"
    ding_secret: str = "SECding"
    ding_keywords: tuple[str, ...] = ("告警",)
    feishu_hook: str = "fh-1"
    feishu_secret: str = "fsecret"
    now_s: float = 0.0  # the receiver's clock, for the signature age check
    received: list[Received] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # scripted HTTP statuses, then 200
    scripts: dict[str, list[int]] = field(default_factory=dict)  # the same, per path
    down: bool = False
    down_paths: set[str] = field(default_factory=set)
    port: int = 0

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    # -- what each service checks ---------------------------------------------------------
    def answer(self, path: str, query: dict[str, str], headers: dict[str, str],
               body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.down or path in self.down_paths:
            return 503, {"error": "down"}
        script = self.scripts.get(path)
        if script:
            status = script.pop(0)
            if status != 200:
                return status, {"error": "scripted"}
        if self.statuses:
            status = self.statuses.pop(0)
            if status != 200:
                return status, {"error": "scripted"}
        if path == "/cgi-bin/webhook/send":
            return self._wecom(query, body)
        if path == "/robot/send":
            return self._dingtalk(query, body)
        if path.startswith("/open-apis/bot/v2/hook/"):
            return self._feishu(path.rsplit("/", 1)[1], body)
        return 200, {"code": "0"}  # webhook and SMS: anything is fine, recorded

    def _refuse(self, service: str, why: str, code: int, field_: str) -> tuple[int, dict[str, Any]]:
        self.refused.append((service, why))
        return 200, {field_: code, "errmsg" if field_ == "errcode" else "msg": why}

    def _wecom(self, q: dict[str, str], b: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if q.get("key") != self.wecom_key:
            return self._refuse("wecom", "invalid webhook url", 93000, "errcode")
        md = b.get("markdown", {})
        if b.get("msgtype") != "markdown" or not isinstance(md.get("content"), str):
            return self._refuse("wecom", "invalid msgtype", 40008, "errcode")
        if len(md["content"].encode()) > 4096:
            return self._refuse("wecom", "content exceed max length", 40058, "errcode")
        return 200, {"errcode": 0, "errmsg": "ok"}

    def _dingtalk(self, q: dict[str, str], b: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if q.get("access_token") != self.ding_token:
            return self._refuse("dingtalk", "token is not exist", 300001, "errcode")
        ts, sign = q.get("timestamp", ""), q.get("sign", "")
        # DingTalk's documented check: sign = Base64(HmacSHA256(secret, ts + "\n" + secret))
        # (the query value was URL-encoded by the sender and decoded by the HTTP layer).
        expect = base64.b64encode(hmac.new(self.ding_secret.encode(),
                                           f"{ts}\n{self.ding_secret}".encode(),
                                           hashlib.sha256).digest()).decode()
        if not ts or not hmac.compare_digest(sign, expect):
            return self._refuse("dingtalk", "sign not match", 310000, "errcode")
        if abs(int(ts) / 1000 - self.now_s) > 3600:
            return self._refuse("dingtalk", "timestamp expired", 310000, "errcode")
        md = b.get("markdown", {})
        if b.get("msgtype") != "markdown" or not md.get("title") or not md.get("text"):
            return self._refuse("dingtalk", "param error", 300005, "errcode")
        if self.ding_keywords and not any(k in md["title"] or k in md["text"]
                                          for k in self.ding_keywords):
            return self._refuse("dingtalk", "keywords not in content", 310000, "errcode")
        return 200, {"errcode": 0, "errmsg": "ok"}

    def _feishu(self, hook: str, b: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if hook != self.feishu_hook:
            return self._refuse("feishu", "incoming webhook access token invalid", 19001,
                                "code")
        ts = str(b.get("timestamp", ""))
        key = f"{ts}\n{self.feishu_secret}".encode()
        expect = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
        if not ts or not hmac.compare_digest(str(b.get("sign", "")), expect):
            return self._refuse("feishu", "sign match fail or timestamp is not within one "
                                "hour from current time", 19021, "code")
        if abs(int(ts) - self.now_s) > 3600:
            return self._refuse("feishu", "timestamp is not within one hour", 19021, "code")
        if b.get("msg_type") not in ("text", "post", "interactive"):
            return self._refuse("feishu", "params error", 9499, "code")
        return 200, {"code": 0, "msg": "success", "data": {}}


@contextmanager
def serve(receiver: BotReceiver) -> Iterator[BotReceiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            parsed = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(parsed.query))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                body = json.loads(raw)
            except ValueError:
                body = {}
            status, answer = receiver.answer(parsed.path, query, headers, body)
            if status == 200 and answer.get("errcode", answer.get("code", 0)) in (0, "0"):
                receiver.received.append(Received(parsed.path, query, headers, body))
            out = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="bot-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class Mailbox:
    messages: list[Any] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)


@contextmanager
def smtp_server(tmp: Any, port: int, *, user: str = "alarms", password: str = "pw-1",
                implicit_tls: bool = False) -> Iterator[tuple[Mailbox, str]]:
    """aiosmtpd with a certificate from a throw-away CA, AUTH required, and (unless
    `implicit_tls`) STARTTLS required before AUTH. Yields the mailbox and the CA file."""
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword
    from cryptography.hazmat.primitives import serialization

    from central.certs import issue, make_ca

    ca = make_ca("notify test CA")
    cert, key = issue(ca, "127.0.0.1", server_names=["127.0.0.1", "localhost"], client=False)
    ca_file, cert_file, key_file = tmp / "ca.pem", tmp / "smtp.pem", tmp / "smtp.key"
    ca_file.write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    box = Mailbox()

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            box.messages.append(envelope)
            return "250 OK"

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == user.encode()
              and auth_data.password == password.encode())
        if ok:
            box.logins.append(user)
        return AuthResult(success=ok, handled=False)

    kwargs: dict[str, Any] = {"authenticator": authenticator, "auth_required": True}
    if implicit_tls:
        # aiosmtpd does not see that an implicit-TLS socket is encrypted: it hides AUTH
        # unless told not to require TLS, and warns about exactly that.
        warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
        controller = Controller(Handler(), hostname="127.0.0.1", port=port,
                                ssl_context=context, auth_require_tls=False,  # TLS already
                                **kwargs)
    else:
        controller = Controller(Handler(), hostname="127.0.0.1", port=port,
                                tls_context=context, require_starttls=True, **kwargs)
    controller.start()
    try:
        yield box, str(ca_file)
    finally:
        controller.stop()
