"""Arguments and dispatch of `greenguard edge probe | scan | read` (see the package doc)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from pydantic import ValidationError

from edge.commission import fragment, probe, read, scan
from edge.commission.wire import WiredBus, open_hub
from edge.config import ModbusTcpBus, SerialBus, SerialOverTcpBus, load_edge_config
from edge.drivers.hubs import StreamHub
from edge.errors import EdgeError
from protocols.registermap import DataType, Table

COMMANDS = ("probe", "scan", "read")


class UsageError(ValueError):
    """A command-line value that cannot be used; the message names the flag."""


def _endpoint(p: argparse.ArgumentParser, *, transports: list[str], baud: str,
              parity: str) -> None:
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--host", help="Modbus TCP gateway or transparent serial server")
    where.add_argument("--serial", metavar="PORT", help="local serial port, e.g. /dev/ttyUSB0")
    p.add_argument("--port", type=int, help="TCP port (default: 502 for modbus_tcp, 4001 for "
                                            "serial_over_tcp)")
    p.add_argument("--transport", choices=transports, default=transports[0],
                   help=f"with --host (default: {transports[0]})")
    p.add_argument("--baudrate", default=baud,
                   help=f"with --serial: baud rates to try, comma separated (default: {baud})")
    p.add_argument("--parity", default=parity,
                   help=f"with --serial: parities to try, N, E or O (default: {parity})")
    p.add_argument("--stopbits", type=int, choices=(1, 2), default=1)
    p.add_argument("--timeout", type=float, default=0.5, help="seconds per request")
    p.add_argument("--bus-id", default="bus1", help="bus id in --write-config output")


def add_subcommands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pr = sub.add_parser("probe", help="read every configured point once and print raw and "
                        "decoded values (no central needed)")
    pr.add_argument("--config", "-c", dest="probe_config", type=Path,
                    help="edge YAML config (or give it before `probe`)")
    pr.add_argument("--device", action="append", dest="probe_devices", metavar="ID",
                    help="only this device (repeatable)")

    sc = sub.add_parser("scan", help="find Modbus unit ids, DL/T 645 or CJ/T 188 addresses")
    sc_sub = sc.add_subparsers(dest="protocol", required=True)
    m = sc_sub.add_parser("modbus", help="try every unit id in a range")
    _endpoint(m, transports=["modbus_tcp", "serial_over_tcp"], baud="9600,19200,4800,2400",
              parity="N,E")
    m.add_argument("--units", default="1-247", help="unit ids, e.g. 1-32 or 1,2,10-12")
    m.add_argument("--register", default="holding:0",
                   help="what each unit is asked for, TABLE:ADDRESS (default holding:0; "
                        "an exception answer counts as present)")
    m.add_argument("--all-settings", action="store_true",
                   help="with --serial: try every setting, not only until one finds units")
    m.add_argument("--no-identify", action="store_true",
                   help="do not try the built-in register maps on the units found")
    m.add_argument("--write-config", type=Path, metavar="FILE",
                   help="write the units found as an edge.yaml fragment")
    for name in ("dlt645", "cjt188"):
        a = sc_sub.add_parser(name, help="read-address broadcast (one meter on the line)")
        _endpoint(a, transports=["serial_over_tcp"], baud="2400", parity="E")
        a.add_argument("--no-preamble", action="store_true", help="no FE FE FE FE")
        a.add_argument("--write-config", type=Path, metavar="FILE",
                       help="write the meter found as an edge.yaml fragment")

    rd = sub.add_parser("read", help="read one register range or one DL/T 645 data "
                        "identifier, to build or check a map")
    rd_sub = rd.add_subparsers(dest="protocol", required=True)
    rm = rd_sub.add_parser("modbus", help="one register range, decoded every way")
    _endpoint(rm, transports=["modbus_tcp", "serial_over_tcp"], baud="9600", parity="N")
    rm.add_argument("--unit", type=int, default=1, help="Modbus unit id (default 1)")
    rm.add_argument("--table", choices=[t.value for t in Table], default="holding")
    rm.add_argument("--address", required=True, type=lambda s: int(s, 0),
                    help="first register, decimal or 0x hex (0-based, as in map files)")
    rm.add_argument("--count", type=int, default=2, help="registers (default 2)")
    rm.add_argument("--type", action="append", dest="types",
                    choices=[t.value for t in DataType if t is not DataType.BOOL],
                    help="only these types (repeatable; default: every type)")
    rm.add_argument("--scale", type=float, default=1.0)
    rl = rd_sub.add_parser("dlt645", help="one data identifier of one meter")
    _endpoint(rl, transports=["serial_over_tcp"], baud="2400", parity="E")
    rl.add_argument("--meter", required=True, help="12-digit address, or auto (alone on "
                                                   "the line)")
    rl.add_argument("--di", default="00010000", help="data identifier, hex (default "
                                                     "00010000 forward active energy)")
    rl.add_argument("--no-preamble", action="store_true")


def _csv(text: str, flag: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise UsageError(f"{flag}: empty")
    return items


def buses(args: argparse.Namespace) -> list[WiredBus]:
    """The bus (or, on a serial port, one bus per setting to try) the flags describe."""
    try:
        if args.host is not None:
            if args.transport == "modbus_tcp":
                return [ModbusTcpBus(transport="modbus_tcp", id=args.bus_id, host=args.host,
                                     port=args.port or 502, timeout_s=args.timeout)]
            return [SerialOverTcpBus(transport="serial_over_tcp", id=args.bus_id,
                                     host=args.host, port=args.port or 4001,
                                     timeout_s=args.timeout)]
        out: list[WiredBus] = []
        for baud in _csv(args.baudrate, "--baudrate"):
            if not baud.isdigit():
                raise UsageError(f"--baudrate: {baud!r} is not a number")
            for parity in _csv(args.parity, "--parity"):
                out.append(SerialBus(transport="serial", id=args.bus_id, device=args.serial,
                                     baudrate=int(baud), parity=parity.upper(),
                                     stopbits=args.stopbits, timeout_s=args.timeout))
        return out
    except ValidationError as exc:
        err = exc.errors()[0]
        field = {"baudrate": "--baudrate", "parity": "--parity", "port": "--port",
                 "timeout_s": "--timeout"}.get(str(err["loc"][-1]), str(err["loc"][-1]))
        got = "" if err["type"] == "value_error" else f" (got {err.get('input')!r})"
        raise UsageError(f"{field}: {err['msg'].removeprefix('Value error, ')}{got}") from None


def parse_units(text: str) -> list[int]:
    units: list[int] = []
    for part in _csv(text, "--units"):
        first, _, last = part.partition("-")
        try:
            lo, hi = int(first), int(last or first)
        except ValueError:
            raise UsageError(f"--units: {part!r} is not a unit id or a range like 1-32") \
                from None
        if not 0 <= lo <= hi <= 247:
            raise UsageError(f"--units: {part!r} must lie within 0-247")
        units.extend(range(lo, hi + 1))
    return sorted(set(units))


def _register(text: str) -> tuple[Table, int]:
    table, _, address = text.partition(":")
    try:
        return Table(table), int(address or "0", 0)
    except ValueError:
        raise UsageError(f"--register: must be TABLE:ADDRESS with TABLE one of "
                         f"{', '.join(t.value for t in Table)}, got {text!r}") from None


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")


def run(args: argparse.Namespace) -> int:
    try:
        if args.edge_command == "probe":
            return _probe(args)
        if args.edge_command == "scan":
            return asyncio.run(_scan(args))
        return asyncio.run(_read(args))
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except EdgeError as exc:
        print(exc, file=sys.stderr)
        return 1


def _probe(args: argparse.Namespace) -> int:
    path = args.probe_config or args.config
    if path is None:
        raise UsageError("--config: probe needs the edge's config file")
    config = load_edge_config(path)
    results = asyncio.run(probe.probe(config, devices=args.probe_devices))
    for line in probe.format_results(results):
        print(line)
    warnings = [w for r in results for w in r.warnings]
    points = [p for r in results for p in r.points]
    bad = sum(1 for p in points if not p.ok)
    print(f"{len(results)} devices, {len(points)} points: {len(points) - bad} good, "
          f"{bad} failed")
    for warning in warnings:
        print(f"warning: {warning}")
    return 1 if bad else 0


async def _scan(args: argparse.Namespace) -> int:
    settings = buses(args)
    if args.protocol == "modbus":
        units = parse_units(args.units)
        table, address = _register(args.register)
        results = await scan.scan_modbus(settings, units, table=table, address=address,
                                         timeout_s=args.timeout,
                                         identify=not args.no_identify,
                                         all_settings=args.all_settings)
        for line in scan.format_modbus(results, units, table=table, address=address,
                                       timeout_s=args.timeout):
            print(line)
        hit = next((r for r in results if r.found), None)
        if hit is not None and args.write_config is not None:
            _write(args.write_config, fragment.modbus_fragment(hit))
        return 0 if hit is not None else 1
    for bus in settings:
        scanner = scan.scan_dlt645 if args.protocol == "dlt645" else scan.scan_cjt188
        found = await scanner(bus, timeout_s=args.timeout, preamble=not args.no_preamble)
        for line in scan.format_address(found):
            print(line)
        if found.address is not None:
            if args.write_config is not None:
                _write(args.write_config, fragment.address_fragment(found))
            return 0
    return 1


async def _read(args: argparse.Namespace) -> int:
    (bus,) = buses(args)[:1]
    hub = open_hub(bus, timeout_s=args.timeout)
    try:
        if args.protocol == "modbus":
            if not 1 <= args.count <= Table(args.table).max_read:
                raise UsageError(f"--count: must be 1-{Table(args.table).max_read}, "
                                 f"got {args.count}")
            table = Table(args.table)
            raw, ms, error = await read.read_registers(hub, unit=args.unit, table=table,
                                                       address=args.address,
                                                       count=args.count,
                                                       timeout_s=args.timeout)
            if raw is None:
                print(f"unit {args.unit} {table.value} 0x{args.address:04X}+{args.count}: "
                      f"{error.reason if error else 'no answer'} ({ms:.1f} ms)")
                return 1
            types = None if not args.types else [DataType(t) for t in args.types]
            for line in read.format_registers(table, args.address, raw, ms,
                                              read.decodings(raw, types=types,
                                                             scale=args.scale)):
                print(line)
            return 0
        assert isinstance(hub, StreamHub)
        try:
            di = int(args.di, 16)
        except ValueError:
            raise UsageError(f"--di: must be 8 hex digits like 00010000, got {args.di!r}") \
                from None
        meter = args.meter.strip()
        if meter != "auto" and (len(meter) != 12 or not meter.isdigit()):
            raise UsageError(f"--meter: must be the 12-digit address or auto, got {meter!r}")
        reading = await read.read_di(hub, address=meter, di=di,
                                     preamble=not args.no_preamble, timeout_s=args.timeout)
        for line in read.format_di(reading):
            print(line)
        return 1 if reading.error else 0
    finally:
        hub.close()
