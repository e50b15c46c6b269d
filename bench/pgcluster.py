"""A throwaway PostgreSQL cluster for benchmarks: initdb into a temporary directory, the
server on a free loopback port, stopped and removed at the end (as tests/contracts/pg.py
does for the tests, without pytest). PostgreSQL refuses to run as root: then the server
commands run as the `postgres` system user through `runuser`.

Settings are a benchmark's, not production's: no fsync (nothing here must survive a crash),
larger shared buffers and maintenance memory so building a year of rows is not the
measurement.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def server_binaries() -> Path:
    """Directory of initdb and pg_ctl (Debian's layout), newest major version first."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                   key=lambda p: int(Path(p).parent.name), reverse=True)
    for bindir in found:
        if (Path(bindir) / "initdb").exists():
            return Path(bindir)
    on_path = shutil.which("initdb")
    if on_path is None:
        raise SystemExit("PostgreSQL server binaries (initdb, pg_ctl) not found")
    return Path(on_path).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def throwaway_postgres(shared_buffers: str = "1GB") -> Iterator[str]:
    """The DSN (without dbname) of a fresh cluster (superuser `postgres`, trusted); make
    databases with `create_database`."""
    bindir = server_binaries()
    root = Path(tempfile.mkdtemp(prefix="gg-bench-pg-"))
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = _free_port()
    data = root / "data"

    def run(*argv: str) -> None:
        subprocess.run([*prefix, *argv], check=True, capture_output=True, text=True,
                       timeout=600, cwd=root)

    run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E",
        "UTF8", "--locale=C", "--no-sync")
    opts = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off "
            f"-c shared_buffers={shared_buffers} -c maintenance_work_mem=1GB "
            "-c work_mem=64MB -c max_wal_size=8GB -c checkpoint_timeout=30min")
    run(str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "server.log"),
        "-w", "-t", "120", "start")
    try:
        yield f"host=127.0.0.1 port={port} user=postgres"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "-w", "stop"], check=False, capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


def create_database(cluster: str, name: str) -> str:
    """Create database `name` on the cluster; its DSN."""
    import psycopg

    with psycopg.connect(cluster + " dbname=postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}".encode())
    return f"{cluster} dbname={name}"
