"""The `greenguard` command.

It lives in `simulators` because that package sits at the top of the import graph
(simulators → edge, central → protocols). Each subcommand imports its role only when it is
chosen, so an edge-only install never loads FastAPI and the central never loads pymodbus.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from protocols import __version__

Handler = Callable[[argparse.Namespace], int]


def _role(module: str, parser: argparse.ArgumentParser) -> Handler:
    """Import the subcommand's module (only the chosen one) and let it add its arguments.
    Each module has `add_arguments(parser)` and `run(args) -> int`."""
    loaded = importlib.import_module(module)
    loaded.add_arguments(parser)
    run: Handler = loaded.run
    return run


COMMANDS: dict[str, tuple[str, str]] = {  # name: (help, module)
    "demo": ("run a simulated school end to end: broker, meters, edge, central, dashboard",
             "simulators.demo"),
    "edge": ("run an edge agent from its YAML config", "edge.cli"),
    "central": ("run the central aggregator (ingest, compliance, API, dashboard)", "central.cli"),
    "sim": ("serve a scenario's simulated meters over Modbus TCP", "simulators.serve"),
    "report": ("produce a report (monthly, quarterly, annual, ledger, scoring) or import "
               "ledger entries", "central.report_cli"),
    "certs": ("make a CA and TLS certificates for the broker, the central and each edge",
              "central.certs"),
    "grafana": ("export the Grafana dashboards as JSON or push them to a Grafana server",
                "central.grafana.cli"),
    "upload": ("upload to the municipal energy platform (docs/platform-upload.md)",
               "central.upload.cli"),
}
SUBCOMMANDS: dict[tuple[str, str], str] = {  # (command, next word): module
    ("sim", "platform"): "simulators.platform_receiver",  # the platform test receiver
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="greenguard",
        description="Energy and resource conservation for public institutions: edge "
                    "enforcement and compliance metrics.")
    parser.add_argument("--version", action="version", version=f"greenguard {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    # Only the chosen subcommand's module is imported; the others just get their help line.
    chosen = next((a for a in args if not a.startswith("-")), None)
    handler: Handler | None = None
    for name, (help_text, module) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            after = args[args.index(chosen) + 1:]
            handler = _role(SUBCOMMANDS.get((name, after[0] if after else ""), module),
                            sub_parser)
    ns = parser.parse_args(args)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(ns.verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    assert handler is not None  # argparse rejected unknown commands already
    return handler(ns)


if __name__ == "__main__":
    raise SystemExit(main())
