"""Commands from the central to an edge: overrides set and cleared by a facilities engineer.

A command is a wire `Command` (`override.set` args `{device, point, value, reason}`, whose
`expires` is the override's end; `override.clear` args `{override_id}`) published with QoS 1,
never retained, on `gg/v1/<site>/<edge>/cmd`. The edge executes an id at most once and
answers with a `command.result` event `{id, status, detail}`; that event arrives through the
ordinary ingest path (exactly once into the store), so a command's status is read from the
store's events, not kept in a second place that could disagree:

- `unsent`: the broker was unreachable; the edge never saw it (the API answered 503).
- `pending`: published, no answer yet, not expired.
- `applied | expired | duplicate | rejected | cleared`: the edge's answer (with `detail`).
- `refused`: the edge's control gate did not accept the envelope (its signature, key,
  expiry; edge/control.py): nothing was executed.

Every command is signed with the central's control key (protocols/signing.py) when the link
has a signer, which the central process always gives it.
- `unanswered`: no answer and the command's expiry passed (the edge was offline, or its
  answer is still in its outbox: a later answer replaces this status).

The command table lives in its own SQLite file next to the central's database, or on a
PostgreSQL central in the shared database (central/pgstate.py), so every worker knows it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

import aiomqtt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from central.errors import CentralError
from central.sqlitefile import SqliteFile
from central.storeport import StoreReader
from protocols.signing import Signer
from protocols.wire import Channel, Command, encode, topic

log = logging.getLogger(__name__)

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
POINT_PATTERN = r"^[a-z][a-z0-9_.]{0,63}$"
MAX_OVERRIDE_S = 7 * 86400
EDGE_STATUSES = ("applied", "expired", "duplicate", "rejected", "cleared", "refused")
Status = Literal["unsent", "pending", "unanswered", "applied", "expired", "duplicate",
                 "rejected", "cleared", "refused"]


class CommandUnavailableError(CentralError):
    """The command could not be handed to the broker (the API answers 503)."""


class CommandPublisher(Protocol):
    def publish(self, site: str, edge: str, command: Command) -> None:
        """Hand the command to the broker (QoS 1 acknowledged) or raise
        `CommandUnavailableError`. Called from worker threads."""


# -- requests and views -----------------------------------------------------------------


class OverrideSetArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device: Annotated[str, Field(pattern=ID_PATTERN, examples=["ac-101"])]
    point: Annotated[str, Field(pattern=POINT_PATTERN, examples=["setpoint_c"])]
    value: float | bool | str = Field(examples=[26.0])
    reason: Annotated[str, Field(min_length=1, max_length=200,
                                 examples=["exam in room 101"])]
    # A mode against the season (cooling in December) is rejected by the edge without it.
    off_season: bool = False


class OverrideClearArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    override_id: Annotated[str, Field(min_length=1, max_length=64, examples=["c-7f3a9e"])]


class CommandRequest(BaseModel):
    """`override.set` holds until `duration_s` from now (the command's expiry);
    `override.clear` must reach the edge within `duration_s` or is dropped there."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"edge": "edge-1", "name": "override.set", "duration_s": 3600,
         "args": {"device": "ac-101", "point": "setpoint_c", "value": 26,
                  "reason": "exam in room 101"}},
        {"edge": "edge-1", "name": "override.clear", "duration_s": 600,
         "args": {"override_id": "c-7f3a9e"}}]})

    edge: Annotated[str, Field(pattern=ID_PATTERN)]
    name: Literal["override.set", "override.clear"]
    args: dict[str, Any]
    duration_s: Annotated[int, Field(ge=10, le=MAX_OVERRIDE_S)] = 3600

    @model_validator(mode="after")
    def _args(self) -> CommandRequest:
        model = OverrideSetArgs if self.name == "override.set" else OverrideClearArgs
        # off_season only when set: commands without it stay as they were on the wire
        self.args = model.model_validate(self.args).model_dump(exclude_defaults=True)
        return self


