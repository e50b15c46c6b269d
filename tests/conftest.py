"""Shared fixtures: free ports, a real Mosquitto broker, and the one summary line of skips.

A test that needs a system program asks tests/system.py for it: absent, the test skips (and
the run ends with one line naming what `make system-deps` installs); under CI=true it fails,
because the integration tests are the point of CI.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import system


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    process: subprocess.Popen[bytes]


def _mosquitto_binary() -> str | None:
    return system.find("mosquitto")


@pytest.fixture
def mosquitto_binary() -> str:
    """Path of Mosquitto; under CI=true its absence fails the test instead of skipping it."""
    return system.require("mosquitto")


@pytest.fixture
def mosquitto(tmp_path: Path, mosquitto_binary: str) -> Iterator[Broker]:
    """A real Mosquitto on a free loopback port, anonymous allowed, no persistence."""
    binary = mosquitto_binary
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_queued_messages 100000\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port)
        yield Broker("127.0.0.1", port, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter
                            ) -> Generator[None, None, None]:
    """Fold the skips for missing system programs into one line instead of one per reason.

    Outermost wrapper: the reports are taken out while pytest prints its short summary and
    put back before its final counts, which therefore still include them."""
    skipped: list[pytest.TestReport] = terminalreporter.stats.get("skipped", [])
    missing = {report: name for report in skipped
               if (name := system.missing_component(report)) is not None}
    if missing:
        terminalreporter.stats["skipped"] = [r for r in skipped if r not in missing]
    yield
    if missing:
        terminalreporter.stats["skipped"] = skipped
        names = sorted(set(missing.values()))
        packages = " ".join(p for n in names for p in system.COMPONENTS[n].debian)
        terminalreporter.write_line(
            f"{len(missing)} skipped for want of {', '.join(names)}: "
            f"`make system-deps` installs them (Debian: {packages})", yellow=True)


# A real InfluxDB 1.x (tests/influxd.py), for the telemetry adapter's v1 mode and Grafana.
from tests.influxd import influxd  # noqa: E402, F401
