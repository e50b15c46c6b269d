"""Each channel against a real local receiver that checks the vendor's documented format."""

from __future__ import annotations

import email
import email.policy
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from central.notify.channels import (
    DingTalkChannel,
    EmailChannel,
    FeishuChannel,
    Message,
    Outcome,
    SmsChannel,
    SmtpSecurity,
    WebhookChannel,
    WeComChannel,
    dingtalk_sign,
    feishu_sign,
    webhook_signature,
)
from tests.conftest import free_port
from tests.unit.central.notify.receivers import BotReceiver, serve, smtp_server

MSG = Message(key="ep1/ops/s0", title="【漏水】教学楼 101 室",
              lines=("设备：water-1", "数值：3.2 m³/h"), link="http://dash.example/#alarms", ack_link="http://dash.example/ack/x")


def test_signatures_match_the_vendors_documented_examples() -> None:
    # Golden values computed independently with the openssl CLI, as the vendors define them:
    # printf '1577000000000\nthis is secret' | openssl dgst -sha256 -hmac 'this is secret' \
    #   -binary | base64        (DingTalk, then URL-encoded)
    assert dingtalk_sign("this is secret", 1_577_000_000_000) == (
        "CzDRc7aXg4jxIWuAPgoMjyJ%2BzMUH7WEqwmgz3Z94Mrk%3D")
    # printf '' | openssl dgst -sha256 -hmac $'1599360473\nfsecret' -binary | base64
    # (Feishu: the string to sign is the key, the message is empty)
    assert feishu_sign("fsecret", 1_599_360_473) == "1b1/+So9Ci4eos0DuK+stwJQf3x5OJDPqqcUhblKhdk="
    assert webhook_signature("s", 1, b"{}").startswith("sha256=")


async def test_wecom_markdown_reaches_the_robot_and_a_wrong_key_fails() -> None:
    with serve(BotReceiver()) as rx:
        ok = WeComChannel("w", key=SecretStr("wk-1"), url=rx.url("/cgi-bin/webhook/send"))
        bad = WeComChannel("w", key=SecretStr("nope"), url=rx.url("/cgi-bin/webhook/send"))
        try:
            assert (await ok.send(MSG, "")).outcome is Outcome.OK
            answer = await bad.send(MSG, "")
        finally:
            await ok.aclose()
            await bad.aclose()
    assert answer.outcome is Outcome.FAIL
    assert "nope" not in answer.detail
    [got] = rx.received
    content = got.body["markdown"]["content"]
    assert got.body["msgtype"] == "markdown"
    assert "教学楼 101 室" in content
    assert "[确认告警](http://dash.example/ack/x)" in content


async def test_dingtalk_signed_with_keyword_and_refused_with_a_wrong_secret() -> None:
    rx = BotReceiver(now_s=time.time())
    with serve(rx):
        ding = DingTalkChannel("d", access_token=SecretStr("dt-1"), secret=SecretStr("SECding"),
                               keywords=["告警"], url=rx.url("/robot/send"))
        wrong = DingTalkChannel("d", access_token=SecretStr("dt-1"),
                                secret=SecretStr("SECwrong"), keywords=["告警"],
                                url=rx.url("/robot/send"))
        plain = Message(key="k", title="教学楼 101 室漏水", lines=("设备：water-1",))
        try:
            assert (await ding.send(plain, "13800000000")).outcome is Outcome.OK
            refused = await wrong.send(MSG, "")
        finally:
            await ding.aclose()
            await wrong.aclose()
    assert refused.outcome is Outcome.FAIL
    assert "SECwrong" not in refused.detail
    assert rx.refused == [("dingtalk", "sign not match")]
    [got] = rx.received
    assert got.body["at"] == {"isAtAll": False, "atMobiles": ["13800000000"]}
    assert got.body["markdown"]["title"].startswith("告警")  # keyword rule satisfied


