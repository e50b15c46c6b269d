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
    "broker": ("run a loopback MQTT broker to try the parts by hand (Mosquitto when "
               "installed, else an embedded one)", "simulators.broker"),
    "report": ("produce a report (monthly, quarterly, annual, ledger, scoring) or import "
               "ledger entries", "central.report_cli"),
    "certs": ("make a CA and TLS certificates for the broker, the central and each edge",
              "central.certs"),
    "grafana": ("export the Grafana dashboards as JSON or push them to a Grafana server",
                "central.grafana.cli"),
    "notify": ("alarm notifications: send a test message through a channel",
               "central.notify.cli"),
    "upload": ("upload to the municipal energy platform (docs/platform-upload.md)",
               "central.upload.cli"),
    "rules": ("try a rule pack on the central's recorded samples (rules replay, "
              "docs/savings.md)", "simulators.rules_replay"),
}
SUBCOMMANDS: dict[tuple[str, str], str] = {  # (command, next word): module
    ("sim", "platform"): "simulators.platform_receiver",  # the platform test receiver
    ("report", "import-history"): "central.history_cli",  # a meter's historical series
    ("sim", "district"): "simulators.district",  # many institutions, N workers
}


# Our own packages log their lifecycle at INFO (connected, listening, polling, first values);
# the libraries underneath (uvicorn, aiomqtt, pymodbus, amqtt) speak from -v on.
OWN_LOGGERS = ("edge", "central", "protocols", "simulators")
# The demo prints its own banner and summary; its parts' lifecycle lines come with -v.
QUIET_BY_DEFAULT = frozenset({"demo"})


def verbosity_options() -> argparse.ArgumentParser:
    """-v/-q as a parent parser, so they are accepted before and after any subcommand.
    SUPPRESS: a subcommand's parser must not reset what was given before the command."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                         help="more log output (-vv for debug)")
    options.add_argument("-q", "--quiet", action="count", default=argparse.SUPPRESS,
                         help="less log output: warnings only (-qq: errors only)")
    return options


def _accept_verbosity_everywhere(parser: argparse.ArgumentParser,
                                 verbosity: argparse.ArgumentParser) -> None:
    """Give -v/-q to every nested subcommand (`greenguard edge override set … -v`) too."""
    own = {s for a in parser._actions for s in a.option_strings}
    for action in verbosity._actions:
        if not own & set(action.option_strings):
            parser._add_action(action)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for nested in action.choices.values():
                _accept_verbosity_everywhere(nested, verbosity)


def configure_logging(command: str, verbose: int, quiet: int) -> None:
    """Levels from -v/-q: own packages INFO by default, libraries WARNING."""
    step = verbose - quiet - (1 if command in QUIET_BY_DEFAULT else 0)
    own = (logging.ERROR if step <= -2 else logging.WARNING if step == -1
           else logging.INFO if step == 0 else logging.DEBUG)
    others = logging.ERROR if step <= -2 else logging.WARNING if step <= 0 else (
        logging.INFO if step == 1 else logging.DEBUG)
    logging.basicConfig(level=others,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(own)


def build_parser(args: Sequence[str]) -> tuple[argparse.ArgumentParser, Handler | None]:
    """The parser for this command line, with the chosen subcommand's arguments (only its
    module is imported), and that subcommand's handler (None when no command is named)."""
    args = list(args)
    verbosity = verbosity_options()
    parser = argparse.ArgumentParser(
        prog="greenguard", parents=[verbosity],
        description="Energy and resource conservation for public institutions: edge "
                    "enforcement and compliance metrics.")
    parser.add_argument("--version", action="version", version=f"greenguard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    # Only the chosen subcommand's module is imported; the others just get their help line.
    chosen = next((a for a in args if not a.startswith("-")), None)
    handler: Handler | None = None
    for name, (help_text, module) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text,
                                    parents=[verbosity])
        if name == chosen:
            after = args[args.index(chosen) + 1:]
            handler = _role(SUBCOMMANDS.get((name, after[0] if after else ""), module),
                            sub_parser)
    _accept_verbosity_everywhere(parser, verbosity)
    return parser, handler


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser, handler = build_parser(args)
    ns = parser.parse_args(args)
    configure_logging(ns.command, getattr(ns, "verbose", 0), getattr(ns, "quiet", 0))
    assert handler is not None  # argparse rejected unknown commands already
    return handler(ns)


if __name__ == "__main__":
    raise SystemExit(main())
