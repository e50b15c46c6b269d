"""`greenguard sim --write-edge-config --central-key <file>` (docs/security.md): the edge
config it writes carries the central's public control key and the edge's MQTT login."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from pathlib import Path

import yaml

from central.control import load_signer, public_key_path
from simulators import serve


async def test_write_edge_config_with_central_key_and_login(tmp_path: Path) -> None:
    key = tmp_path / "central.control.key"
    public = load_signer(key).public_key  # the central's first start writes <db>.control.pub
    password = tmp_path / "edge.password"
    password.write_text("edge-pw\n", encoding="utf-8")
    edge_yaml = tmp_path / "edge.yaml"
    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    args = parser.parse_args([
        "--port", "0", "--write-edge-config", str(edge_yaml),
        "--central-key", str(public_key_path(key)), "--mqtt-username", "edge-a",
        "--mqtt-password-file", str(password)])
    task = asyncio.create_task(serve.serve(args))
    try:
        for _ in range(500):  # generous: the file appears whole once the server listens
            if edge_yaml.exists() or task.done():
                break
            await asyncio.sleep(0.02)
        mqtt = yaml.safe_load(edge_yaml.read_text(encoding="utf-8"))["mqtt"]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert mqtt["central_public_key"] == public
    assert (mqtt["username"], mqtt["password"]) == ("edge-a", "edge-pw")
    assert edge_yaml.stat().st_mode & 0o777 == 0o600
