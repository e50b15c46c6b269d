"""README's "Running the parts yourself" block, run as written in an empty directory.

Each line of the block is one `bash -c` command, verbatim except for two substitutions a
reader makes too: `.venv/bin/` becomes this interpreter's directory, and the fixed ports
(1883, 5020, 8080) become free ones so the test can run beside others. A line ending in `&`
keeps running: it is started, and the next line waits until it says it is ready (what a reader
sees in the terminal). Then the lifecycle the issue asked for: INFO lines at the default
level, and a clean stop of the edge that the API and the dashboard both show as offline.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# What each long-running command prints once it is ready.
READY = {"broker": "broker on", "sim": "serving", "edge": "uplink connected to broker",
         "central": "listening on"}


def readme_block() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Running the parts yourself"):]
    block = section[section.index("```sh\n") + 6:]
    return [line for line in block[:block.index("```")].splitlines() if line.strip()]


class Running:
    """A background command and everything it printed (stdout and stderr)."""

    def __init__(self, command: str, cwd: Path, env: dict[str, str]) -> None:
        self.command = command
        self.proc = subprocess.Popen(["bash", "-c", command], cwd=cwd, env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, within_s: float = 90.0) -> None:
        deadline = time.monotonic() + within_s
        while text not in self.output:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{self.command!r} never printed {text!r}:\n{self.output}")
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait()
        self._reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return code


def _get(url: str, token: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[dict[str, Running]]:
    running: dict[str, Running] = {}
    try:
        yield running
    finally:
        for name in ("edge", "central", "sim", "broker"):  # the broker last
            if name in running:
                running[name].stop()


def test_the_parts_run_as_the_readme_says(tmp_path: Path, parts: dict[str, Running]) -> None:
    from tests.conftest import _mosquitto_binary

    ports = {"1883": str(free_port()), "5020": str(free_port()), "8080": str(free_port())}
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("GREENGUARD_AUTH_SECRET", None)
    lines = readme_block()
    assert any(line.startswith(".venv/bin/greenguard broker") for line in lines)
    http = ports["8080"]
    for line in lines:
        command = line.replace(".venv/bin/", f"{BIN}/")
        command = re.sub(r"\b(1883|5020|8080)\b", lambda m: ports[m.group(1)], command)
        if _mosquitto_binary() is None and " broker " in command:
            command = command.replace(" broker ", " broker --kind amqtt ", 1)
        background = re.match(r"(.*?)\s*&\s*(#.*)?$", command)
        if background:
            name = command.split(f"{BIN}/greenguard ")[1].split()[0]
            parts[name] = Running(background.group(1), tmp_path, env)
            parts[name].wait_for(READY[name])
            continue
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, text=True,
                              capture_output=True, timeout=120, check=False)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
        if command.startswith("curl"):
            overview = json.loads(done.stdout)
            assert overview["institution"]["name"].startswith("示范中学")

    assert set(parts) == {"broker", "sim", "edge", "central"}
    assert (tmp_path / "auth.secret").stat().st_mode & 0o777 == 0o600
    token = (tmp_path / "admin.token").read_text(encoding="utf-8").strip()
    html = (tmp_path / "monthly.html").read_text(encoding="utf-8")
    assert "<html" in html
    assert "示范中学" in html

    # The lifecycle at the default level: where it connected, what it polls, first values.
    edge, central = parts["edge"], parts["central"]
    edge.wait_for("first reading", within_s=180)  # the first poll waits for its slot
    assert f"uplink connected to broker 127.0.0.1:{ports['1883']}" in edge.output
    assert "polling 6 devices on 1 bus" in edge.output
    assert f"listening on http://127.0.0.1:{http}" in central.output
    assert f"dashboard: http://127.0.0.1:{http}/ (create a token with" in central.output

    base = f"http://127.0.0.1:{http}/api/v1/institutions/demo-school"
    deadline = time.monotonic() + 60
    while not [e for e in _get(f"{base}/edges", token) if e["online"]]:
        assert time.monotonic() < deadline, "the edge never showed online"
        time.sleep(0.5)

    # A clean stop: the retained birth is replaced by a death, so both views say offline.
    assert edge.stop(signal.SIGTERM) == 0
    assert "offline state published" in edge.output
    deadline = time.monotonic() + 60
    while True:
        edges = _get(f"{base}/edges", token)
        board = _get(f"{base}/dashboard", token)
        if not any(e["online"] for e in edges) and not any(
                e["online"] for e in board["edges"]):
            break
        assert time.monotonic() < deadline, (edges, board["edges"])
        time.sleep(0.5)
    assert [e["connected"] for e in edges] == [False]
