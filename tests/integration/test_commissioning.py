"""`greenguard edge probe | scan | read` as an engineer runs them: the real command in a
subprocess, against the simulated plant room of `simulators.site` (a pymodbus gateway, an
RTU line on a pty at 2400 baud, DL/T 645 and CJ/T 188 lines on TCP serial servers).

Covers the cases of issue 14: a wrong unit id, a wrong baud rate, a meter answering
exception 02, a DL/T 645 meter whose address is unknown."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge.config import parse_edge_config
from protocols import dlt645
from protocols.clock import VirtualClock
from protocols.registermap import Table, load_register_map
from simulators.site import CJT188_ADDRESS, DLT645_ADDRESS, RTU_BAUDRATE, Site, serving
from tests.integration.devsim import START

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


async def greenguard(*args: str, cwd: Path) -> tuple[int, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators.cli", *args, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    async with asyncio.timeout(120):
        out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    async with serving(VirtualClock(START), START) as running:
        yield running


def port(endpoint: str) -> str:
    return endpoint.rsplit(":", 1)[1]


def write_config(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def row(out: str, device: str, point: str) -> str:
    """The probe's line for one point of one device."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{device} "))
    for line in lines[start + 1:]:
        if not line.startswith("  "):
            break
        if line.split()[0] == point:
            return line
    raise AssertionError(f"no row for {device}.{point} in\n{out}")


async def test_probe_reads_every_point_and_names_each_problem(site: Site,
                                                              tmp_path: Path) -> None:
    config = write_config(tmp_path, site.edge_config())
    code, out = await greenguard("edge", "probe", "--config", str(config), cwd=tmp_path)
    assert code == 1, out  # some points failed
    # Raw registers next to the decoded value, for a good meter:
    sdm = site.meters["sdm120"]
    energy = sdm.register_map.point("energy_import_kwh")
    raw = " ".join(f"{r:04X}" for r in sdm.read(energy.table, energy.address, 2))
    line = row(out, "main-sdm120", "energy_import_kwh")
    assert f"input 0x0048+2  {raw}  1523.4 kWh" in line
    # A meter lacking one register: that point has the exception, the others values.
    assert "Modbus exception 2 (illegal data address)" in row(out, "lab-sdm120", "power_factor")
    assert " kWh " in row(out, "lab-sdm120", "energy_import_kwh")
    # A wrong unit id: timeouts, a hint, and no minutes wasted on the other points.
    assert "wrong unit id?" in row(out, "wrong-unit", "current_a")
    assert "skipped" in row(out, "wrong-unit", "energy_import_kwh")
    # The RTU line at its own baud rate, DL/T 645 frames and CJ/T 188 frames.
    assert " kWh " in row(out, "rtu-sdm120", "energy_import_kwh")
    dlt = row(out, "canteen-645", "energy_import_kwh")
    assert "DI 00010000  FE FE FE FE 68 87 01 00 12 05 24 68 91 08" in dlt
    energy = site.dlt645.register_value(dlt645.ITEMS_BY_POINT["energy_import_kwh"], START)
    assert f"{energy:.10g} kWh" in dlt
    assert "842.31 m3" in row(out, "canteen-water", "water_m3")
    assert "7 devices, 38 points: 30 good, 8 failed" in out
    assert "warning: dorm-adl400: every field of model 'acrel-adl400' is verified: false" in out


async def test_check_warns_on_maps_that_are_all_unverified(site: Site, tmp_path: Path) -> None:
    config = write_config(tmp_path, site.edge_config())
    code, out = await greenguard("edge", "--config", str(config), "--check", cwd=tmp_path)
    assert code == 0
    assert out.splitlines()[0] == f"{config}: ok (7 devices)"
    assert [line for line in out.splitlines() if line.startswith("warning:")] == [
        "warning: dorm-adl400: every field of model 'acrel-adl400' is verified: false — "
        "check each address, type and scale against the installed meter's manual before "
        "trusting its values (docs/register-maps.md)"]
    data = site.edge_config()
    data["devices"] = [d for d in data["devices"] if d["id"] != "dorm-adl400"]
    config = write_config(tmp_path, data)
    code, out = await greenguard("edge", "--config", str(config), "--check", cwd=tmp_path)
    assert (code, out) == (0, f"{config}: ok (6 devices)\n")


