"""`greenguard edge --config edge.yaml`: run one edge agent on the system clock."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from edge.agent import EdgeAgent
from edge.config import load_edge_config
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
    agent = EdgeAgent.create(config, clock=SystemClock(), base_dir=args.config.parent)
    logging.getLogger(__name__).info("edge %s stream %s", config.edge_id, agent.outbox.stream)
    try:
        asyncio.run(agent.run())
    except KeyboardInterrupt:
        return 130
    return 0
