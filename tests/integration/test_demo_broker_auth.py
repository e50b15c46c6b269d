"""The demo's embedded broker requires the credentials the demo generates: no anonymous
client, not even on loopback, and no wrong password (issue 20, item 3). Both brokers the demo
may pick: Mosquitto (password file in its `$7$` format) and amqtt (Argon2 password file)."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import aiomqtt
import pytest

from simulators.broker import demo_broker, mosquitto_binary, mosquitto_password_hash

pytestmark = pytest.mark.integration
USERS = {"edge-1": "e-secret-1", "greenguard-central": "c-secret-2"}


def test_the_hash_is_the_one_mosquitto_passwd_writes() -> None:
    # `mosquitto_passwd -b -c pw u1 secret1` wrote this line once (salt 5+Me3hdT5LzmDhUh).
    salt = base64.b64decode("5+Me3hdT5LzmDhUh")
    assert mosquitto_password_hash("secret1", salt=salt) == (
        "$7$101$5+Me3hdT5LzmDhUh$U90bPqo3jus3HjKRP9ytr7DF6UWUySPkLzD/LsEp76v37M1GWaZzvDPvXmZ9"
        "Lq7tTOVSezKA6bqnCblmsMsgBw==")


async def _connects(port: int, username: str | None, password: str | None) -> bool:
    try:
        async with aiomqtt.Client("127.0.0.1", port, username=username, password=password,
                                  identifier=f"probe-{username}", timeout=5,
                                  protocol=aiomqtt.ProtocolVersion.V311) as client:
            await client.publish("gg/v1/school/edge-1/telemetry", b"{}", qos=1, timeout=5)
    except aiomqtt.MqttError:
        return False
    return True


@pytest.mark.parametrize("kind", ["mosquitto", "amqtt"])
async def test_only_the_generated_users_may_connect(kind: str) -> None:
    if kind == "mosquitto" and mosquitto_binary() is None:
        pytest.skip("mosquitto is not installed")
    async with demo_broker(prefer=kind, users=USERS) as broker:
        assert broker.users == USERS
        assert await _connects(broker.port, "edge-1", "e-secret-1")
        assert await _connects(broker.port, "greenguard-central", "c-secret-2")
        assert not await _connects(broker.port, None, None)  # anonymous
        assert not await _connects(broker.port, "edge-1", "wrong")
        assert not await _connects(broker.port, "evil-1", "e-secret-1")


async def test_without_users_the_broker_stays_anonymous_for_tests() -> None:
    async with demo_broker(prefer="amqtt") as broker:
        assert await _connects(broker.port, None, None)


def test_mosquitto_passwd_agrees_when_installed(tmp_path: Path) -> None:
    passwd = shutil.which("mosquitto_passwd")
    if passwd is None:
        pytest.skip("mosquitto_passwd is not installed")
    subprocess.run([passwd, "-b", "-c", str(tmp_path / "pw"), "u", "pw"], check=True,
                   capture_output=True)
    stored = (tmp_path / "pw").read_text(encoding="utf-8").strip().split(":", 1)[1]
    _, _, iterations, salt, _ = stored.split("$")
    assert mosquitto_password_hash("pw", salt=base64.b64decode(salt),
                                   iterations=int(iterations)) == stored
