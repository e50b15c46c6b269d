"""A real InfluxDB 1.x (Debian's `influxdb`, `influxd`) on a free loopback port.

`influxd` runs from a config file of its own in a temp dir (meta, data and WAL there),
reporting and the internal monitor off, so a test leaves nothing behind. The `influxd`
fixture skips when the binary is absent and fails under CI=true (.ci/run installs it),
like the other system components (tests/conftest.py).
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests import system
from tests.conftest import free_port


@dataclass(frozen=True)
class Influxd:
    url: str
    process: subprocess.Popen[bytes]

    def query(self, q: str, db: str | None = None) -> list[dict[str, Any]]:
        """The statement results of `q` (epoch ms); raises on an HTTP error."""
        fields = {"q": q, "epoch": "ms"}
        if db is not None:
            fields["db"] = db
        data = urllib.parse.urlencode(fields).encode()
        with urllib.request.urlopen(f"{self.url}/query", data=data, timeout=30) as answer:
            results: list[dict[str, Any]] = json.loads(answer.read())["results"]
        return results

    def create_database(self, name: str) -> None:
        self.query(f'CREATE DATABASE "{name}"')




def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"influxd exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=1) as answer:
                if answer.status == 204:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise TimeoutError(f"influxd did not answer /ping at {url} within {timeout}s")


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    binary = system.require("influxdb")  # skips, or fails under CI=true (tests/system.py)
    home = tmp_path_factory.mktemp("influxd")
    port = free_port()
    conf = home / "influxdb.conf"
    conf.write_text(
        "reporting-disabled = true\n"
        'bind-address = "127.0.0.1:0"\n'
        f'[meta]\n  dir = "{home / "meta"}"\n'
        f'[data]\n  dir = "{home / "data"}"\n  wal-dir = "{home / "wal"}"\n'
        "  query-log-enabled = false\n"
        f'[http]\n  bind-address = "127.0.0.1:{port}"\n  log-enabled = false\n'
        "[monitor]\n  store-enabled = false\n"
        "[continuous_queries]\n  enabled = false\n"
        '[logging]\n  level = "warn"\n', encoding="utf-8")
    log = (home / "influxd.log").open("wb")
    proc = subprocess.Popen([binary, "-config", str(conf)], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        yield Influxd(url, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
