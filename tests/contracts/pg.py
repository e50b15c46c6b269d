"""A real PostgreSQL server for tests: initdb into a temporary directory, the server on a free
loopback port with its socket in that directory, stopped (and the directory removed) at the
end.

PostgreSQL refuses to run as root, and CI runs as root: then every server command runs as
the `postgres` system user (`runuser -u postgres --`) on a directory chowned to it. Debian's
`postgresql` package provides both the binaries (under /usr/lib/postgresql/<major>/bin, not on
PATH) and that user. Under CI=true a missing server fails the test instead of skipping.

Authentication: the superuser `postgres` is trusted (fixtures create databases with it), the
application role `greenguard` must give its password (scram-sha-256), so the tests exercise
the same password path as a production deployment.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import system
from tests.conftest import free_port

APP_USER = "greenguard"
APP_PASSWORD = "test-only-" + os.urandom(6).hex()  # made per run, never a committed secret
_names = itertools.count(1)


def server_binaries() -> Path | None:
    """Directory holding initdb and pg_ctl, newest major version first."""
    found = system.find("postgresql")
    return Path(found) if found else None


def require_server() -> Path:
    bindir = Path(system.require("postgresql"))
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.fail("running as root needs runuser to start PostgreSQL as user postgres")
    return bindir


@dataclass
class PgServer:
    bindir: Path
    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*prefix, *argv], check=check, capture_output=True, text=True,
                              timeout=120, cwd=self.root)

    def start(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
        (self.data / "pg_hba.conf").write_text(
            "local all postgres trust\n"
            "host all postgres 127.0.0.1/32 trust\n"
            f"host all {APP_USER} 127.0.0.1/32 scram-sha-256\n", encoding="utf-8")
        # Test-only durability settings: nothing here survives an OS crash anyway.
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=60")
        result = self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", opts,
                           "-l", str(self.root / "server.log"), "-w", "-t", "60", "start",
                           check=False)
        if result.returncode != 0:
            log = (self.root / "server.log")
            raise RuntimeError(f"pg_ctl start failed: {result.stderr}\n"
                               f"{log.read_text() if log.exists() else ''}")
        self.admin(f"CREATE ROLE {APP_USER} LOGIN PASSWORD '{APP_PASSWORD}'")

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                  "-w", "stop", check=False)

    def admin(self, statement: str, dbname: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres",
                             dbname=dbname, autocommit=True) as conn:
            conn.execute(statement.encode())

    def create_database(self, prefix: str = "t") -> str:
        name = f"{prefix}_{os.getpid()}_{next(_names)}"
        self.admin(f"CREATE DATABASE {name} OWNER {APP_USER}")
        return name

    def dsn(self, dbname: str) -> str:
        """The application's DSN: no password in it, as in production (it comes apart)."""
        return f"host=127.0.0.1 port={self.port} user={APP_USER} dbname={dbname}"


@contextlib.contextmanager
def postgres_server() -> Iterator[PgServer]:
    bindir = require_server()
    root = Path(tempfile.mkdtemp(prefix="gg-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    server = PgServer(bindir, root, free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
