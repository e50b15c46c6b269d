"""Every `curl` example of docs/api.md and docs/dashboard.md, run against a running central.

The central is `greenguard demo` (broker, simulated school, edge, central, tokens). Each
example runs through bash as written, except: the port 8080 becomes the demo's, `curl` gets
`-sS -w '\\n%{http_code}'` so the test sees the status, `$ADMIN`, `$ENGINEER` and `$T` are
tokens of those roles, and the ids the docs show (a token's, a command's) become the ids the
earlier examples created. The status expected is the number in the line's trailing comment
(`# 201 …`), else 200.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DOCS = ("docs/api.md", "docs/dashboard.md")
DOC_TOKEN_ID = "9f2c4e1a7b3d5f60"
DOC_COMMAND_ID = "c-7f3a9e01b2c4d5e6"


def curl_examples(doc: str) -> list[str]:
    """The curl commands of the page's ```sh blocks, continuation lines joined."""
    text = (REPO / doc).read_text(encoding="utf-8")
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL):
        pending = ""
        for line in block.splitlines():
            pending = f"{pending}\n{line}" if pending else line
            try:
                shlex.split(pending, comments=True)
            except ValueError:  # a quote still open: the command goes on
                continue
            if pending.rstrip().endswith("\\"):
                continue
            if pending.lstrip().startswith("curl"):
                commands.append(pending.strip())
            pending = ""
    return commands


def expected_status(command: str) -> int:
    comment = re.search(r"\s#\s*(\d{3})\b", command.splitlines()[-1])
    return int(comment.group(1)) if comment else 200


def _api(port: int, path: str, token: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", method="POST" if body is not None else "GET",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, dict[str, str]]]:
    """A running demo: its HTTP port and tokens by role, once its edge is online."""
    from tests.conftest import _mosquitto_binary

    workdir = tmp_path_factory.mktemp("docs") / "run"
    port = free_port()
    broker = "mosquitto" if _mosquitto_binary() or os.environ.get("CI") == "true" else "amqtt"
    greenguard = Path(sys.executable).with_name("greenguard")
    proc = subprocess.Popen([str(greenguard), "demo", "--port", str(port), "--workdir",
                             str(workdir), "--broker", broker],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (workdir / "tokens.json").exists() or not _online(port, workdir):
            assert proc.poll() is None, "greenguard demo stopped"
            assert time.monotonic() < deadline, "the demo's edge never came online"
            time.sleep(0.5)
        tokens = json.loads((workdir / "tokens.json").read_text(encoding="utf-8"))
        engineer = _api(port, "/api/v1/tokens", tokens["admin"],
                        {"name": "docs test", "role": "engineer",
                         "institutions": ["demo-school"]})
        yield port, {"ADMIN": tokens["admin"], "T": tokens["viewer"],
                     "ENGINEER": engineer["token"]}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _online(port: int, workdir: Path) -> bool:
    try:
        tokens = json.loads((workdir / "tokens.json").read_text(encoding="utf-8"))
        edges = _api(port, "/api/v1/institutions/demo-school/edges", tokens["viewer"])
    except (OSError, ValueError, KeyError):
        return False
    return any(e["online"] for e in edges)


@pytest.mark.parametrize("doc", DOCS)
def test_every_curl_example_answers_as_documented(
        doc: str, central: tuple[int, dict[str, str]], tmp_path: Path) -> None:
    port, tokens = central
    commands = curl_examples(doc)
    assert len(commands) >= 3, commands
    ids = {DOC_TOKEN_ID: DOC_TOKEN_ID, DOC_COMMAND_ID: DOC_COMMAND_ID}
    for command in commands:
        run = command.replace("8080", str(port)).replace("curl", "curl -sS -w '\\n%{http_code}'",
                                                          1)
        for shown, real in ids.items():
            run = run.replace(shown, real)
        done = subprocess.run(["bash", "-c", run], cwd=tmp_path, env={**os.environ, **tokens},
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, (command, done.stderr)
        body, _, status = done.stdout.rpartition("\n")
        assert int(status) == expected_status(command), (command, body[:500])
        created = json.loads(body) if body.startswith("{") else None
        if isinstance(created, dict) and "id" in created and (
                "token" in created or "status" in created):  # a token or a command made
            key = DOC_TOKEN_ID if "token" in created else DOC_COMMAND_ID
            ids[key] = created["id"]
    for name in ("march.html", "q1.pdf"):
        if name in " ".join(commands):
            data = (tmp_path / name).read_bytes()
            assert data.lower().startswith(b"%pdf" if name.endswith(".pdf") else b"<!doctype html")
