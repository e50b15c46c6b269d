"""`greenguard edge --config edge.yaml`: run one edge agent on the system clock."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from edge.agent import EdgeAgent
from edge.config import EdgeConfig, load_edge_config
from edge.errors import EdgeError
from protocols.clock import SystemClock


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", required=True, type=Path, help="edge YAML config")
    parser.add_argument("--check", action="store_true",
                        help="validate the config and exit without connecting to anything")


def run(args: argparse.Namespace) -> int:
    try:
        config = load_edge_config(args.config)
    except EdgeError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.check:
        print(f"{args.config}: ok ({len(config.devices)} devices)")
        return 0
    try:
        asyncio.run(_main(config, args.config.parent))
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 0
    except EdgeError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


async def _main(config: EdgeConfig, base_dir: Path) -> None:
    # The agent owns asyncio resources (Modbus clients): build it inside the running loop.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    agent = EdgeAgent.create(config, clock=SystemClock(), base_dir=base_dir)
    logging.getLogger(__name__).info("edge %s stream %s", config.edge_id, agent.outbox.stream)
    await agent.run()