async def test_feishu_signature_in_the_body() -> None:
    rx = BotReceiver(now_s=time.time())
    with serve(rx):
        fs = FeishuChannel("f", hook=SecretStr("fh-1"), secret=SecretStr("fsecret"),
                           url=rx.url("/open-apis/bot/v2/hook/"))
        stale = FeishuChannel("f", hook=SecretStr("fh-1"), secret=SecretStr("fsecret"),
                              url=rx.url("/open-apis/bot/v2/hook/"),
                              now_s=lambda: time.time() - 7200)
        try:
            assert (await fs.send(MSG, "")).outcome is Outcome.OK
            assert (await stale.send(MSG, "")).outcome is Outcome.FAIL
        finally:
            await fs.aclose()
            await stale.aclose()
    [got] = rx.received
    post = got.body["content"]["post"]["zh_cn"]
    assert got.body["msg_type"] == "post"
    assert post["title"] == MSG.title


async def test_webhook_signed_and_sms_template_and_5xx_retries() -> None:
    rx = BotReceiver(statuses=[500])
    with serve(rx):
        hook = WebhookChannel("h", url=SecretStr(rx.url("/hook?token=t0k")),
                              secret=SecretStr("hs"))
        sms = SmsChannel("s", url=rx.url("/sms"), secret=SecretStr("api-key"),
                         body={"to": "{phone}", "msg": "{text}", "id": "{key}"},
                         headers={"Authorization": "Bearer {secret}"}, ok_field="code")
        try:
            first = await hook.send(MSG, "")
            assert first.outcome is Outcome.RETRY
            assert "t0k" not in first.detail
            assert (await hook.send(MSG, "")).outcome is Outcome.OK
            assert (await sms.send(MSG, "13800000000")).outcome is Outcome.OK
        finally:
            await hook.aclose()
            await sms.aclose()
    h, s = rx.received
    assert h.headers["idempotency-key"] == MSG.key
    ts = int(h.headers["x-greenguard-timestamp"])
    import json
    body = json.dumps(h.body, ensure_ascii=False, separators=(",", ":")).encode()
    assert h.headers["x-greenguard-signature"] == webhook_signature("hs", ts, body)
    assert s.body["to"] == "13800000000"
    assert "教学楼" in s.body["msg"]
    assert s.headers["authorization"] == "Bearer api-key"


async def test_network_error_is_a_retry_not_an_exception() -> None:
    ch = WeComChannel("w", key=SecretStr("k"), url=f"http://127.0.0.1:{free_port()}/x")
    try:
        assert (await ch.send(MSG, "")).outcome is Outcome.RETRY
    finally:
        await ch.aclose()


@pytest.mark.parametrize("security", [SmtpSecurity.STARTTLS, SmtpSecurity.TLS])
async def test_email_over_tls_with_auth(tmp_path: Path, security: SmtpSecurity) -> None:
    pytest.importorskip("aiosmtpd")
    port = free_port()
    with smtp_server(tmp_path, port, implicit_tls=security is SmtpSecurity.TLS) as (box, ca):
        mail = EmailChannel("m", host="127.0.0.1", port=port, sender="alarms@school.cn",
                            security=security, username="alarms", password=SecretStr("pw-1"),
                            ca_file=ca)
        wrong = EmailChannel("m", host="127.0.0.1", port=port, sender="alarms@school.cn",
                             security=security, username="alarms",
                             password=SecretStr("bad-pw"), ca_file=ca)
        untrusted = EmailChannel("m", host="127.0.0.1", port=port, sender="a@school.cn",
                                 security=security, username="alarms",
                                 password=SecretStr("pw-1"))
        assert (await mail.send(MSG, "liaison@school.cn")).outcome is Outcome.OK
        refused = await wrong.send(MSG, "liaison@school.cn")
        assert (await untrusted.send(MSG, "liaison@school.cn")).outcome is Outcome.RETRY
    assert refused.outcome is Outcome.FAIL
    assert "bad-pw" not in refused.detail
    [env] = box.messages
    assert env.rcpt_tos == ["liaison@school.cn"]
    assert box.logins == ["alarms"]
    parsed = email.message_from_bytes(env.content, policy=email.policy.default)
    assert parsed["X-Greenguard-Key"] == MSG.key
    assert "教学楼 101 室" in parsed.get_content()
