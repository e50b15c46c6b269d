"""`greenguard sim platform` and `greenguard upload` as the processes a user starts: the
uploader sends two buildings' hourly periods of the day before yesterday to the test
receiver, which records each once; `/metrics` of the uploader counts them."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from central.store import Store
from tests.unit.central.central_helpers import INSTITUTION, batch, interval

pytestmark = pytest.mark.integration
TZ = ZoneInfo("Asia/Shanghai")
KEY = "abcdefghijklmnop"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _count(db: Path, day: date) -> int:
    """Accepted data messages of `day` (local time)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM received WHERE time LIKE ?",
                                    (day.strftime("%Y%m%d") + "%",)).fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_upload_process_to_sim_platform(tmp_path: Path) -> None:
    yesterday = datetime.now(TZ).date() - timedelta(days=2)  # closed whatever the hour
    t0 = int(datetime.combine(yesterday, datetime.min.time(), TZ).timestamp() * 1000)
    store = Store(tmp_path / "central.sqlite")
    for edge, devices in (("edge-1", ["meter-a", "meter-a-ac"]), ("edge-2", ["meter-b"])):
        recs = [interval(len(devices) * i + j + 1, start=t0 + i * 900_000, device=d,
                         quantity=1.5)
                for i in range(96) for j, d in enumerate(devices)]
        store.store_batch(batch(recs, after=0, edge=edge), "site-1")
    store.close()
    institution = {**INSTITUTION, "meters": [m for m in INSTITUTION["meters"]
                                             if m["device"] != "water-a"]}
    (tmp_path / "inst.yaml").write_text(yaml.safe_dump(institution, allow_unicode=True),
                                        encoding="utf-8")
    (tmp_path / "platform.key").write_text(KEY, encoding="utf-8")
    port, metrics_port = _free_port(), _free_port()
    city = {"city": "Test", "platform": {"host": "127.0.0.1", "port": port},
            "framing": "55AA", "period_min": 60, "start": yesterday.isoformat(),
            "rate_per_s": 200, "encryption": {"encrypt": "all", "key_file": "platform.key"},
            "buildings": {"A": {"building_id": "330302D101"},
                          "B": {"building_id": "330302A101"}}}
    (tmp_path / "city.yaml").write_text(yaml.safe_dump(city), encoding="utf-8")
    cli = [sys.executable, "-m", "simulators.cli"]
    rx_db = tmp_path / "rx.sqlite"
    procs = [subprocess.Popen([*cli, "sim", "platform", "--city", str(tmp_path / "city.yaml"),
                               "--db", str(rx_db)], stdout=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        procs.append(subprocess.Popen(
            [*cli, "upload", "--config", str(tmp_path / "inst.yaml"), "--city",
             str(tmp_path / "city.yaml"), "--db", str(tmp_path / "central.sqlite"),
             "--metrics-port", str(metrics_port)], stdout=subprocess.DEVNULL))
        while time.monotonic() < deadline and _count(rx_db, yesterday) < 48:
            time.sleep(0.3)
        with sqlite3.connect(rx_db) as conn:
            rows = conn.execute("SELECT building_id, time, COUNT(*) FROM received WHERE "
                                "time LIKE ? GROUP BY building_id, time",
                                (yesterday.strftime("%Y%m%d") + "%",)).fetchall()
        assert len(rows) == 48
        assert {n for _b, _t, n in rows} == {1}
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                    timeout=10) as r:
            text = r.read().decode()
        assert 'greenguard_upload_attempts_total{operation="continuous",outcome="accepted"}' \
            in text
        assert (tmp_path / "central.upload.demo-school.sqlite").exists()
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