async def test_scan_a_gateway_and_write_the_config(site: Site, tmp_path: Path) -> None:
    fragment = tmp_path / "found.yaml"
    code, out = await greenguard(
        "edge", "scan", "modbus", "--host", "127.0.0.1", "--port", port(
            site.endpoints()["gateway"]), "--units", "1-6", "--timeout", "0.3",
        "--write-config", str(fragment), cwd=tmp_path)
    assert code == 0, out
    assert "found 4 unit(s): 1, 2, 3, 4; 2 silent" in out
    assert "refuses power_factor" in out
    assert "warning: every field of acrel-adl400 is verified: false" in out
    data = yaml.safe_load(fragment.read_text(encoding="utf-8"))
    models = {d["device_id"]: d["model"] for d in data["devices"]}
    assert models == {1: "eastron-sdm120", 2: "eastron-sdm630", 3: "eastron-sdm120",
                      4: "acrel-adl400"}
    lab = next(d for d in data["devices"] if d["device_id"] == 3)
    assert "power_factor" not in lab["points"]
    # The fragment is a valid edge config once the edge's own fields are added.
    config = parse_edge_config({"edge_id": "e1", "site": "s1", **data})
    assert [d.id for d in config.devices] == [f"bus1-unit-{u}" for u in (1, 2, 3, 4)]


async def test_scan_a_serial_line_tries_baud_rates(site: Site, tmp_path: Path) -> None:
    code, out = await greenguard(
        "edge", "scan", "modbus", "--serial", site.rtu_path, "--baudrate", "9600,2400",
        "--parity", "N", "--units", "5-8", "--timeout", "0.2", "--no-identify",
        cwd=tmp_path)
    assert code == 0, out
    settings = [line for line in out.splitlines() if line.startswith("scanning")]
    assert [s.split(" on ")[1].split(":")[0] for s in settings] == [
        f"{site.rtu_path} 9600 8N1 (serial)", f"{site.rtu_path} {RTU_BAUDRATE} 8N1 (serial)"]
    assert "found 0 unit(s): none; 4 silent" in out  # the wrong baud rate: silence
    assert "found 1 unit(s): 7; 3 silent" in out


async def test_dlt645_meter_with_unknown_address(site: Site, tmp_path: Path) -> None:
    dlt = port(site.endpoints()["dlt645"])
    # Guessing the address: silence, and the hint to scan.
    code, out = await greenguard("edge", "read", "dlt645", "--host", "127.0.0.1", "--port",
                                 dlt, "--meter", "000000000001", "--timeout", "0.3",
                                 cwd=tmp_path)
    assert code == 1
    assert "no answer to read DI 00010000" in out
    assert "`greenguard edge scan dlt645` reads it" in out
    # The broadcast finds it, and the fragment configures it.
    fragment = tmp_path / "dlt.yaml"
    code, out = await greenguard("edge", "scan", "dlt645", "--host", "127.0.0.1", "--port",
                                 dlt, "--write-config", str(fragment), cwd=tmp_path)
    assert code == 0, out
    assert f"address {DLT645_ADDRESS}" in out
    energy = site.dlt645.register_value(dlt645.ITEMS_BY_POINT["energy_import_kwh"], START)
    assert f"energy_import_kwh (DI 00010000) = {energy:.10g} kWh" in out
    data = yaml.safe_load(fragment.read_text(encoding="utf-8"))
    assert data["devices"][0]["address"] == DLT645_ADDRESS
    parse_edge_config({"edge_id": "e1", "site": "s1", **data})
    # Then any data identifier can be read from it.
    code, out = await greenguard("edge", "read", "dlt645", "--host", "127.0.0.1", "--port",
                                 dlt, "--meter", DLT645_ADDRESS, "--di", "02010100",
                                 cwd=tmp_path)
    assert code == 0, out
    voltage = site.dlt645.register_value(dlt645.ITEMS_BY_POINT["voltage_l1_v"], START)
    assert f"value    {voltage:.10g} V" in out


async def test_cjt188_address_read(site: Site, tmp_path: Path) -> None:
    code, out = await greenguard("edge", "scan", "cjt188", "--host", "127.0.0.1", "--port",
                                 port(site.endpoints()["cjt188"]), cwd=tmp_path)
    assert code == 0, out
    assert f"address {CJT188_ADDRESS} (meter type 0x10)" in out
    assert "water_m3 (DI 901F) = 842.31 m3, valve open" in out


