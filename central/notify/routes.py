"""Notification routes, counters for /metrics, and the signed acknowledgement link.

`router` (behind the API's `authorize()`: GETs need a viewer, POSTs an engineer; `iid` is
scoped to the token's institutions):

    GET  /api/v1/institutions/{iid}/notify/episodes          alarm episodes and their state
    POST /api/v1/institutions/{iid}/notify/episodes/{id}/ack acknowledge (stops escalation)
    GET  /api/v1/institutions/{iid}/notify/deliveries        the delivery log (engineer)
    GET  /api/v1/institutions/{iid}/notify/mutes             active mutes
    POST /api/v1/institutions/{iid}/notify/mutes             mute a device for a while
    GET  /api/v1/institutions/{iid}/notify/audit             acknowledgements, mutes (engineer)

`link_router` is public: `GET /notify/ack/{id}?r=&exp=&sig=` shows a confirmation page
whose button POSTs to the same address (chat apps open links to preview them, so a GET
never acknowledges); the POST checks the HMAC signature and expiry, then acknowledges as
`link:<recipient>`. A wrong or expired link answers 404, like an unknown episode.

The app finds the notifier in `app.state.notifier`; without one (no notify.yaml) reads
answer an empty list and writes 404.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, ConfigDict, Field

from central.api.deps import TenantDep
from central.auth import Principal, Role, authorize
from central.institution import InstitutionConfig
from central.notify.notifier import Notifier, NotifyError
from central.notify.queue import Delivery, Episode

EPISODE_PATTERN = r"^[0-9a-f]{20}$"


class EpisodeOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    kind: str
    edge: str
    device: str
    building: str | None
    room: str | None
    severity: str
    raised_ms: int
    cleared_ms: int | None
    acked_at: float | None
    acked_by: str | None
    route: str | None
    stage: int
    reminders: int
    flaps: int
    suppressed: str | None
    state: str = Field(description="raised, notified, acknowledged or cleared")


class AttemptOut(BaseModel):
    n: int
    started: float
    finished: float | None
    outcome: str | None
    answer: str | None


class DeliveryOut(BaseModel):
    key: str
    episode: str | None
    channel: str
    recipient: str
    stage: str
    state: str
    attempts: list[AttemptOut]
    created: float
    next_at: float
    done_at: float | None
    title: str


class MuteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    edge: Annotated[str, Field(min_length=1, max_length=64)]
    device: Annotated[str, Field(min_length=1, max_length=64)]
    minutes: Annotated[float, Field(gt=0, le=30 * 24 * 60)]
    reason: Annotated[str, Field(min_length=3, max_length=500)]


def _notifier(request: Request) -> Notifier:
    notifier: Notifier | None = getattr(request.app.state, "notifier", None)
    if notifier is None:
        raise HTTPException(404, detail="notifications are not configured (notify.yaml)")
    return notifier


def _maybe_notifier(request: Request) -> Notifier | None:
    notifier: Notifier | None = getattr(request.app.state, "notifier", None)
    return notifier


NotifierDep = Annotated[Notifier, Depends(_notifier)]
# Reads answer an empty list when notifications are off: there is nothing to show.
ReadDep = Annotated[Notifier | None, Depends(_maybe_notifier)]
PrincipalDep = Annotated[Principal, Depends(authorize())]


def _state(e: Episode, delivered: bool) -> str:
    if e.cleared_ms is not None:
        return "cleared"
    if e.acked_at is not None:
        return "acknowledged"
    return "notified" if delivered else "raised"


def _episode_out(n: Notifier, e: Episode) -> EpisodeOut:
    delivered = any(d.state == "sent" for d in n.queue.deliveries(episode=e.id))
    return EpisodeOut(**{f: getattr(e, f) for f in EpisodeOut.model_fields if f != "state"},
                      state=_state(e, delivered))


def _delivery_out(n: Notifier, d: Delivery) -> DeliveryOut:
    return DeliveryOut(key=d.key, episode=d.episode, channel=d.channel, recipient=d.recipient,
                       stage=d.stage, state=d.state, created=d.created, next_at=d.next_at,
                       done_at=d.done_at, title=str(d.message.get("title", "")),
                       attempts=[AttemptOut(**a) for a in n.queue.attempts(d.key)])


router = APIRouter(prefix="/api/v1/institutions/{iid}/notify", tags=["notifications"])


@router.get("/episodes")
def get_episodes(n: ReadDep, iid: str, open_only: bool = False,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[EpisodeOut]:
    if n is None:
        return []
    return [_episode_out(n, e) for e in n.queue.episodes(iid, open_only=open_only,
                                                          limit=limit)]


@router.post("/episodes/{episode}/ack")
def post_ack(n: NotifierDep, who: PrincipalDep, iid: str,
             episode: Annotated[str, PathParam(pattern=EPISODE_PATTERN)]) -> EpisodeOut:
    try:
        e = n.acknowledge(episode, f"token:{who.name}", institution=iid)
    except NotifyError as exc:
        raise HTTPException(404, detail=str(exc)) from None
    return _episode_out(n, e)


EngineerOnly = [Depends(authorize(Role.ENGINEER))]  # recipients' addresses are personal data


@router.get("/deliveries", dependencies=EngineerOnly)
def get_deliveries(n: ReadDep, iid: str, episode: str | None = None,
                   limit: Annotated[int, Query(ge=1, le=2000)] = 500) -> list[DeliveryOut]:
    if n is None:
        return []
    return [_delivery_out(n, d) for d in n.queue.deliveries(institution=iid, episode=episode,
                                                            limit=limit)]


@router.get("/mutes")
def get_mutes(n: ReadDep, iid: str) -> list[dict[str, Any]]:
    return n.queue.mutes(iid, n.clock.now()) if n is not None else []


def configured_devices(institution: InstitutionConfig) -> dict[str, frozenset[str]]:
    """The institution's devices by edge: its meters, AC units, plugs and bins."""
    by_edge: dict[str, set[str]] = {}
    for edge, device, _building, _room in institution.placed_devices():
        by_edge.setdefault(edge, set()).add(device)
    return {edge: frozenset(devices) for edge, devices in by_edge.items()}


