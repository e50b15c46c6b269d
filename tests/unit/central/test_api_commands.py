"""Commands through the API with a recording publisher (the MQTT path has its own
integration test): validation, recording, status from the edge's `command.result` events,
expiry, and a broker that is down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest

from central.api import Tenant, create_app
from central.commands import CommandBook, CommandService, CommandUnavailableError
from central.institution import InstitutionConfig
from central.profile import CoefficientProfile
from central.store import Store
from protocols.clock import VirtualClock
from protocols.wire import Command, Event, Severity
from tests.unit.central.central_helpers import authenticator, batch, bearer, local_ts, sample

NOW = local_ts(2025, 7, 2, 12, 0)
BASE = "/api/v1/institutions/demo-school"
SET = {"edge": "edge-1", "name": "override.set", "duration_s": 600,
       "args": {"device": "ac-101", "point": "setpoint_c", "value": 26, "reason": "exam"}}


@dataclass
class Recorder:
    sent: list[tuple[str, str, Command]] = field(default_factory=list)
    down: bool = False

    def publish(self, site: str, edge: str, command: Command) -> None:
        if self.down:
            raise CommandUnavailableError("command not sent: broker unreachable")
        self.sent.append((site, edge, command))


class SteppedClock(VirtualClock):
    """A virtual clock a test moves by hand."""

    def step(self, seconds: float) -> None:
        self.offset += seconds

    offset = 0.0

    def now(self) -> float:
        return super().now() + self.offset


@dataclass
class World:
    client: httpx.AsyncClient
    clock: SteppedClock
    recorder: Recorder
    store: Store


@pytest.fixture
async def world(store: Store, institution: InstitutionConfig,
                profile: CoefficientProfile) -> AsyncIterator[World]:
    store.store_batch(batch([sample(1, ts=int(NOW * 1000))], after=0), "site-1", now=NOW)
    auth = authenticator()
    clock = SteppedClock(NOW)
    recorder = Recorder()
    book = CommandBook(":memory:")
    app = create_app(store, [Tenant(institution, profile)], clock, auth,
                     commands=CommandService(book, recorder))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test",
                                 headers=bearer(auth, "engineer", ["demo-school"])) as c:
        yield World(c, clock, recorder, store)
    book.close()


def answer(store: Store, seq: int, command_id: str, status: str) -> None:
    store.store_batch(batch([Event(seq=seq, ts=int(NOW * 1000) + seq, name="command.result",
                                   severity=Severity.INFO, device=None,
                                   data={"id": command_id, "status": status,
                                         "detail": "ok" if status == "applied" else "no"})],
                            after=seq - 1), "site-1", now=NOW)


async def test_override_is_published_and_takes_the_edges_answer(world: World) -> None:
    r = await world.client.post(f"{BASE}/commands", json=SET)
    assert r.status_code == 202, r.text
    view = r.json()
    assert view["status"] == "pending"
    assert view["created_by"] == "test engineer"
    (site, edge, command), = world.recorder.sent
    assert (site, edge, command.id, command.name) == ("site-1", "edge-1", view["id"],
                                                      "override.set")
    assert command.args == {"device": "ac-101", "point": "setpoint_c", "value": 26.0,
                            "reason": "exam"}
    assert command.expires - command.issued == 600_000  # the override's end
    answer(world.store, 2, view["id"], "applied")
    got = (await world.client.get(f"{BASE}/commands/{view['id']}")).json()
    assert (got["status"], got["detail"]) == ("applied", "ok")
    listed = (await world.client.get(f"{BASE}/commands")).json()
    assert [c["id"] for c in listed] == [view["id"]]


async def test_no_answer_before_expiry_is_unanswered(world: World) -> None:
    view = (await world.client.post(f"{BASE}/commands", json={**SET, "duration_s": 60})).json()
    world.clock.step(61)
    got = (await world.client.get(f"{BASE}/commands/{view['id']}")).json()
    assert got["status"] == "unanswered"
    answer(world.store, 2, view["id"], "expired")  # a late answer replaces it
    assert (await world.client.get(f"{BASE}/commands/{view['id']}")).json()["status"] == \
        "expired"


async def test_a_broker_that_is_down_gives_503_and_an_unsent_command(world: World) -> None:
    world.recorder.down = True
    r = await world.client.post(f"{BASE}/commands", json=SET)
    assert r.status_code == 503
    assert "broker unreachable" in r.json()["detail"]
    (kept,) = (await world.client.get(f"{BASE}/commands")).json()
    assert kept["status"] == "unsent"


@pytest.mark.parametrize(("body", "field", "value"), [
    ({**SET, "name": "reboot"}, "name", "reboot"),
    ({**SET, "duration_s": 8 * 86400}, "duration_s", 8 * 86400),
    ({**SET, "args": {**SET["args"], "device": "bad device!"}}, "device", "bad device!"),
    ({**SET, "args": {"device": "ac-101", "point": "setpoint_c", "value": 26}}, "reason",
     None),
    ({**SET, "name": "override.clear", "args": {"override_id": ""}}, "override_id", ""),
])
async def test_invalid_commands_name_the_field_and_value(
        world: World, body: dict[str, object], field: str, value: object) -> None:
    r = await world.client.post(f"{BASE}/commands", json=body)
    assert r.status_code == 422
    text = r.text
    assert field in text
    if value is not None:
        assert str(value) in text
    assert world.recorder.sent == []


async def test_unknown_or_unborn_edges_are_refused(world: World) -> None:
    r = await world.client.post(f"{BASE}/commands", json={**SET, "edge": "edge-9"})
    assert r.status_code == 404
    assert "edge-9" in r.json()["detail"]
    r = await world.client.post(f"{BASE}/commands", json={**SET, "edge": "edge-2"})
    assert r.status_code == 409  # configured, but never connected: no topic to send to
    assert world.recorder.sent == []
