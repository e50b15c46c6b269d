"""Ingest → notifier → API: an alarm event stored by ingest reaches the queue before its
ack; the API shows episodes and the delivery log, acknowledges (engineer role) and mutes
(audited); the signed link acknowledges only with a valid signature; /metrics counts."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import httpx

from central.api import Tenant, create_app
from central.ingest import Ingestor, IngestStats
from central.institution import InstitutionConfig
from central.notify.channels import FakeChannel
from central.notify.config import NotifyConfig
from central.notify.hook import AlarmFeed
from central.notify.notifier import Notifier
from central.notify.queue import NotifyQueue
from central.profile import CoefficientProfile
from central.store import Store
from protocols.wire import Event, Severity, encode
from tests.unit.central.central_helpers import authenticator, batch, bearer
from tests.unit.central.notify.helpers import T0, ManualClock, config

TELEMETRY = "gg/v1/site-1/edge-1/telemetry"


def leak(seq: int, state: str) -> Event:
    return Event(seq=seq, ts=int(T0 * 1000) + seq, name="alarm.leak",
                 severity=Severity.ALARM if state == "raised" else Severity.INFO,
                 device="water-a", data={"state": state, "rule": "leak", "point": "water_m3",
                                         "flow": 0.35, "why": "continuous"})


def routing() -> NotifyConfig:
    return config(institutions={"demo-school": {"routes": [
        {"name": "all", "buildings": ["A"], "stages": [{"recipients": ["ops"]}]}]}})


async def test_ingest_feeds_the_notifier_and_the_api_shows_and_acknowledges(
        tmp_path: Path, store: Store, institution: InstitutionConfig,
        profile: CoefficientProfile) -> None:
    clock = ManualClock()
    ops = FakeChannel("ops")
    notifier = Notifier(routing(), {"ops": ops},
                        NotifyQueue(tmp_path / "n.sqlite"), clock, link_secret=b"k" * 32)
    ingestor = Ingestor(store, clock, IngestStats(),
                        on_stored=AlarmFeed(notifier, [institution]))
    assert ingestor.handle(TELEMETRY, encode(batch([leak(1, "raised")], after=0)))
    assert ingestor.handle(TELEMETRY, encode(batch([leak(1, "raised")], after=0)))  # resend
    await notifier.step()
    [(message, _)] = ops.sent
    assert message.title == "【紧急告警】漏水 · 教学楼 Teaching"
    assert "数值：0.35 m³/h" in message.lines

    auth = authenticator()
    app = create_app(store, [Tenant(institution, profile)], clock, auth)
    app.state.notifier = notifier
    base = "http://test/api/v1/institutions/demo-school/notify"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as c:
        viewer = bearer(auth, "viewer", ["demo-school"])
        engineer = bearer(auth, "engineer", ["demo-school"])
        [ep] = (await c.get(f"{base}/episodes", headers=viewer)).json()
        assert (ep["state"], ep["building"], ep["kind"]) == ("notified", "教学楼 Teaching",
                                                             "leak")
        assert (await c.get(f"{base}/deliveries", headers=viewer)).status_code == 403
        [d] = (await c.get(f"{base}/deliveries", headers=engineer)).json()
        assert [a["outcome"] for a in d["attempts"]] == ["ok"]
        assert (await c.post(f"{base}/episodes/{ep['id']}/ack",
                             headers=viewer)).status_code == 403
        # The signed link: a GET only shows a page; a forged signature is refused.
        link = urllib.parse.urlsplit(message.ack_link or "")
        page = await c.get(f"{link.path}?{link.query}")
        assert page.status_code == 200
        assert "确认，我来处理" in page.text
        assert notifier.queue.episode(ep["id"]).acked_at is None  # type: ignore[union-attr]
        forged = link.query.replace("sig=", "sig=x")
        assert (await c.post(f"{link.path}?{forged}")).status_code == 404
        acked = await c.post(f"{link.path}?{link.query}")
        assert acked.status_code == 200
        [ep] = (await c.get(f"{base}/episodes", headers=viewer)).json()
        assert (ep["state"], ep["acked_by"]) == ("acknowledged", "link:ops")
        muted = await c.post(f"{base}/mutes", headers=engineer, json={
            "edge": "edge-1", "device": "water-a", "minutes": 60, "reason": "维修水管"})
        assert muted.status_code == 201
        audit = (await c.get(f"{base}/audit", headers=engineer)).json()
        assert [a["action"] for a in audit] == ["mute", "acknowledge"]
        assert audit[0]["actor"] == "token:test engineer"
        metrics = (await c.get("/metrics")).text
        assert 'greenguard_notify_deliveries{channel="ops",state="sent"} 1.0' in metrics
        assert 'greenguard_notify_attempts_total{channel="ops",outcome="ok"} 1.0' in metrics


def test_a_failing_notification_file_withholds_the_ack(
        tmp_path: Path, store: Store, institution: InstitutionConfig) -> None:
    clock = ManualClock()
    queue = NotifyQueue(tmp_path / "n.sqlite")
    notifier = Notifier(routing(), {}, queue, clock, link_secret=b"k" * 32)
    ingestor = Ingestor(store, clock, IngestStats(),
                        on_stored=AlarmFeed(notifier, [institution]))
    queue.close()  # the notification file is gone: StoreError on the next write
    assert ingestor.handle(TELEMETRY, encode(batch([leak(1, "raised")], after=0))) is None
    assert ingestor.stats.store_errors == 1


async def test_only_the_institutions_configured_devices_can_be_muted(
        tmp_path: Path, store: Store, institution: InstitutionConfig,
        profile: CoefficientProfile) -> None:
    clock = ManualClock()
    notifier = Notifier(routing(), {}, NotifyQueue(tmp_path / "n.sqlite"), clock,
                        link_secret=b"k" * 32)
    auth = authenticator()
    app = create_app(store, [Tenant(institution, profile)], clock, auth)
    app.state.notifier = notifier
    base = "http://test/api/v1/institutions/demo-school/notify"
    engineer = bearer(auth, "engineer", ["demo-school"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as c:
        for body, field, value in [({"edge": "edge-9", "device": "water-a"}, "edge", "edge-9"),
                                   ({"edge": "edge-2", "device": "water-a"}, "device",
                                    "water-a")]:
            r = await c.post(f"{base}/mutes", headers=engineer,
                             json={**body, "minutes": 60, "reason": "维修水管"})
            assert r.status_code == 422, r.text
            [problem] = r.json()["detail"]
            assert (problem["loc"], problem["input"]) == (["body", field], value)
            assert f"{field} {value!r}" in problem["msg"]
        assert (await c.get(f"{base}/mutes", headers=engineer)).json() == []
        assert notifier.queue.audit_log("demo-school") == []
        ok = await c.post(f"{base}/mutes", headers=engineer, json={
            "edge": "edge-2", "device": "meter-b", "minutes": 60, "reason": "更换电表"})
        assert ok.status_code == 201
        assert [(m["edge"], m["device"]) for m in
                (await c.get(f"{base}/mutes", headers=engineer)).json()] == [
            ("edge-2", "meter-b")]