def _refuse(field: str, value: str, reason: str) -> HTTPException:
    return HTTPException(422, detail=[{"loc": ["body", field], "input": value,
                                       "msg": f"{field} {value!r}: {reason}",
                                       "type": "value_error"}])


@router.post("/mutes", status_code=201)
def post_mute(n: NotifierDep, who: PrincipalDep, tenant: TenantDep, iid: str,
              body: MuteIn) -> dict[str, Any]:
    """Only a device of the institution's configuration can be muted: another
    institution's edge or an unknown device is refused (422, naming the field)."""
    devices = configured_devices(tenant.config)
    if body.edge not in devices:
        raise _refuse("edge", body.edge, f"not an edge of institution {iid} (its edges: "
                                         f"{', '.join(sorted(devices)) or 'none'})")
    if body.device not in devices[body.edge]:
        raise _refuse("device", body.device,
                      f"not a configured device of edge {body.edge} (its devices: "
                      f"{', '.join(sorted(devices[body.edge]))})")
    n.mute(iid, body.edge, body.device, minutes=body.minutes, reason=body.reason,
           actor=f"token:{who.name}")
    return {"edge": body.edge, "device": body.device,
            "until": n.clock.now() + body.minutes * 60, "reason": body.reason}


@router.get("/audit", dependencies=EngineerOnly)
def get_audit(n: ReadDep, iid: str) -> list[dict[str, Any]]:
    return n.queue.audit_log(iid) if n is not None else []


link_router = APIRouter(tags=["notifications"], include_in_schema=False)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang='zh-CN'><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width'>"
        f"<title>{html.escape(title)}</title><body style='font-family:sans-serif;"
        f"max-width:32em;margin:2em auto'><h1>{html.escape(title)}</h1>{body}</body></html>",
        status_code=status)


@link_router.get("/notify/ack/{episode}")
def ack_page(n: NotifierDep, episode: str, r: str = "", exp: int = 0,
             sig: str = "") -> HTMLResponse:
    if not n.check_link(episode, r, exp, sig):
        return _page("链接无效或已过期", "<p>请在仪表盘中确认告警。</p>", 404)
    e = n.queue.episode(episode)
    if e is None:
        return _page("告警不存在", "", 404)
    what = html.escape(f"{e.kind} · {e.building or ''} {e.room or ''} · {e.device}")
    if e.acked_at is not None:
        return _page("告警已确认", f"<p>{what}</p><p>确认人：{html.escape(e.acked_by or '')}</p>")
    return _page("确认告警", f"<p>{what}</p><form method='post'><button type='submit' "
                             "style='font-size:1.2em'>确认，我来处理</button></form>")


@link_router.post("/notify/ack/{episode}")
def ack_by_link(n: NotifierDep, episode: str, r: str = "", exp: int = 0,
                sig: str = "") -> HTMLResponse:
    if not n.check_link(episode, r, exp, sig):
        return _page("链接无效或已过期", "<p>请在仪表盘中确认告警。</p>", 404)
    try:
        e = n.acknowledge(episode, f"link:{r}")
    except NotifyError:
        return _page("告警不存在", "", 404)
    return _page("告警已确认", f"<p>确认人：{html.escape(e.acked_by or '')}</p>")


class NotifyCollector(Collector):
    """Deliveries by channel and state, attempts by channel and outcome, at scrape time."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        n: Notifier | None = getattr(self.app.state, "notifier", None)
        if n is None:
            return
        counts = n.queue.counts()
        deliveries = GaugeMetricFamily("greenguard_notify_deliveries",
                                       "Notification deliveries by channel and state",
                                       labels=["channel", "state"])
        for channel, state, count in counts["deliveries"]:
            deliveries.add_metric([channel, state], count)
        yield deliveries
        attempts = CounterMetricFamily("greenguard_notify_attempts",
                                       "Notification send attempts by channel and outcome",
                                       labels=["channel", "outcome"])
        for channel, outcome, count in counts["attempts"]:
            attempts.add_metric([channel, outcome], count)
        yield attempts


def include_notify(app: FastAPI, metrics: CollectorRegistry,
                   responses: dict[int | str, dict[str, Any]] | None = None) -> None:
    """Mount the notification routes (documenting the API's error `responses`) and
    counters on the central's app."""
    app.include_router(router, dependencies=[Depends(authorize())], responses=responses)
    app.include_router(link_router)
    metrics.register(NotifyCollector(app))
