"""The edge's control gate (edge/control.py): what it lets through with and without the
central's public key, and how refused commands are answered."""

from __future__ import annotations

from typing import Any

import pytest

from edge.control import REFUSAL_EVENTS_PER_HOUR, ControlGate, RefusedCommand
from protocols.errors import WireError
from protocols.signing import Refusal, Signer, generate_private_key_pem
from protocols.wire import Ack, Command, StreamId, encode

T0 = 1_790_000_000_000
ACK_TOPIC, CMD_TOPIC = "gg/v1/s/edge-1/ack", "gg/v1/s/edge-1/cmd"
CENTRAL = Signer(generate_private_key_pem())
ACK = Ack(StreamId("edge-1", 1), 7)


def _cmd(i: int = 1) -> Command:
    return Command(f"c-{i}", "override.set", T0, T0 + 60_000,
                   {"device": "ac-1", "point": "on", "value": False, "reason": "x"})


def test_without_a_key_signed_and_bare_messages_pass_but_retained_commands_do_not() -> None:
    gate = ControlGate(None)
    assert not gate.signed
    kw: dict[str, Any] = {"now_ms": T0, "synced": True, "retained": False}
    assert gate.ack(ACK_TOPIC, encode(ACK), **kw) == ACK
    assert gate.ack(ACK_TOPIC, CENTRAL.sign(ACK_TOPIC, ACK, T0), **kw) == ACK
    assert gate.command(CMD_TOPIC, CENTRAL.sign(CMD_TOPIC, _cmd(), T0), **kw) == _cmd()
    assert gate.command(CMD_TOPIC, encode(_cmd()), now_ms=T0, synced=True,
                        retained=True) is None
    assert gate.stats.refused_commands == {"retained": 1}
    with pytest.raises(WireError):
        gate.command(CMD_TOPIC, encode(ACK), **kw)


def test_with_the_key_only_the_central_s_signed_messages_pass() -> None:
    gate = ControlGate(CENTRAL.public_key)
    kw: dict[str, Any] = {"now_ms": T0, "synced": True, "retained": False}
    assert gate.ack(ACK_TOPIC, encode(ACK), **kw) is None
    assert gate.ack(ACK_TOPIC, CENTRAL.sign(ACK_TOPIC, ACK, T0), **kw) == ACK
    assert gate.command(CMD_TOPIC, CENTRAL.sign(CMD_TOPIC, _cmd(), T0), **kw) == _cmd()
    refused = gate.command(CMD_TOPIC, encode(_cmd(2)), **kw)
    assert isinstance(refused, RefusedCommand)
    assert (refused.command.id, refused.refusal) == ("c-2", Refusal.UNSIGNED)
    again = gate.command(CMD_TOPIC, CENTRAL.sign(CMD_TOPIC, _cmd(3), T0), now_ms=T0,
                         synced=True, retained=True)
    assert isinstance(again, RefusedCommand)
    assert again.refusal is Refusal.RETAINED
    assert gate.stats.refused_acks == {"unsigned": 1}
    assert gate.stats.refused_commands == {"unsigned": 1, "retained": 1}


def test_refused_commands_are_answered_at_most_so_often() -> None:
    gate = ControlGate(CENTRAL.public_key)
    answers = [gate.command(CMD_TOPIC, encode(_cmd(i)), now_ms=T0, synced=True,
                            retained=False) for i in range(REFUSAL_EVENTS_PER_HOUR + 5)]
    assert sum(isinstance(a, RefusedCommand) for a in answers) == REFUSAL_EVENTS_PER_HOUR
    assert gate.stats.refusal_events_suppressed == 5
    later = gate.command(CMD_TOPIC, encode(_cmd(99)), now_ms=T0 + 3_600_001, synced=True,
                         retained=False)
    assert isinstance(later, RefusedCommand)
    assert gate.stats.refused_commands == {"unsigned": REFUSAL_EVENTS_PER_HOUR + 6}
