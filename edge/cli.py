"""`greenguard edge --config edge.yaml`: run one edge agent on the system clock.

`greenguard edge probe | scan | read`: commissioning on site (edge/commission/).

`greenguard edge --config edge.yaml override set|clear|list`: the engineer on site sets a
manual override (with an end) in the rules state file next to the outbox; a running agent
picks it up at its next tick, and it survives restarts until it ends.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import signal
import sys
import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from edge.agent import EdgeAgent
from edge.commission import cli as commission_cli
from edge.commission.probe import unverified_map_warnings
from edge.config import EdgeConfig, load_edge_config
from edge.errors import EdgeError
from edge.rules.commands import OverrideRejectedError, parse_override, protected_devices
from edge.rules.overrides import OverrideStore
from protocols.clock import SystemClock
from protocols.registermap import PointValue

_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", type=Path, help="edge YAML config")
    parser.add_argument("--check", action="store_true",
                        help="validate the config and exit without connecting to anything")
    sub = parser.add_subparsers(dest="edge_command", metavar="{override,probe,scan,read}")
    commission_cli.add_subcommands(sub)
    ov = sub.add_parser("override", help="manual overrides for the local rules")
    ov_sub = ov.add_subparsers(dest="override_command", required=True)
    s = ov_sub.add_parser("set", help="hold a device point at a value until the override ends")
    s.add_argument("device")
    s.add_argument("point", help="e.g. on, setpoint_c")
    s.add_argument("value", help="true/false/on/off, a number, or a name (cool, heat …)")
    end = s.add_mutually_exclusive_group(required=True)
    end.add_argument("--for", dest="duration", help="e.g. 90m, 2h, 1d")
    end.add_argument("--until", help="local ISO time, e.g. 2026-06-15T20:00")
    s.add_argument("--reason", default="", help="shown in the audit trail")
    c = ov_sub.add_parser("clear", help="end an override now")
    c.add_argument("override_id")
    ov_sub.add_parser("list", help="overrides, active and ended")


def parse_value(text: str) -> PointValue:
    lowered = text.strip().lower()
    if lowered in ("true", "on"):
        return True
    if lowered in ("false", "off"):
        return False
    try:
        return float(text)
    except ValueError:
        return text


def parse_duration(text: str) -> float:
    m = _DURATION_RE.match(text.strip())
    if m is None or float(m.group(1)) <= 0:
        raise ValueError(f"--for: must look like 90m, 2h or 1d, got {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def run(args: argparse.Namespace) -> int:
    if getattr(args, "edge_command", None) in commission_cli.COMMANDS:
        return commission_cli.run(args)
    if args.config is None:
        print("--config: required (the edge's YAML config)", file=sys.stderr)
        return 2
    try:
        config = load_edge_config(args.config)
    except EdgeError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.check:
        print(f"{args.config}: ok ({len(config.devices)} devices)")
        for warning in unverified_map_warnings(config):
            print(f"warning: {warning}")
        return 0
    if getattr(args, "edge_command", None) == "override":
        return _override(config, args)
    try:
        asyncio.run(_main(config, args.config.parent))
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 0
    except EdgeError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def _override(config: EdgeConfig, args: argparse.Namespace) -> int:
    if config.rules is None:
        print(f"{args.config}: no rules: section, so nothing would apply an override",
              file=sys.stderr)
        return 2
    path = Path(config.rules.state_path)
    if not path.is_absolute():
        path = args.config.parent / path
    clock = SystemClock()
    now = clock.now()
    try:
        store = OverrideStore(path)
    except EdgeError as exc:
        print(exc, file=sys.stderr)
        return 1
    try:
        if args.override_command == "list":
            for s in store.all():
                o = s.override
                state = (f"ended {_local(s.ended, config)} ({s.end_reason})"
                         if s.ended is not None else
                         "expired" if o.expires <= now else f"until {_local(o.expires, config)}")
                print(f"{o.id}  {o.device}.{o.point} = {o.value!r}  {state}  [{o.origin}] "
                      f"{o.reason}")
            return 0
        if args.override_command == "clear":
            if not store.clear(args.override_id, now):
                print(f"override_id: no active override {args.override_id!r}", file=sys.stderr)
                return 2
            print(f"cleared {args.override_id}")
            return 0
        try:
            expires = (now + parse_duration(args.duration) if args.duration is not None
                       else _parse_until(args.until, config))
            if expires <= now:
                raise ValueError(f"--until: {args.until!r} is in the past")
            devices = {d.id: d for d in config.devices}
            o = parse_override(
                {"device": args.device, "point": args.point, "value": parse_value(args.value),
                 "reason": args.reason},
                override_id=f"cli-{uuid.uuid4().hex[:12]}", expires=expires, devices=devices,
                protected=protected_devices(config.rules, devices), origin="cli")
        except (ValueError, OverrideRejectedError) as exc:
            print(exc, file=sys.stderr)
            return 2
        store.add(o, now)
        print(f"{o.id}  {o.device}.{o.point} = {o.value!r} until {_local(o.expires, config)}")
        return 0
    except EdgeError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        store.close()


def _local(ts: float, config: EdgeConfig) -> str:
    return datetime.fromtimestamp(ts, ZoneInfo(config.calendar.timezone)).strftime(
        "%Y-%m-%d %H:%M")


def _parse_until(text: str, config: EdgeConfig) -> float:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--until: must be an ISO time like 2026-06-15T20:00, got {text!r}")\
            from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo(config.calendar.timezone))
    return when.timestamp()


async def _main(config: EdgeConfig, base_dir: Path) -> None:
    # The agent owns asyncio resources (Modbus clients): build it inside the running loop.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    agent = EdgeAgent.create(config, clock=SystemClock(), base_dir=base_dir)
    log = logging.getLogger(__name__)
    log.info("edge %s stream %s", config.edge_id, agent.outbox.stream)
    devices = sum(len(s.devices) for s in agent.schedulers)
    buses = len(agent.schedulers)
    log.info("polling %d device%s on %d bus%s", devices, "" if devices == 1 else "s",
             buses, "" if buses == 1 else "es")
    await agent.run()
