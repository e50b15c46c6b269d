"""The fault-injection suite of shared RELIABILITY.md, against real processes.

Each scenario runs the demo school as processes (meters, edge, Mosquitto, central), injects
its fault, lets everything drain, and ends with a counting oracle: expected, matched,
missing, duplicated. The oracles are appended to test-artifacts/reliability.jsonl, from
which docs/reliability.md's table is copied.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from simulators.netfault import LinkState
from tests.faults.harness import Institution, Oracle, small_disk

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
async def school(tmp_path: Path, mosquitto_binary: str) -> AsyncIterator[Institution]:
    inst = Institution(tmp_path)
    await inst.start()
    try:
        yield inst
    finally:
        await inst.stop()


def check(oracle: Oracle) -> None:
    oracle.record()
    assert oracle.expected > 0
    assert (oracle.missing, oracle.duplicated, oracle.unexpected) == (0, 0, 0), oracle
    assert oracle.matched == oracle.expected, oracle


async def test_baseline_no_fault(school: Institution) -> None:
    await school.stored_at_least(300)
    await school.quiesce_and_drain()
    check(school.oracle("0", "none (baseline)"))


async def test_1_broker_kill_9_while_streaming(school: Institution) -> None:
    await school.stored_at_least(200)
    school.broker.kill()
    await asyncio.sleep(4)  # meters keep streaming into the outbox
    school.broker.start()
    await school.stored_at_least(600, within_s=60)
    await school.quiesce_and_drain()
    check(school.oracle("1", "broker kill -9, down 4 s"))


async def test_5_edge_kill_9_at_random_moments(school: Institution) -> None:
    rng = random.Random(5)
    assert school.edge is not None
    await school.stored_at_least(100)
    for _ in range(6):
        await asyncio.sleep(rng.uniform(0.3, 2.0))
        school.edge.kill()
        school.edge.start()
    await school.stored_at_least(600, within_s=60)
    await school.quiesce_and_drain()
    integrity = school.edge_integrity()
    assert integrity == "ok"
    check(school.oracle("5", "edge kill -9 × 6 at random moments"))


async def test_6_central_kill_9_mid_stream(school: Institution) -> None:
    rng = random.Random(6)
    await school.stored_at_least(100)
    for _ in range(4):
        await asyncio.sleep(rng.uniform(0.5, 2.0))
        school.central.kill()
        await asyncio.sleep(0.5)
        school.central.start()
    await school.stored_at_least(600, within_s=60)
    await school.quiesce_and_drain()
    check(school.oracle("6", "central kill -9 × 4 between store write and ack"))


async def test_4_flapping_link(school: Institution) -> None:
    rng = random.Random(4)
    assert school.proxy is not None
    await school.stored_at_least(100)
    for _ in range(6):
        school.proxy.set_state(LinkState.DOWN)
        await asyncio.sleep(rng.uniform(1, 4) / 2)
        school.proxy.set_state(LinkState.FORWARD)
        await asyncio.sleep(rng.uniform(1, 4) / 2)
    await school.stored_at_least(600, within_s=60)
    await school.quiesce_and_drain()
    check(school.oracle("4", "edge link flapping, 0.5–2 s down/up × 6"))


@pytest.fixture
async def school_ka5(tmp_path: Path, mosquitto_binary: str) -> AsyncIterator[Institution]:
    """The school with a 5 s MQTT keepalive, so link detection fits in a test."""
    inst = Institution(tmp_path, keepalive_s=5)
    await inst.start()
    try:
        yield inst
    finally:
        await inst.stop()


def edge_online(inst: Institution) -> bool | None:
    rows = inst.central_query("SELECT online FROM edges WHERE edge = 'edge-1'")
    return None if not rows or rows[0][0] is None else bool(rows[0][0])


async def test_2_hard_partition_marks_edge_offline_and_loses_nothing(
        school_ka5: Institution) -> None:
    school = school_ka5
    assert school.proxy is not None
    await school.stored_at_least(100)
    await school.wait_until(lambda: edge_online(school) is True, within_s=10, what="online")
    produced_before = school.edge_outbox()["next_seq"]
    school.proxy.set_state(LinkState.DOWN)
    # Promise: offline within 1.5 × keepalive + margin (here the broker sees the reset).
    await school.wait_until(lambda: edge_online(school) is False, within_s=1.5 * 5 + 3,
                            what="the central to mark the edge offline")
    await asyncio.sleep(8)
    # The edge kept polling while cut off.
    assert school.edge_outbox()["next_seq"] > produced_before + 200
    school.proxy.set_state(LinkState.FORWARD)
    await school.wait_until(lambda: edge_online(school) is True, within_s=40,
                            what="the edge back online")
    await school.quiesce_and_drain()
    check(school.oracle("2", "hard partition (RST) 10 s, keepalive 5 s"))


async def test_3_silent_blackhole_is_detected_by_keepalive(school_ka5: Institution) -> None:
    school = school_ka5
    assert school.proxy is not None
    await school.stored_at_least(100)
    await school.wait_until(lambda: edge_online(school) is True, within_s=10, what="online")
    school.proxy.set_state(LinkState.BLACKHOLE)
    # No RST, no FIN: only the keepalive can tell. Broker side: 1.5 × keepalive.
    await school.wait_until(lambda: edge_online(school) is False, within_s=1.5 * 5 + 3,
                            what="the broker to expire the half-open edge")
    # Edge side: paho misses its PINGRESP and the uplink reconnects.
    await school.wait_until(lambda: "uplink lost" in school.log_text("edge"),
                            within_s=1.5 * 5 + 10, what="the edge to notice the dead link")
    school.proxy.set_state(LinkState.FORWARD)
    await school.wait_until(lambda: edge_online(school) is True, within_s=40,
                            what="the edge back online")
    await school.quiesce_and_drain()
    check(school.oracle("3", "silent blackhole (no RST), keepalive 5 s"))


async def test_8_duplicate_and_reordered_replay_storm(school: Institution) -> None:
    import aiomqtt

    from protocols.wire import Channel, subscription

    captured: list[tuple[str, bytes]] = []

    async def capture() -> None:
        async with aiomqtt.Client("127.0.0.1", school.broker_port, identifier="tap") as tap:
            for ch in (Channel.TELEMETRY, Channel.EVENTS):
                await tap.subscribe(subscription(ch), qos=1)
            async for message in tap.messages:
                assert isinstance(message.payload, bytes)
                captured.append((message.topic.value, message.payload))

    tap = asyncio.create_task(capture())
    await school.stored_at_least(400)
    await school.quiesce_and_drain()
    tap.cancel()
    await asyncio.gather(tap, return_exceptions=True)
    before = school.oracle("8", "")
    assert before.missing == 0
    rng = random.Random(8)
    storm = captured * 3
    rng.shuffle(storm)
    school.central.kill()  # half the storm before a central restart, half after
    school.central.start()
    async with aiomqtt.Client("127.0.0.1", school.broker_port, identifier="storm") as pub:
        for i, (topic_name, payload) in enumerate(storm):
            if i == len(storm) // 2:
                school.central.kill()
                school.central.start()
            await pub.publish(topic_name, payload, qos=1)
    await asyncio.sleep(3)
    after = school.oracle("8", f"replay storm: {len(captured)} batches × 3, shuffled, "
                               "central restarted mid-storm")
    assert after.matched == before.matched
    check(after)


async def test_9_wiped_edge_is_a_new_stream(school: Institution) -> None:
    assert school.edge is not None
    await school.stored_at_least(200)
    school.edge.stop()
    old = school.edge_outbox()
    for f in school.dir.glob("outbox.sqlite*"):
        f.unlink()
    school.edge.start()
    await school.wait_until(lambda: school.edge_outbox()["next_seq"] > 100, within_s=30,
                            what="the new stream to produce")
    new_epoch = school.edge_outbox()["epoch"]
    assert new_epoch != old["epoch"]
    await school.quiesce_and_drain()
    # The old stream: everything the central acknowledged is there.
    stored_old = school.central_query(
        "SELECT count(*) FROM samples WHERE stream_epoch = ?", (old["epoch"],))[0][0]
    assert stored_old > 0
    # The new stream starts again at seq 1 and nothing of it is taken for a duplicate.
    first = school.central_query(
        "SELECT min(seq) FROM samples WHERE stream_epoch = ?", (new_epoch,))[0][0]
    assert first <= 3
    check(school.oracle("9", "edge storage wiped: new epoch, seq restarts at 1"))


async def test_10_outage_longer_than_the_buffer(tmp_path: Path, mosquitto_binary: str) -> None:
    school = Institution(tmp_path, outbox_max_rows=300)
    await school.start()
    try:
        assert school.proxy is not None
        await school.stored_at_least(50)
        school.proxy.set_state(LinkState.DOWN)
        await school.wait_until(lambda: school.edge_outbox()["dropped_samples"] > 200,
                                within_s=40, what="the outbox to overflow")
        school.proxy.set_state(LinkState.FORWARD)
        await school.quiesce_and_drain()
        oracle = school.oracle("10", "link down past a 300-row outbox")
        meta = school.edge_outbox()
        assert meta["dropped_other"] == 0  # interval records and events were kept
        markers = school.central_query(
            "SELECT data FROM events WHERE name = 'outbox.overflow'")
        assert markers
        import json as _json

        dropped = sum(_json.loads(d)["dropped_samples"] for (d,) in markers)
        assert dropped == meta["dropped_samples"] == oracle.dropped_by_policy
        check(oracle)
    finally:
        await school.stop()


def _seqs(ranges: list[list[int]]) -> set[int]:
    return {q for first, last in ranges for q in range(first, last + 1)}


async def test_11_disk_full_on_the_edge_stays_full(tmp_path: Path, mosquitto_binary: str) -> None:
    """The outbox fills its own small disk while the broker is away; the link comes back
    and nobody frees any space. The edge must report at once, deliver everything it wrote,
    name exactly what it could not write, and go back to normal by itself."""
    with small_disk(tmp_path / "disk", "1536k") as disk:
        # Other files on the volume: about 512 KiB are left for the outbox, never freed.
        (disk / "other-files").write_bytes(b"\0" * 1024 * 1024)
        school = Institution(tmp_path, outbox_path="disk/outbox.sqlite", outbox_settings={
            "min_free_bytes": 192 * 1024, "reserve_bytes": 128 * 1024})
        await school.start()
        try:
            assert school.proxy is not None
            assert school.edge is not None
            await school.stored_at_least(50)
            school.proxy.set_state(LinkState.DOWN)  # the broker is away
            await school.wait_until(
                lambda: "outbox under disk pressure" in school.log_text("edge"),
                within_s=120, what="the edge's disk to fill up")
            await asyncio.sleep(3)  # records keep being refused
            assert school.edge.alive, "the edge crashed on a full disk"
            restored = time.monotonic()
            school.proxy.set_state(LinkState.FORWARD)  # link back, no space freed

            def status(state: str) -> list[dict[str, Any]]:
                return [json.loads(d) for (d,) in school.central_query(
                    "SELECT data FROM events WHERE name = 'alarm.outbox_disk' "
                    "AND seq < 0 ORDER BY ts")
                        if json.loads(d).get("state") == state]

            await school.wait_until(lambda: status("raised"), within_s=60,
                                    what="the disk-pressure alarm at the central")
            alarm_after_s = time.monotonic() - restored
            assert alarm_after_s < 60
            raised = status("raised")[0]
            assert raised["dropped_records"] > 0
            assert raised["dropped_seqs"]
            # Back to normal by itself: the pressure ends as acks free pages, the exact
            # ranges are written into the stream, and new readings flow again.
            await school.wait_until(lambda: status("cleared"), within_s=120,
                                    what="the edge to clear its disk-pressure alarm")
            await school.wait_until(lambda: school.central_query(
                "SELECT count(*) FROM events WHERE name = 'outbox.disk_full' AND seq > 0"
            )[0][0] > 0, within_s=60, what="the in-stream outbox.disk_full marker")
            markers = [json.loads(d) for (d,) in school.central_query(
                "SELECT data FROM events WHERE name = 'outbox.disk_full' AND seq > 0")]
            (last_marker_seq,) = school.central_query(
                "SELECT max(seq) FROM events WHERE name = 'outbox.disk_full' AND seq > 0")[0]
            await school.wait_until(lambda: school.central_query(
                "SELECT count(*) FROM samples WHERE seq > ?", (last_marker_seq,)
            )[0][0] >= 200, within_s=60, what="normal delivery after the pressure")
            await school.quiesce_and_drain(within_s=120)
            markers = [json.loads(d) for (d,) in school.central_query(
                "SELECT data FROM events WHERE name = 'outbox.disk_full' AND seq > 0")]
            in_stream = set().union(*(_seqs(m["dropped_seqs"]) for m in markers))
            reports = status("raised") + status("cleared")
            reported = set().union(*(_seqs(s["dropped_seqs"]) for s in reports))
            assert reported <= in_stream, "reported out of band but not in the stream"
            if len(markers) == 1:  # one episode: its cleared report names every range
                assert _seqs(status("cleared")[-1]["dropped_seqs"]) == in_stream
            meta = school.edge_outbox()
            produced = set(range(1, meta["next_seq"]))
            stored = {q for t in ("samples", "events", "intervals") for (q,) in
                      school.central_query(f"SELECT seq FROM {t} WHERE stream_epoch = ? "
                                           "AND seq > 0", (meta["epoch"],))}
            assert produced - stored == in_stream, "dropped ranges != what was not written"
            oracle = school.oracle(
                "11", f"edge disk full (tmpfs) and kept full, link down then up; "
                      f"{len(in_stream)} records refused by seq, alarm "
                      f"{alarm_after_s:.1f} s after the link came back")
            assert oracle.dropped_by_policy == len(in_stream) > 0
            assert oracle.stored_despite_drop == 0
            assert school.edge_integrity() == "ok"
            check(oracle)
        finally:
            await school.stop()


async def test_7_central_store_failing_then_recovering_and_a_poison_record(
        tmp_path: Path, mosquitto_binary: str) -> None:
    import aiomqtt

    with small_disk(tmp_path / "cdisk", "8m") as disk:
        school = Institution(tmp_path, central_db="cdisk/central.sqlite")
        await school.start()
        try:
            await school.stored_at_least(100)
            # A poison record inside an otherwise valid batch from another edge.
            poison = (b'{"v":1,"type":"batch","stream":{"edge":"edge-9","epoch":1},"seq":2,'
                      b'"after":0,"sent":1,"synced":true,"records":['
                      b'{"kind":"sample","seq":1,"ts":1,"device":"m1","point":"power_w",'
                      b'"value":1.0,"unit":"W"},'
                      b'{"kind":"sample","seq":2,"ts":2,"device":"m1","point":"power_w",'
                      b'"value":1.0,"unit":"a unit far too long to be valid"}]}')
            birth = (b'{"v":1,"type":"birth","stream":{"edge":"edge-9","epoch":1},"ts":1,'
                     b'"synced":true,"software":"t"}')  # its epoch announced first
            async with aiomqtt.Client("127.0.0.1", school.broker_port, identifier="p") as c:
                await c.publish("gg/v1/demo-school/edge-9/state", birth, qos=1)
                await c.publish("gg/v1/demo-school/edge-9/telemetry", poison, qos=1)
            await school.wait_until(lambda: school.central_query(
                "SELECT count(*) FROM samples WHERE stream_edge = 'edge-9'")[0][0] == 1,
                within_s=10, what="the good record of the poisoned batch")
            # The store fails: its disk fills up under the running central.
            filler = disk / "filler"
            with contextlib.suppress(OSError), filler.open("wb") as f:
                while True:
                    f.write(b"\0" * 65536)
            await school.wait_until(lambda: "store failing" in school.log_text("central"),
                                    within_s=20, what="the central's store to fail")
            acked = school.edge_outbox()["acked_upto"]
            await asyncio.sleep(4)
            meta = school.edge_outbox()
            assert meta["acked_upto"] == acked  # no ack while writes fail: back-pressure
            assert meta["next_seq"] - 1 > acked + 100
            filler.unlink()
            await school.quiesce_and_drain()
            oracle = school.oracle("7", "central disk full (tmpfs) ~4 s: no acks, then "
                                        "recovery; one poison record quarantined")
            assert oracle.dead_letters >= 1
            check(oracle)
        finally:
            await school.stop()
