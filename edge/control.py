"""The edge's gate for control messages from the central: acks (which delete outbox rows)
and commands (which switch devices). docs/security.md tells the attacks it stops.

With `mqtt.central_public_key` configured, only envelopes signed by the central's key are
acted on (`protocols.signing.Verifier`): unsigned, wrongly signed, foreign-key, expired,
replayed and retained ones are refused and counted by reason; a refused command whose inner
command could be read is answered with a `command.result` of status `refused` (at most
`REFUSAL_EVENTS_PER_HOUR`, the rest only counted), so the audit shows it as refused, never as
executed. Nothing refused reaches the rules, so it cannot use up a device's write budget.

Without a key (installations from before signing) the edge behaves as before (it opens
signed envelopes without checking them, so a signing central keeps working) and logs a
warning at start; retained commands are refused either way. Anyone who can publish on its
topics can then delete its unsent data and switch its devices.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from protocols.errors import WireError
from protocols.signing import (
    Refusal,
    SignatureError,
    Signer,
    Verifier,
    create_key_file,
    public_key_text,
)
from protocols.wire import Ack, Command, Message, Signed, decode

log = logging.getLogger(__name__)

REFUSAL_EVENTS_PER_HOUR = 20


def _unwrapped(message: Message) -> Message:
    """Without a key, a signed envelope is opened unchecked: a central that signs keeps
    working with edges not yet given its public key."""
    return decode(message.msg.encode()) if isinstance(message, Signed) else message


@dataclass(slots=True)
class ControlStats:
    refused_acks: dict[str, int] = field(default_factory=dict)  # by Refusal
    refused_commands: dict[str, int] = field(default_factory=dict)
    refusal_events_suppressed: int = 0


@dataclass(frozen=True, slots=True)
class RefusedCommand:
    """A command the gate did not let through, to be answered `refused`."""

    command: Command
    refusal: Refusal
    detail: str


class ControlGate:
    def __init__(self, public_key: str | None) -> None:
        self.verifier = None if public_key is None else Verifier(public_key)
        self.stats = ControlStats()
        self._events: deque[float] = deque()
        self._warned: set[str] = set()

    @property
    def signed(self) -> bool:
        return self.verifier is not None

    def warn_if_open(self, edge_id: str) -> None:
        if self.verifier is None:
            log.warning("edge %s has no mqtt.central_public_key: acks and commands are NOT "
                        "authenticated; anyone who can publish on its topics can delete its "
                        "unsent data and switch its devices (docs/security.md)", edge_id)

    def ack(self, topic_name: str, payload: bytes, *, now_ms: int, synced: bool,
            retained: bool) -> Ack | None:
        """The ack to act on, or None (refused and counted; a malformed one raises
        `WireError` for the caller's existing count)."""
        if self.verifier is None:
            message = _unwrapped(decode(payload))
            return message if isinstance(message, Ack) else None
        try:
            got = self.verifier.check(topic_name, payload, now_ms=now_ms,
                                      clock_synced=synced, retained=retained)
        except SignatureError as exc:
            self._count(self.stats.refused_acks, exc, "ack")
            return None
        return got.message if isinstance(got.message, Ack) else None

    def command(self, topic_name: str, payload: bytes, *, now_ms: int, synced: bool,
                retained: bool) -> Command | RefusedCommand | None:
        """The command to execute, a `RefusedCommand` to answer, or None (refused and not
        worth an answer: nothing readable inside). Malformed payloads raise `WireError`."""
        if self.verifier is None:
            if retained:  # never retained, signed or not (docs/wire-protocol.md)
                self._count(self.stats.refused_commands,
                            SignatureError(Refusal.RETAINED, "retained"), "command")
                return None
            message = _unwrapped(decode(payload))
            if not isinstance(message, Command):
                raise WireError("type", type(message).__name__, "must be command")
            return message
        try:
            got = self.verifier.check(topic_name, payload, now_ms=now_ms,
                                      clock_synced=synced, retained=retained)
        except SignatureError as exc:
            self._count(self.stats.refused_commands, exc, "command")
            inner = exc.inner
            if isinstance(inner, Command) and exc.refusal is not Refusal.REPLAYED \
                    and self._may_answer(now_ms):
                return RefusedCommand(inner, exc.refusal, exc.detail)
            return None
        if not isinstance(got.message, Command):
            self._count(self.stats.refused_commands,
                        SignatureError(Refusal.MALFORMED, "an ack on the cmd topic"), "command")
            return None
        return got.message

    def _count(self, counts: dict[str, int], exc: SignatureError, what: str) -> None:
        counts[exc.refusal.value] = counts.get(exc.refusal.value, 0) + 1
        key = f"{what}:{exc.refusal.value}"
        if key not in self._warned:  # once per kind and reason, not per message
            self._warned.add(key)
            log.warning("refused %s (%s); further ones are only counted", what, exc)

    def _may_answer(self, now_ms: int) -> bool:
        now = now_ms / 1000
        while self._events and self._events[0] <= now - 3600:
            self._events.popleft()
        if len(self._events) >= REFUSAL_EVENTS_PER_HOUR:
            self.stats.refusal_events_suppressed += 1
            return False
        self._events.append(now)
        return True


def create_uplink_key(key_file: Path) -> bool:
    """Write a new signing key (0600, never overwriting) and `<file>.pub`; False if one
    exists."""
    return create_key_file(key_file, key_file.with_name(key_file.name + ".pub"))


def load_uplink_signer(key_file: Path, *, quiet: bool = False) -> Signer:
    """This edge's signing key (`mqtt.signing_key_file`); created at first start, its public
    key logged for the central's `edge_keys` (unless `quiet`)."""
    if create_uplink_key(key_file) and not quiet:
        log.warning("created the uplink signing key %s; list its public key %s under "
                    "edge_keys in the central's institution file", key_file,
                    public_key_text(key_file.read_bytes()))
    return Signer(key_file.read_bytes())
