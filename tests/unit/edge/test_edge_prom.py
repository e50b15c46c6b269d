"""The edge's metrics responder over real HTTP on loopback: /metrics answers with the
agent's live values, anything else is 404, and a taken port does not stop the agent."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest

from edge.agent import EdgeAgent
from edge.config import MetricsSettings, parse_edge_config
from edge.prom import serve_metrics
from protocols.clock import SystemClock
from protocols.wire import Sample
from tests.conftest import free_port


def make_agent(tmp_path: Path, port: int) -> EdgeAgent:
    config = parse_edge_config({
        "edge_id": "edge-1", "site": "school",
        "outbox": {"path": str(tmp_path / "outbox.sqlite")},
        "metrics": {"host": "127.0.0.1", "port": port},
        "devices": [{"id": "m1", "host": "127.0.0.1", "port": free_port(),
                     "model": "eastron-sdm120"}],
    })
    return EdgeAgent.create(config, clock=SystemClock())


async def test_metrics_answer_with_live_values(tmp_path: Path) -> None:
    port = free_port()
    agent = make_agent(tmp_path, port)
    assert agent.config.metrics is not None
    started = asyncio.Event()
    task = asyncio.create_task(serve_metrics(agent, agent.config.metrics, started))
    try:
        await asyncio.wait_for(started.wait(), 5)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            before = (await http.get("/metrics")).text
            assert 'greenguard_edge_outbox_depth{edge="edge-1"} 0.0' in before
            agent.outbox.append([Sample(0, 1_750_000_000_000, "m1", "power_w", 1.0, "W")] * 3)
            agent.poll_stats.observe_read(0.03)
            dev = agent.schedulers[0].devices[0]
            dev.polls, dev.poll_failures, dev.alarmed = 5, 2, True
            after = await http.get("/metrics")
            assert after.status_code == 200
            assert 'greenguard_edge_outbox_depth{edge="edge-1"} 3.0' in after.text
            assert 'greenguard_edge_poll_seconds_bucket{edge="edge-1",le="0.05"} 1.0' in after.text
            assert 'greenguard_edge_poll_seconds_bucket{edge="edge-1",le="0.025"} 0.0' in after.text
            # Per-device counters: which meter fails, not only how many reads do.
            assert 'greenguard_edge_device_polls_total{device="m1",edge="edge-1"} 5.0' in after.text
            assert ('greenguard_edge_device_poll_failures_total{device="m1",edge="edge-1"} 2.0'
                    in after.text)
            assert ('greenguard_edge_device_offline_alarm{device="m1",edge="edge-1"} 1.0'
                    in after.text)
            assert (await http.get("/other")).status_code == 404
    finally:
        task.cancel()
        agent.outbox.close()


async def test_a_taken_port_is_logged_not_fatal(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        agent = make_agent(tmp_path, port)
        async with asyncio.timeout(5):
            await serve_metrics(agent, MetricsSettings(host="127.0.0.1", port=port))
        agent.outbox.close()
    assert "metrics not served" in caplog.text
