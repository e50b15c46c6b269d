"""Delivery guarantees on a virtual clock against real loopback receivers: the notifier is
killed between a send and its record, DingTalk is down for an hour, the webhook answers 500s
and then 200s. Oracle: every episode reaches every routed recipient (expected, matched,
missing, duplicated), a resend happens only for the attempt that was in doubt, and the
escalation fires on time."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import pytest
from pydantic import SecretStr

from central.notify.channels import (
    Answer,
    Channel,
    DingTalkChannel,
    Message,
    WebhookChannel,
    WeComChannel,
)
from central.notify.config import parse_notify
from central.notify.notifier import Notifier
from central.notify.queue import NotifyQueue
from tests.unit.central.notify.helpers import T0, ManualClock, signal
from tests.unit.central.notify.receivers import BotReceiver, Received, serve

pytestmark = pytest.mark.integration


class Killed(BaseException):
    """The process dies: nothing after the send runs."""


class DiesAfterSend(Channel):
    """Sends for real, then kills the notifier before it can record the answer (once)."""

    def __init__(self, inner: Channel) -> None:
        self.name = inner.name
        self.inner = inner
        self.armed = True

    async def send(self, message: Message, recipient: str) -> Answer:
        answer = await self.inner.send(message, recipient)
        if self.armed:
            self.armed = False
            raise Killed
        return answer

    async def aclose(self) -> None:
        await self.inner.aclose()


CONFIG = {
    "dashboard_url": "http://dash.example",
    "channels": {"wecom": {"kind": "wecom", "key": {"env": "X"}},
                 "ding": {"kind": "dingtalk", "access_token": {"env": "X"}},
                 "hook": {"kind": "webhook", "url": {"env": "X"}}},
    "institutions": {"school": {"routes": [{"name": "leaks", "kinds": ["leak"], "stages": [
        {"recipients": ["wecom", "ding"]}, {"after_min": 30, "recipients": ["hook"]}]}]}},
    "retry": {"initial_s": 30, "max_s": 600, "give_up_after_h": 24},
}


def refs(rx: BotReceiver) -> Counter[tuple[str, str]]:
    """What each receiver got, by (service, 编号 or idempotency key)."""
    out: Counter[tuple[str, str]] = Counter()
    for r in rx.received:
        out[_ref(r)] += 1
    return out


def _ref(r: Received) -> tuple[str, str]:
    if r.path == "/hook":
        return "hook", r.headers["idempotency-key"]
    text = r.body["markdown"]["content" if "content" in r.body["markdown"] else "text"]
    match = re.search(r"编号：(\w+)", text)
    assert match is not None
    return ("wecom" if "webhook" in r.path else "ding"), match.group(1)


async def test_every_episode_reaches_every_recipient_once_through_faults(
        tmp_path: Path) -> None:
    rx = BotReceiver(now_s=time.time(), ding_keywords=(), scripts={"/hook": [500, 500, 500]})
    clock = ManualClock()
    path = tmp_path / "notify.sqlite"
    config = parse_notify(CONFIG)
    with serve(rx):
        def channels(die: bool) -> dict[str, Channel]:
            wecom: Channel = WeComChannel("wecom", key=SecretStr("wk-1"),
                                          url=rx.url("/cgi-bin/webhook/send"))
            ding = DingTalkChannel("ding", access_token=SecretStr("dt-1"),
                                   secret=SecretStr("SECding"), url=rx.url("/robot/send"))
            hook = WebhookChannel("hook", url=SecretStr(rx.url("/hook")))
            return {"wecom": DiesAfterSend(wecom) if die else wecom, "ding": ding,
                    "hook": hook}

        notifier = Notifier(config, channels(die=True), NotifyQueue(path), clock,
                            link_secret=b"k" * 32)
        devices = [f"water-{i}" for i in range(4)]
        notifier.observe([signal("raised", T0, device=d) for d in devices])
        rx.down_paths.add("/robot/send")  # DingTalk down for an hour from the start
        with pytest.raises(Killed):
            await notifier.step()
        await notifier.aclose()
        # Restart on the same file: the send in doubt is retried with the same key.
        notifier = Notifier(config, channels(die=False), NotifyQueue(path), clock,
                            link_secret=b"k" * 32)
        assert notifier.in_doubt == 1
        # The edge resends the same events after the restart (no ack went out): no effect.
        notifier.observe([signal("raised", T0, device=d) for d in devices])
        for minute in range(3 * 60 + 1):
            clock.t = T0 + 60 * minute
            if minute == 60:
                rx.down_paths.clear()
            await notifier.step()
        await notifier.aclose()

    episodes = notifier.queue.episodes("school")
    expected = Counter({(svc, key): 1 for e in episodes
                        for svc, key in (("wecom", f"{e.id}|wecom|s0"),
                                         ("ding", f"{e.id}|ding|s0"),
                                         ("hook", f"{e.id}|hook|s1"))})
    got = refs(rx)
    # Chat bots show the short 编号; the webhook carries the full key.
    seen = Counter({(svc, k if svc == "hook" else Message(k, "", ()).ref): n
                    for (svc, k), n in expected.items()})
    missing = [k for k in seen if got[k] == 0]
    duplicated = {k: n for k, n in got.items() if n > 1}
    assert (len(seen), missing) == (12, [])
    # Exactly one message was resent: the one whose send was in doubt, marked as a resend.
    assert list(duplicated.values()) == [2]
    [(svc, _)] = duplicated
    assert svc == "wecom"
    resent = [r for r in rx.received if r.path == "/cgi-bin/webhook/send"
              and "（重发）" in r.body["markdown"]["content"]]
    assert len(resent) == 1
    assert set(got) == set(seen)
    # The escalation fired at exactly 30 minutes, even though the webhook answered 500s.
    for e in episodes:
        attempts = notifier.queue.attempts(f"{e.id}|hook|s1")
        assert attempts[0]["started"] == T0 + 30 * 60
    outcomes = Counter(a["outcome"] for e in episodes for k in (f"{e.id}|ding|s0",)
                       for a in notifier.queue.attempts(k))
    assert outcomes["ok"] == 4
    assert outcomes["retry"] >= 4  # DingTalk refused while down, retried with backoff
    assert all(d.state == "sent" for d in notifier.queue.deliveries(institution="school"))