async def test_read_a_register_range_every_way(site: Site, tmp_path: Path) -> None:
    gw = port(site.endpoints()["gateway"])
    code, out = await greenguard("edge", "read", "modbus", "--host", "127.0.0.1", "--port",
                                 gw, "--unit", "2", "--table", "input", "--address", "0x0156",
                                 "--count", "2", cwd=tmp_path)
    assert code == 0, out
    total = load_register_map("eastron-sdm630").point("energy_total_kwh")
    expected = site.meters["sdm630"].read(total.table, total.address, 2)
    assert out.splitlines()[0].startswith(
        f"input 0x0156+2: [{expected[0]:04X} {expected[1]:04X}]")
    assert "float32 byte_order=big word_order=big        88231.5" in out
    assert [out.count(t) for t in ("float32", "uint32", "int32", "int16")] == [4, 4, 8, 4]
    # The register the lab meter lacks: exception 02, said plainly.
    code, out = await greenguard("edge", "read", "modbus", "--host", "127.0.0.1", "--port",
                                 gw, "--unit", "3", "--table", "input", "--address", "30",
                                 cwd=tmp_path)
    assert code == 1
    assert "Modbus exception 2 (illegal data address)" in out


async def test_edge_without_config_still_says_so(tmp_path: Path) -> None:
    code, out = await greenguard("edge", cwd=tmp_path)
    assert (code, out) == (2, "--config: required (the edge's YAML config)\n")
    code, out = await greenguard("edge", "scan", "modbus", "--serial", "/dev/null",
                                 "--baudrate", "9601", cwd=tmp_path)
    assert code == 2
    assert "--baudrate: must be one of" in out


async def test_the_documented_options_not_run_above(site: Site, tmp_path: Path) -> None:
    """docs/devices/commissioning.md's `probe --device`, `read modbus --type --scale`,
    `read dlt645 --meter auto` and `scan modbus --transport --register`, each run once."""
    gw = port(site.endpoints()["gateway"])
    config = write_config(tmp_path, site.edge_config())
    code, out = await greenguard("edge", "probe", "--config", str(config), "--device",
                                 "main-sdm120", "--device", "canteen-water", cwd=tmp_path)
    assert code == 0, out  # the failing devices were left out
    assert [line.split()[0] for line in out.splitlines() if not line.startswith(" ")] == [
        "main-sdm120", "canteen-water", "2"]
    assert out.splitlines()[-1] == "2 devices, 10 points: 10 good, 0 failed"

    code, out = await greenguard("edge", "read", "modbus", "--host", "127.0.0.1", "--port",
                                 gw, "--unit", "2", "--table", "input", "--address", "0x0156",
                                 "--type", "float32", "--scale", "1000", cwd=tmp_path)
    assert code == 0, out
    assert [out.count(t) for t in ("float32", "uint32", "int32", "int16")] == [4, 0, 0, 0]
    assert "float32 byte_order=big word_order=big        88231500\n" in out  # 88231.5 × 1000

    code, out = await greenguard("edge", "read", "dlt645", "--host", "127.0.0.1", "--port",
                                 port(site.endpoints()["dlt645"]), "--meter", "auto",
                                 cwd=tmp_path)
    assert code == 0, out
    assert out.startswith(f"meter {DLT645_ADDRESS}  DI 00010000 (energy_import_kwh, kWh)")
    energy = site.dlt645.register_value(dlt645.ITEMS_BY_POINT["energy_import_kwh"], START)
    assert f"value    {energy:.10g} kWh" in out

    code, out = await greenguard("edge", "scan", "modbus", "--host", "127.0.0.1", "--port", gw,
                                 "--transport", "modbus_tcp", "--register", "input:0x0048",
                                 "--units", "1-2", "--timeout", "0.3", cwd=tmp_path)
    assert code == 0, out
    assert "(modbus_tcp): read input 0x0048+1" in out.splitlines()[0]
    energy_hi = site.meters["sdm120"].read(Table.INPUT, 0x0048, 1)[0]
    assert f"unit   1: answers [{energy_hi:04X}]" in out
    assert "found 2 unit(s): 1, 2; 0 silent" in out
