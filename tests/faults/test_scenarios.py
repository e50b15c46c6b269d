"""The fault-injection suite of shared RELIABILITY.md, against real processes.

Each scenario runs the demo school as processes (meters, edge, Mosquitto, central), injects
its fault, lets everything drain, and ends with a counting oracle: expected, matched,
missing, duplicated. The oracles are appended to test-artifacts/reliability.jsonl, from
which docs/reliability.md's table is copied.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from simulators.netfault import LinkState
from tests.faults.harness import Institution, Oracle

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
    assert (oracle.missing, oracle.duplicated) == (0, 0), oracle
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
