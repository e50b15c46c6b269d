"""`greenguard sim`: serve a scenario's simulated meters over Modbus TCP in real time, and
write the edge config that reads them and the institution config that describes them, so
an edge agent and a central can be tried against them by hand (README, "Running the parts
yourself"):

    greenguard sim --port 5020 --write-edge-config edge.yaml --write-institution institution.yaml \
        --central-key central.control.pub
    greenguard edge --config edge.yaml

`--central-key` names the central's public control key (`<db>.control.pub`, written at the
central's first start, or `control.pub` of `greenguard certs`): the edge then acts only on
acks and commands the central signed. Without it the edge warns at start that they are not
authenticated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import time
from pathlib import Path

import yaml

from protocols.clock import SystemClock
from simulators.configs import edge_config, institution_config
from simulators.modbus_server import ModbusMeterServer
from simulators.scenario import build_meters, load_scenario


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", default="school", help="built-in name or scenario YAML")
    parser.add_argument("--port", type=int, default=5020, help="Modbus TCP port (default 5020)")
    parser.add_argument("--mqtt-host", default="127.0.0.1", help="broker for the edge config")
    parser.add_argument("--mqtt-port", type=int, default=1883)
    parser.add_argument("--mqtt-protocol", choices=["5", "3.1.1"], default="3.1.1",
                        help="MQTT version for the edge config (default 3.1.1: works with "
                        "Mosquitto and with the embedded broker of `greenguard broker`)")
    parser.add_argument("--write-edge-config", type=Path, metavar="PATH",
                        help="write an edge.yaml that polls these meters")
    parser.add_argument("--write-institution", type=Path, metavar="PATH",
                        help="write the matching institution.yaml for `greenguard central`")
    parser.add_argument("--central-key", type=Path, metavar="PATH",
                        help="the central's public control key file (<db>.control.pub or "
                             "control.pub of greenguard certs) for the edge config")
    parser.add_argument("--mqtt-username", metavar="USER",
                        help="the edge's MQTT user for a broker with a password file")
    parser.add_argument("--mqtt-password-file", type=Path, metavar="PATH",
                        help="file holding that user's password (copied into the edge config)")


async def serve(args: argparse.Namespace) -> None:
    scenario = load_scenario(args.scenario)
    clock = SystemClock()
    meters = build_meters(scenario, clock, math.floor(time.time()))
    async with ModbusMeterServer(meters, port=args.port) as server:
        if args.write_edge_config is not None:
            key = None if args.central_key is None else \
                args.central_key.read_text(encoding="ascii").strip()
            password = None if args.mqtt_password_file is None else \
                args.mqtt_password_file.read_text(encoding="utf-8").strip()
            doc = edge_config(scenario, modbus_host="127.0.0.1", modbus_port=server.port,
                              mqtt_host=args.mqtt_host, mqtt_port=args.mqtt_port,
                              mqtt_protocol=args.mqtt_protocol,
                              central_public_key=key, mqtt_username=args.mqtt_username,
                              mqtt_password=password)
            # 0600 (it may hold the MQTT password), and appearing whole: written aside, then
            # renamed, so whoever waits for the file never reads it half written
            text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
            partial = args.write_edge_config.with_name(args.write_edge_config.name + ".part")
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(partial, args.write_edge_config)
            print(f"wrote {args.write_edge_config}"
                  + ("" if key else " (no --central-key: acks and commands unauthenticated)"))
        if args.write_institution is not None:
            args.write_institution.write_text(
                yaml.safe_dump(institution_config(scenario), allow_unicode=True,
                               sort_keys=False), encoding="utf-8")
            print(f"wrote {args.write_institution}")
        for meter in meters:
            print(f"  unit {meter.device_id:>3}  {meter.meter_id:<18} "
                  f"{meter.register_map.model}")
        print(f"serving {len(meters)} simulated meters on 127.0.0.1:{server.port} "
              "(Ctrl-C to stop)", flush=True)
        await asyncio.Event().wait()


def run(args: argparse.Namespace) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
    return 0
