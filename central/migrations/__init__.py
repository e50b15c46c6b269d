"""Numbered SQL migrations for the PostgreSQL adapters, applied at start.

Each component (`store`, `ledger`) has a folder of files `NNNN_name.sql`; the table
`schema_version` records which (component, version) pairs a database has. `apply` runs the
missing ones in order, each in its own transaction together with its `schema_version` row,
under a transaction-level advisory lock: several workers starting at once against one
database apply every migration exactly once, and a migration that fails leaves the database
at the previous version. A database newer than this code (a version above the last file) is
refused rather than written with an old schema. `settings` are given to every migration as
transaction-local settings (`current_setting('greenguard.…', true)` in its SQL), for what
only the starting central knows (the ledger's owner of rows from before institutions).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from central.errors import StoreError

if TYPE_CHECKING:
    import psycopg

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x6767_6D69  # "ggmi": one advisory lock for all greenguard migrations

_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    component TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version))"""


@dataclass(frozen=True, slots=True)
class Migration:
    component: str
    version: int
    name: str
    sql: str


def migrations(component: str) -> list[Migration]:
    """The component's migrations in version order; numbering must be 1, 2, 3 ..."""
    folder = resources.files(__package__).joinpath(component)
    found: list[Migration] = []
    for entry in folder.iterdir():
        m = _FILE.match(entry.name)
        if m is None:
            continue
        found.append(Migration(component, int(m.group(1)), m.group(2),
                               entry.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: mig.version)
    for expected, mig in enumerate(found, start=1):
        if mig.version != expected:
            raise RuntimeError(f"migrations/{component}: expected version {expected}, "
                               f"found {mig.version:04d}_{mig.name}.sql")
    return found


def latest_version(component: str) -> int:
    found = migrations(component)
    return found[-1].version if found else 0


def current_version(conn: psycopg.Connection[tuple[object, ...]], component: str) -> int:
    with conn.transaction():
        conn.execute(_VERSION_TABLE)
        row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version "
                           "WHERE component = %s", (component,)).fetchone()
    return int(row[0]) if row is not None else 0  # type: ignore[call-overload]


def apply(conn: psycopg.Connection[tuple[object, ...]], component: str,
          target: int | None = None, *, settings: Mapping[str, str] | None = None) -> int:
    """Bring `component` up to `target` (default: the newest); returns the version reached.
    `settings`: names (`greenguard.*`) and values set for each migration's transaction."""
    import psycopg

    wanted = migrations(component)
    newest = wanted[-1].version if wanted else 0
    target = newest if target is None else target
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            conn.execute(_VERSION_TABLE)
        version = current_version(conn, component)
        if version > newest:
            raise StoreError("migrate", f"{component} schema is at version {version}, newer "
                             f"than this greenguard knows ({newest}); upgrade greenguard")
        for mig in wanted:
            if mig.version <= version or mig.version > target:
                continue
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                row = conn.execute("SELECT 1 FROM schema_version WHERE component = %s AND "
                                   "version = %s", (component, mig.version)).fetchone()
                if row is not None:  # another worker got there first
                    continue
                for name, value in (settings or {}).items():
                    conn.execute("SELECT set_config(%s, %s, true)", (name, value))
                conn.execute(mig.sql.encode())
                conn.execute("INSERT INTO schema_version (component, version, name) "
                             "VALUES (%s, %s, %s)", (component, mig.version, mig.name))
        return current_version(conn, component)
    except psycopg.Error as exc:
        raise StoreError("migrate", f"{component}: {exc}") from exc
