"""The district simulation at CI size (docs/scale-out.md "A district simulation"): 20
institutions, each with its own signed edge stream, into real `greenguard central` workers on
a real Mosquitto, with a worker killed by SIGKILL mid-stream; the counting oracle must show,
for every institution, nothing missing and nothing duplicated.

SQLite: one worker serving the generated config directory (the embedded store's one
writer), killed and restarted. PostgreSQL: two workers in one share group, one killed and
restarted while the other carries on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from simulators.district import DistrictResult, Options, run_district, summary
from tests import system
from tests.contracts.pg import APP_PASSWORD, PgServer, postgres_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]



# 20 institutions, 12 s of streaming at 120× (24 simulated minutes), a worker kill at 5 s.
SMALL = Options(institutions=20, duration_s=12.0, speed=120.0, kill_worker_at=5.0,
                drain_timeout_s=90.0)


def check(result: DistrictResult) -> None:
    print("\n" + summary(result, per_institution=False))
    assert result.worker_kills == 1
    assert len(result.institutions) == 20
    assert result.drained_in_s is not None, "the edges' last records were never acked"
    for c in result.institutions:
        assert c.expected > 20, c  # every institution streamed: samples and intervals
        assert (c.stored, c.missing, c.duplicated, c.unexpected, c.lost, c.unacked) == (
            c.expected, 0, 0, 0, 0, 0), c
    assert result.acks_refused == 0
    assert result.ok


async def test_twenty_institutions_one_sqlite_worker_killed(tmp_path: Path,
                                                            mosquitto_binary: str) -> None:
    result = await run_district(replace(SMALL, workers=1, store="sqlite",
                                        workdir=tmp_path))
    check(result)
    # Every institution of the directory has its own ledger: one central served them all.
    assert len(list(tmp_path.glob("central.d0*.ledger.sqlite"))) == 20


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    system.require("postgresql")
    with postgres_server() as server:
        yield server


async def test_twenty_institutions_two_postgres_workers_one_killed(
        tmp_path: Path, mosquitto_binary: str, pg: PgServer) -> None:
    secret = tmp_path / "pg.secret"
    secret.write_text(APP_PASSWORD + "\n", encoding="utf-8")
    secret.chmod(0o600)
    options = replace(SMALL, workers=2, store="postgres",
                      postgres_dsn=pg.dsn(pg.create_database("district")),
                      postgres_password_file=secret, workdir=tmp_path / "run")
    result = await run_district(options)
    check(result)