class CommandView(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: str = Field(examples=["c-7f3a9e01b2c4d5e6"])
    institution: str
    site: str
    edge: str
    name: str
    args: dict[str, Any]
    issued: int = Field(description="ms since the epoch")
    expires: int = Field(description="ms since the epoch")
    created_by: str
    status: Status
    detail: str | None = None
    answered: int | None = Field(default=None, description="ts of the edge's answer, ms")


# -- the command table --------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY, institution TEXT NOT NULL, site TEXT NOT NULL, edge TEXT NOT NULL,
    name TEXT NOT NULL, args TEXT NOT NULL, issued INTEGER NOT NULL, expires INTEGER NOT NULL,
    created_by TEXT NOT NULL, sent INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS commands_by_institution ON commands (institution, issued);
"""


@dataclass(frozen=True, slots=True)
class _Row:
    id: str
    institution: str
    site: str
    edge: str
    name: str
    args: dict[str, Any]
    issued: int
    expires: int
    created_by: str
    sent: bool


CommandRow = _Row


class CommandTable(Protocol):
    """Where sent commands are recorded: `CommandBook` (a SQLite file of one central) or,
    shared by the workers of a PostgreSQL central, `central.pgstate.PgCommandBook`. Reads
    name the institution: a command is found only under its own."""

    def add(self, row: _Row) -> None: ...
    def mark_sent(self, command_id: str) -> None: ...
    def rows(self, institution: str, *, command_id: str | None = None,
             limit: int = 200) -> list[_Row]: ...
    def close(self) -> None: ...


class CommandBook(SqliteFile):
    def __init__(self, path: str | Path) -> None:
        super().__init__(path, _SCHEMA, "command store")

    def add(self, row: _Row) -> None:
        self._run("INSERT INTO commands (id, institution, site, edge, name, args, issued, "
                  "expires, created_by, sent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  (row.id, row.institution, row.site, row.edge, row.name,
                   json.dumps(row.args), row.issued, row.expires, row.created_by,
                   int(row.sent)))

    def mark_sent(self, command_id: str) -> None:
        self._run("UPDATE commands SET sent = 1 WHERE id = ?", (command_id,))

    def rows(self, institution: str, *, command_id: str | None = None,
             limit: int = 200) -> list[_Row]:
        sql = ("SELECT id, institution, site, edge, name, args, issued, expires, created_by, "
               "sent FROM commands WHERE institution = ?")
        params: list[Any] = [institution]
        if command_id is not None:
            sql += " AND id = ?"
            params.append(command_id)
        sql += " ORDER BY issued DESC, id LIMIT ?"
        params.append(limit)
        return [_Row(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), int(r[6]), int(r[7]),
                     r[8], bool(r[9])) for r in self._run(sql, params)]


def _answers(db: StoreReader, rows: Sequence[_Row]) -> dict[str, tuple[str, str | None, int]]:
    """The latest `command.result` answer per command id, from the commands' edges."""
    out: dict[str, tuple[str, str | None, int]] = {}
    for edge in sorted({r.edge for r in rows}):
        for found in db.command_results(edge, [r.id for r in rows if r.edge == edge]):
            if found.status in EDGE_STATUSES:
                out[found.id] = (found.status, found.detail, found.ts)
    return out


class CommandService:
    """What the API calls: validate, record, publish; read back with status."""

    def __init__(self, book: CommandTable, publisher: CommandPublisher) -> None:
        self.book = book
        self.publisher = publisher

    def send(self, *, institution: str, site: str, request: CommandRequest, created_by: str,
             now_ms: int) -> _Row:
        row = _Row(id="c-" + secrets.token_hex(8), institution=institution, site=site,
                   edge=request.edge, name=request.name, args=request.args, issued=now_ms,
                   expires=now_ms + request.duration_s * 1000, created_by=created_by,
                   sent=False)
        self.book.add(row)  # recorded first: even an unsent command is accounted for
        self.publisher.publish(site, request.edge, Command(
            id=row.id, name=row.name, issued=row.issued, expires=row.expires, args=row.args))
        self.book.mark_sent(row.id)
        return row

    def views(self, db: StoreReader, institution: str, *, now_ms: int,
              command_id: str | None = None, limit: int = 200) -> list[CommandView]:
        rows = self.book.rows(institution, command_id=command_id, limit=limit)
        answers = _answers(db, rows)
        out = []
        for r in rows:
            status: Status
            detail = answered = None
            if r.id in answers:
                status, detail, answered = answers[r.id]  # type: ignore[assignment]
            elif not r.sent:
                status = "unsent"
            elif now_ms >= r.expires:
                status = "unanswered"
            else:
                status = "pending"
            out.append(CommandView(id=r.id, institution=r.institution, site=r.site,
                                   edge=r.edge, name=r.name, args=r.args, issued=r.issued,
                                   expires=r.expires, created_by=r.created_by, status=status,
                                   detail=detail, answered=answered))
        return out


# -- MQTT ---------------------------------------------------------------------------------


class MqttCommandLink:
    """Publishes commands. The central attaches it to the ingest's own connection
    (`attach`, called by `run_ingest(on_client=...)`), so it has one MQTT identity: under the
    hardened broker the client id is the certificate's CN, and a second connection with the
    same certificate would take the ingest's session over. `run` keeps a connection of its
    own instead (clean session: a command not delivered now is not queued for hours, its
    expiry would pass anyway), for tools that publish without ingesting."""

    def __init__(self, host: str, port: int, client_id: str, *, keepalive_s: int = 30,
                 timeout_s: float = 10.0, tls: aiomqtt.TLSParameters | None = None,
                 signer: Signer | None = None, username: str | None = None,
                 password: str | None = None) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.tls = tls
        self.signer = signer
        self.username, self.password = username, password
        self.keepalive_s, self.timeout_s = keepalive_s, timeout_s
        self._client: aiomqtt.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def connected(self) -> bool:
        return self._client is not None

    def attach(self, client: aiomqtt.Client | None) -> None:
        """Publish over `client` (another task's connection) until called with None."""
        self._client = client
        if client is not None:
            self._loop = asyncio.get_running_loop()

    async def run(self) -> None:
        """Stay connected until cancelled, reconnecting after errors."""
        delay = 0.5
        while True:
            try:
                async with aiomqtt.Client(self.host, self.port, identifier=self.client_id,
                                          keepalive=self.keepalive_s,
                                          timeout=self.timeout_s,
                                          tls_params=self.tls, username=self.username,
                                          password=self.password) as client:
                    self._loop = asyncio.get_running_loop()
                    self._client = client
                    delay = 0.5
                    async for _ in client.messages:  # none (no subscription); raises
                        pass  # MqttError when the connection drops
            except aiomqtt.MqttError as exc:
                log.warning("command link to %s:%s lost: %s", self.host, self.port, exc)
            finally:
                self._client = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    def publish(self, site: str, edge: str, command: Command) -> None:
        client, loop = self._client, self._loop
        if client is None or loop is None:
            raise CommandUnavailableError("command not sent: the central is not connected to the "
                                     "MQTT broker")
        where = topic(site, edge, Channel.CMD)
        payload = encode(command) if self.signer is None else self.signer.sign(
            where, command, command.issued)
        future = asyncio.run_coroutine_threadsafe(
            client.publish(where, payload, qos=1,
                           retain=False, timeout=self.timeout_s), loop)
        try:
            future.result(self.timeout_s + 1)
        except (aiomqtt.MqttError, TimeoutError) as exc:
            future.cancel()
            raise CommandUnavailableError(f"command not sent: {exc}") from None
