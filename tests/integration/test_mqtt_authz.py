"""Scenario 19 (MQTT authorisation matrix) against a real Mosquitto running the production
configuration of deploy/mosquitto/ with certificates made by `greenguard certs`.

Everything not allowed is refused: a plain TCP client, a TLS client without a certificate
(whatever user name and password it sends), an expired certificate, a certificate from a
foreign CA, an edge publishing into another edge's topics (MQTT 5 PUBACK 0x87), an edge
reading another edge's or everybody's topics. The legitimate edge and central work end to
end over TLS, and an uplink whose publishes the ACL refuses keeps every outbox row.

Mosquitto's ACL file does not check SUBSCRIBE packets (its default ACL check returns success
for them; only plugins such as dynamic-security can refuse a subscription): a subscription
outside the ACL is granted and then receives nothing, because read access is checked for
every message delivered. The subscription tests therefore accept either a SUBACK failure
code or a granted subscription that delivers nothing, and prove delivery works by showing
the rightful reader got the same messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from central.certs import Authority, issue, make_site
from central.ingest import Ingestor, IngestStats, MqttOptions, run_ingest, tls_parameters
from central.store import Store
from edge.config import parse_edge_config
from edge.outbox import Outbox
from edge.uplink import Uplink
from protocols.clock import SystemClock
from protocols.wire import Sample
from tests import system
from tests.conftest import free_port, wait_for_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "deploy" / "mosquitto" / "mosquitto.conf"
ACL = REPO / "deploy" / "mosquitto" / "acl"
SITE = "school"
NOT_AUTHORISED = 0x87


@dataclass(frozen=True)
class SecureBroker:
    port: int
    certs: Path
    foreign: Path
    log: Path

    def tls(self, identity: str | None, *, certs: Path | None = None) -> aiomqtt.TLSParameters:
        """TLS trusting the site CA, with the certificate of `identity` (an edge id,
        "central", or None for none) from `certs` (default: the site's directory)."""
        d = certs or self.certs
        if identity is None:
            return aiomqtt.TLSParameters(ca_certs=str(self.certs / "ca.crt"))
        base = d / "central" if identity == "central" else d / "edges" / identity
        return aiomqtt.TLSParameters(ca_certs=str(self.certs / "ca.crt"),
                                     certfile=f"{base}.crt", keyfile=f"{base}.key")


def render_config(port: int, certs: Path, data: Path) -> str:
    """The committed production configuration with only its paths and port changed; each
    substitution must hit, so a reshaped config fails here instead of going untested."""
    text = CONF.read_text(encoding="utf-8")
    for old, new in [("listener 8883\n", f"listener {port} 127.0.0.1\n"),
                     ("/mosquitto/certs/", f"{certs}/"),
                     ("/mosquitto/config/acl", str(ACL)),
                     ("/mosquitto/data/", f"{data}/")]:
        assert old in text, f"{CONF.name} no longer contains {old!r}"
        text = text.replace(old, new)
    if os.geteuid() == 0:
        # Mosquitto started as root drops to the `mosquitto` user, which cannot enter
        # pytest's 0700 temporary directory; production runs it as that user.
        text += "user root\n"
    return text


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    binary = system.require("mosquitto")
    root = tmp_path_factory.mktemp("authz")
    certs, foreign = root / "certs", root / "foreign"
    make_site(certs, broker_names=["localhost", "127.0.0.1"],
              edges=["edge-a", "edge-b", "edge-c"])
    make_site(foreign, broker_names=["localhost"], edges=["edge-a"])
    (root / "data").mkdir()
    port = free_port()
    conf = root / "mosquitto.conf"
    conf.write_text(render_config(port, certs, root / "data"), encoding="utf-8")
    log = root / "mosquitto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, "-c", str(conf)], stdout=out, stderr=out)
    try:
        wait_for_port(port, timeout=20)
        yield SecureBroker(port, certs, foreign, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Recording(aiomqtt.Client):
    """aiomqtt resolves a publish on any PUBACK; this keeps the MQTT 5 reason codes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pubacks: dict[int, int] = {}

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason_code: Any,
                    properties: Any) -> None:
        self.pubacks[mid] = int(reason_code.value)
        super()._on_publish(client, userdata, mid, reason_code, properties)

    async def publish_rc(self, topic: str, payload: bytes) -> int:
        message = await self.publish(topic, payload, qos=1)
        # paho records the PUBACK before aiomqtt's future resolves
        assert message is None
        return self.pubacks[max(self.pubacks)]


def client(broker: SecureBroker, tls: aiomqtt.TLSParameters | None, *,
           name: str = "probe", **kwargs: Any) -> Recording:
    return Recording("localhost", broker.port, identifier=name, tls_params=tls,
                     protocol=aiomqtt.ProtocolVersion.V5, timeout=10, **kwargs)


def connect_packet(client_id: str, username: str | None = None,
                   password: str | None = None) -> bytes:
    """An MQTT 5 CONNECT (clean start, keep-alive 60 s, no properties)."""
    def string(value: str) -> bytes:
        raw = value.encode()
        return len(raw).to_bytes(2, "big") + raw

    flags = 0x02 | (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    body = string("MQTT") + bytes([5, flags]) + (60).to_bytes(2, "big") + b"\x00"
    body += string(client_id) + (string(username) if username is not None else b"")
    body += string(password) if password is not None else b""
    assert len(body) < 128  # one-byte remaining length
    return bytes([0x10, len(body)]) + body


def probe(broker: SecureBroker, tls: aiomqtt.TLSParameters | None, **connect: str) -> str:
    """Open a connection the way a client would and report how the broker answered:
    "accepted" (CONNACK 0), "connack 0x.." (refused in MQTT), "tls: ..." (refused in the
    handshake or by an alert) or "closed" (dropped without an answer). Raw sockets rather
    than aiomqtt, which reports a refused handshake only as a CONNACK timeout."""
    sock = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
    try:
        if tls is not None:
            context = ssl.create_default_context(cafile=tls.ca_certs)
            if tls.certfile is not None:
                context.load_cert_chain(tls.certfile, tls.keyfile)
            sock = context.wrap_socket(sock, server_hostname="localhost")
        sock.sendall(connect_packet("probe", **connect))
        answer = sock.recv(4)
    except ssl.SSLError as exc:  # an alert (unknown CA, certificate required) or a TLS EOF
        return f"tls: {exc.reason or type(exc).__name__}"
    except (ConnectionResetError, BrokenPipeError):
        return "closed"
    finally:
        sock.close()
    if not answer:
        return "closed"
    assert answer[0] == 0x20, answer  # CONNACK
    return "accepted" if answer[3] == 0 else f"connack {answer[3]:#04x}"


def t(edge: str, channel: str, site: str = SITE) -> str:
    return f"gg/v1/{site}/{edge}/{channel}"


# -- who may connect ---------------------------------------------------------------------


def assert_refused(outcome: str) -> None:
    """Refused before any MQTT: by a TLS alert (whose name depends on the TLS version and
    on timing) or by the broker closing the connection; never a CONNACK of any kind."""
    assert outcome == "closed" or outcome.startswith("tls: "), outcome


def test_the_probe_sees_an_accepted_connection(broker: SecureBroker) -> None:
    """The control for the refusals below: a real edge's certificate gets CONNACK 0."""
    assert probe(broker, broker.tls("edge-a")) == "accepted"


def test_plain_tcp_without_tls_is_refused(broker: SecureBroker) -> None:
    assert_refused(probe(broker, None))


@pytest.mark.parametrize("credentials", [{}, {"username": "edge-a"},
                                         {"username": "greenguard-central", "password": "x"}])
def test_tls_without_a_client_certificate_is_refused_whatever_the_password(
        broker: SecureBroker, credentials: dict[str, str]) -> None:
    assert_refused(probe(broker, broker.tls(None), **credentials))


def test_an_expired_certificate_from_our_own_ca_is_refused(
        broker: SecureBroker, tmp_path: Path) -> None:
    key_pem = (broker.certs / "ca.key").read_bytes()
    ca_key = serialization.load_pem_private_key(key_pem, password=None)
    ca = Authority(x509.load_pem_x509_certificate((broker.certs / "ca.crt").read_bytes()),
                   ca_key)  # type: ignore[arg-type]
    cert, key = issue(ca, "edge-a", days=1,
                      not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=10))
    (tmp_path / "old.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "old.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    tls = aiomqtt.TLSParameters(ca_certs=str(broker.certs / "ca.crt"),
                                certfile=str(tmp_path / "old.crt"),
                                keyfile=str(tmp_path / "old.key"))
    assert_refused(probe(broker, tls))


def test_a_certificate_from_a_foreign_ca_is_refused(broker: SecureBroker) -> None:
    # Same CN as a real edge, signed by another site's CA.
    assert_refused(probe(broker, broker.tls("edge-a", certs=broker.foreign)))


async def test_the_user_name_is_the_certificate_cn_not_what_the_client_claims(
        broker: SecureBroker) -> None:
    """An edge that claims to be the central in CONNECT still gets only its own rights."""
    async with client(broker, broker.tls("edge-a"), username="greenguard-central",
                      password="x") as c:
        assert await c.publish_rc(t("edge-b", "cmd"), b"{}") == NOT_AUTHORISED
        assert await c.publish_rc(t("edge-a", "telemetry"), b"{}") < 0x80


async def test_an_edge_cannot_take_over_the_centrals_session_by_its_client_id(
        broker: SecureBroker) -> None:
    """The client id is the certificate's CN (use_username_as_clientid), so an edge that
    connects as "greenguard-central" neither disconnects the central nor gets its queue."""
    async with client(broker, broker.tls("central"), name="greenguard-central") as central:
        await central.subscribe(t("edge-a", "telemetry"), qos=1)
        async with client(broker, broker.tls("edge-a"), name="greenguard-central") as edge:
            assert await edge.publish_rc(t("edge-a", "telemetry"), b"still here?") < 0x80
            async with asyncio.timeout(10):
                message = await anext(aiter(central.messages))
            assert message.payload == b"still here?"  # the central's session survived
            assert await central.publish_rc(t("edge-a", "cmd"), b"{}") < 0x80


# -- what an edge may publish ------------------------------------------------------------


@pytest.mark.parametrize("topic", [
    t("edge-b", "telemetry"), t("edge-b", "events"), t("edge-b", "state"),
    t("edge-a", "ack"), t("edge-a", "cmd"),  # only the central writes these
    t("edge-b", "cmd"), "gg/v1/school/edge-a/telemetry/extra", "gg/v2/school/edge-a/telemetry",
    "elsewhere", "$SYS/broker/uptime",
])
async def test_an_edge_publishing_outside_its_own_uplink_is_refused(
        broker: SecureBroker, topic: str) -> None:
    async with client(broker, broker.tls("central"), name="central-watch") as central, \
            client(broker, broker.tls("edge-a")) as edge:
        await central.subscribe("gg/v1/+/+/+", qos=1)
        assert await edge.publish_rc(topic, b"forged") == NOT_AUTHORISED
        assert await edge.publish_rc(t("edge-a", "telemetry"), b"mine") < 0x80
        async with asyncio.timeout(10):
            message = await anext(aiter(central.messages))
        # the refused message went nowhere; the allowed one, sent after it, arrived first
        assert (message.topic.value, message.payload) == (t("edge-a", "telemetry"), b"mine")


async def test_an_edge_may_publish_its_uplink_under_any_site_level(
        broker: SecureBroker) -> None:
    """Documented limit of the patterns: the site level is not pinned, so edge ids must be
    unique per broker (they are: one certificate directory, one CN per edge)."""
    async with client(broker, broker.tls("edge-a")) as edge:
        assert await edge.publish_rc(t("edge-a", "telemetry", site="other"), b"x") < 0x80


# -- what an edge may read ---------------------------------------------------------------


async def test_an_edge_reads_only_its_own_ack_and_cmd(broker: SecureBroker) -> None:
    forbidden = ["#", "gg/v1/+/+/cmd", t("edge-b", "cmd"), t("edge-b", "ack"),
                 "gg/v1/+/edge-b/#", "$SYS/#"]
    async with client(broker, broker.tls("edge-a"), name="edge-a") as spy, \
            client(broker, broker.tls("edge-b"), name="edge-b") as victim, \
            client(broker, broker.tls("central"), name="central") as central:
        codes = await spy.subscribe([(f, 1) for f in forbidden])
        await spy.subscribe(t("edge-a", "cmd"), qos=1)
        await victim.subscribe([(t("edge-b", "cmd"), 1), (t("edge-b", "ack"), 1)])
        # Mosquitto's ACL file grants every SUBSCRIBE (see the module docstring); a broker
        # that refuses them answers 0x87. Either way nothing may be delivered below.
        assert all(int(getattr(c, "value", c)) in (1, NOT_AUTHORISED) for c in codes), codes
        await central.publish(t("edge-b", "cmd"), b"for-b", qos=1)
        await central.publish(t("edge-b", "ack"), b"ack-b", qos=1)
        await victim.publish(t("edge-b", "telemetry"), b"tele-b", qos=1)
        await central.publish(t("edge-a", "cmd"), b"for-a", qos=1)
        got_victim = []
        async with asyncio.timeout(10):
            async for m in victim.messages:
                got_victim.append(m.payload)
                if len(got_victim) == 2:
                    break
        assert sorted(got_victim) == [b"ack-b", b"for-b"]  # delivery works for its owner
        async with asyncio.timeout(10):
            first = await anext(aiter(spy.messages))
        # published last, received first: nothing of edge-b's was delivered to the spy
        assert (first.topic.value, first.payload) == (t("edge-a", "cmd"), b"for-a")
        # whatever trails behind is another copy of its own command (overlapping
        # subscriptions such as gg/v1/+/+/cmd each deliver one), never edge-b's
        trailing = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                async for m in spy.messages:
                    trailing.append((m.topic.value, m.payload))
        assert set(trailing) <= {(t("edge-a", "cmd"), b"for-a")}


# -- legitimate traffic, end to end with the real uplink and ingest -----------------------


def edge_uplink(broker: SecureBroker, tmp_path: Path, edge_id: str, cert: str,
                protocol: str = "5", **uplink: float) -> Uplink:
    base = broker.certs / "edges" / cert
    config = parse_edge_config({
        "edge_id": edge_id, "site": SITE,
        "mqtt": {"host": "localhost", "port": broker.port, "protocol": protocol,
                 "ca_file": str(broker.certs / "ca.crt"), "cert_file": f"{base}.crt",
                 "key_file": f"{base}.key"},
        "uplink": {"batch_max_records": 10, **uplink},
        "devices": [{"id": "m1", "host": "127.0.0.1", "model": "eastron-sdm120"}],
    })
    outbox = Outbox(tmp_path / f"{edge_id}.outbox.sqlite", edge_id=edge_id)
    return Uplink(config, outbox, SystemClock())


@contextlib.asynccontextmanager
async def running(*coros: Any) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(c) for c in coros]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def central(broker: SecureBroker, tmp_path: Path) -> AsyncIterator[IngestStats]:
    store = Store(tmp_path / "central.sqlite")
    stats = IngestStats()
    subscribed = asyncio.Event()
    options = MqttOptions(host="localhost", port=broker.port, client_id="greenguard-central",
                          tls=tls_parameters(broker.certs / "ca.crt",
                                             broker.certs / "central.crt",
                                             broker.certs / "central.key"))
    try:
        async with running(run_ingest(Ingestor(store, SystemClock(), stats), options,
                                      subscribed=subscribed)):
            async with asyncio.timeout(30):
                await subscribed.wait()
            yield stats
    finally:
        store.close()


async def wait_until(predicate: Any, within_s: float = 30) -> None:
    async with asyncio.timeout(within_s):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_edge_and_central_work_end_to_end_over_tls(
        broker: SecureBroker, tmp_path: Path) -> None:
    uplink = edge_uplink(broker, tmp_path, "edge-a", "edge-a")
    uplink.outbox.append([Sample(0, 1_750_000_000_000 + i, "m1", "power_w", float(i), "W")
                          for i in range(25)])
    async with central(broker, tmp_path) as stats, running(uplink.run()):
        await wait_until(lambda: uplink.outbox.stats().depth == 0)
    assert stats.stored_records == 25
    assert stats.births >= 1
    assert uplink.stats.refused_publishes == 0


async def test_a_publish_refused_by_the_acl_deletes_no_outbox_row(
        broker: SecureBroker, tmp_path: Path) -> None:
    """An edge configured as edge-c but holding edge-b's certificate (a swapped SD card):
    every publish is refused with 0x87, counted, and every row stays until the right
    certificate is installed, then all of them arrive and only then leave the outbox."""
    wrong = edge_uplink(broker, tmp_path, "edge-c", "edge-b", resend_after_s=0.3)
    wrong.outbox.append([Sample(0, 1_750_000_000_000 + i, "m1", "power_w", float(i), "W")
                         for i in range(25)])
    async with central(broker, tmp_path) as stats:
        async with running(wrong.run()):
            # birth + 3 batches, then resends of the 3 batches at least once
            await wait_until(lambda: wrong.stats.refused_publishes >= 7)
            assert wrong.stats.resends >= 1
        assert wrong.outbox.stats().depth == 25
        assert [r.seq for r in wrong.outbox.read_after(0, 100)] == list(range(1, 26))
        assert (stats.batches, stats.stored_records) == (0, 0)  # nothing reached the central
        wrong.outbox.close()
        right = edge_uplink(broker, tmp_path, "edge-c", "edge-c")
        assert right.outbox.stats().depth == 25  # same file, reopened
        async with running(right.run()):
            await wait_until(lambda: right.outbox.stats().depth == 0)
        assert stats.stored_records == 25
        assert right.stats.refused_publishes == 0


async def test_under_mqtt_311_a_refused_publish_looks_delivered_and_still_deletes_nothing(
        broker: SecureBroker, tmp_path: Path) -> None:
    """Why edges use MQTT 5: under 3.1.1 Mosquitto acknowledges a publish its ACL refuses
    with an ordinary PUBACK, so the uplink cannot see the refusal. The rows stay anyway,
    because only the central's ack deletes them."""
    wrong = edge_uplink(broker, tmp_path, "edge-c", "edge-b", protocol="3.1.1",
                        resend_after_s=0.3)
    wrong.outbox.append([Sample(0, 1_750_000_000_000 + i, "m1", "power_w", float(i), "W")
                         for i in range(5)])
    async with central(broker, tmp_path) as stats, running(wrong.run()):
        await wait_until(lambda: wrong.stats.resends >= 2)
        assert wrong.stats.refused_publishes == 0  # invisible
        assert wrong.outbox.stats().depth == 5
        assert (stats.batches, stats.stored_records) == (0, 0)


# -- the compose file's health check against this broker ---------------------------------


def healthcheck(broker: SecureBroker, identity: str) -> subprocess.CompletedProcess[str]:
    """deploy/compose.yaml's Mosquitto health check, with this broker's port and files."""
    compose = yaml.safe_load((REPO / "deploy" / "compose.yaml").read_text(encoding="utf-8"))
    command = compose["services"]["mosquitto"]["healthcheck"]["test"]
    assert command[0] == "CMD"
    args = [a.replace("$$", "$").replace("/mosquitto/certs/", f"{broker.certs}/")
            for a in command[1:]]
    args[args.index("-p") + 1] = str(broker.port)
    if identity != "broker":
        args[args.index("--cert") + 1] = str(broker.certs / "edges" / f"{identity}.crt")
        args[args.index("--key") + 1] = str(broker.certs / "edges" / f"{identity}.key")
    system.require("mosquitto-clients")
    tool = shutil.which(args[0]) or args[0]
    return subprocess.run([tool, *args[1:]], capture_output=True, text=True, timeout=60,
                          check=False)


def test_the_compose_health_check_passes_as_the_broker_and_not_as_an_edge(
        broker: SecureBroker) -> None:
    ok = healthcheck(broker, "broker")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().endswith("seconds")  # $SYS/broker/uptime
    edge = healthcheck(broker, "edge-a")  # edges may not read $SYS: nothing in 5 s
    assert edge.returncode != 0
    assert edge.stdout == ""
