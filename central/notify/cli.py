"""`greenguard notify test --channel NAME`: send a sample message through one configured
channel and print the receiver's answer (secrets removed). Exit 0 when delivered, 1 when
the receiver refused or could not be reached, 2 for a configuration error."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from central.errors import ConfigError
from central.notify.channels import Message, Outcome
from central.notify.config import build_channels, load_notify


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="notify_command", metavar="ACTION", required=True)
    test = sub.add_parser("test", help="send a sample message through one channel")
    test.add_argument("--config", type=Path,
                      default=os.environ.get("GREENGUARD_NOTIFY_CONFIG"),
                      help="notify.yaml (default: $GREENGUARD_NOTIFY_CONFIG)")
    test.add_argument("--channel", required=True, help="a channel name from the file")
    test.add_argument("--to", default="",
                      help="the address after the channel name: an e-mail address, a phone "
                           "number, a mobile or user id to mention (bots: optional)")


def run(args: argparse.Namespace) -> int:
    if args.config is None:
        print("notify: give --config or set GREENGUARD_NOTIFY_CONFIG", file=sys.stderr)
        return 2
    try:
        config = load_notify(Path(args.config))
        if args.channel not in config.channels:
            raise ConfigError(str(args.config), [(
                "--channel", args.channel,
                f"no such channel (configured: {', '.join(sorted(config.channels)) or 'none'})")])
        channel = build_channels(config)[args.channel]
    except ConfigError as exc:
        print(f"notify: {exc}", file=sys.stderr)
        return 2
    now = dt.datetime.now(ZoneInfo(config.timezone))
    message = Message(
        key=f"test|{args.channel}|{now.isoformat()}", title="【测试】greenguard 告警通知测试",
        lines=(f"通道 {args.channel} 配置正确：收到这条消息即可。", f"时间：{now:%Y-%m-%d %H:%M}"),
        link=config.dashboard_url, severity="info")

    async def send() -> tuple[Outcome, str]:
        try:
            answer = await channel.send(message, args.to)
        finally:
            await channel.aclose()
        return answer.outcome, answer.detail

    outcome, detail = asyncio.run(send())
    print(f"{args.channel}: {outcome.value} — {detail}")
    return 0 if outcome is Outcome.OK else 1
