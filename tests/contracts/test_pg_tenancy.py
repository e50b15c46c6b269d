"""Many institutions in one PostgreSQL database: the ledger bound to one institution, the
upgrade of a populated single-institution ledger, the backend opening a config directory's
ledgers (the SQLite central keeps a file per institution), and the tokens and commands
every worker of the central shares."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

import psycopg
import pytest
import yaml

from central import cli, migrations
from central.api import Tenant
from central.auth import Authenticator, AuthError, Role, TokenStore
from central.backend import open_commands, open_ledger, open_ledgers, open_tokens
from central.commands import CommandBook, CommandRequest, CommandService
from central.config import load_settings
from central.energy import EnergyType
from central.errors import StoreError
from central.institution import parse_institution
from central.ledger import Bill, EntryKind, FuelEntry, SqlLedger
from central.pgledger import PgLedger
from central.pgstate import PgCommandBook, PgTokenStore
from central.profile import load_profile
from tests.contracts.pg import APP_PASSWORD, PgServer
from tests.unit.central.central_helpers import INSTITUTION, TEST_SECRET

INSTITUTIONS = ["alpha", "bravo", "charlie", "delta", "echo"]


def connect(server: PgServer, dbname: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(server.dsn(dbname), password=APP_PASSWORD, autocommit=True)


def bill(ref: str, quantity: float) -> Bill:
    return Bill(ref=ref, energy=EnergyType.NATURAL_GAS, period_start=date(2025, 1, 1),
                period_end=date(2025, 1, 31), quantity=quantity)


def old_ledger(server: PgServer) -> str:
    """A database at ledger version 1 (one institution, no institution column) with rows."""
    db = server.create_database()
    with connect(server, db) as conn:
        assert migrations.apply(conn, "ledger", target=1) == 1
        for ref, q in (("gas-1", 10.0), ("gas-2", 20.0)):
            b = bill(ref, q)
            conn.execute("INSERT INTO ledger_entries (kind, ref, lo, hi, data) "
                         "VALUES ('bill', %s, %s, %s, %s)",
                         (ref, b.period_start.toordinal(), b.period_end.toordinal(),
                          b.model_dump_json()))
    return db


def ledger_rows(server: PgServer, db: str) -> list[tuple[object, ...]]:
    with connect(server, db) as conn:
        return conn.execute("SELECT institution, kind, ref FROM ledger_entries "
                            "ORDER BY 1, 2, 3").fetchall()


def test_upgrade_attributes_old_rows_to_the_institution_then_adds_another(
        pg_server: PgServer) -> None:
    db = old_ledger(pg_server)
    dsn = pg_server.dsn(db)
    settings = load_settings(institution_config=Path("alpha.yaml"), store="postgres",
                             postgres_dsn=dsn, postgres_password=APP_PASSWORD)
    # The central restarted with its one institution's config: the rows become alpha's.
    alpha = open_ledger(settings, "alpha", only=True)
    assert [b.quantity for b in alpha.all_bills()] == [10.0, 20.0]
    alpha.close()
    assert ledger_rows(pg_server, db) == [("alpha", "bill", "gas-1"), ("alpha", "bill", "gas-2")]
    # A second institution added: a config directory of both, one connection.
    alpha, bravo = open_ledgers(settings, ["alpha", "bravo"])
    assert bravo.all_bills() == []
    assert bravo.put(EntryKind.BILL, [bill("gas-1", 99.0)]).inserted == 1  # same ref: its own
    assert [b.quantity for b in alpha.all_bills()] == [10.0, 20.0]
    assert [b.quantity for b in bravo.all_bills()] == [99.0]
    alpha.close()
    assert [b.quantity for b in bravo.all_bills()] == [99.0]  # alpha's close kept the link
    bravo.close()
    assert ledger_rows(pg_server, db) == [("alpha", "bill", "gas-1"), ("alpha", "bill", "gas-2"),
                                          ("bravo", "bill", "gas-1")]


def test_a_populated_old_ledger_without_an_owner_is_refused_and_kept(pg_server: PgServer
                                                                     ) -> None:
    db = old_ledger(pg_server)
    settings = load_settings(institution_config=Path("district"), store="postgres",
                             postgres_dsn=pg_server.dsn(db), postgres_password=APP_PASSWORD)
    with pytest.raises(StoreError, match=r"2 entries from before institutions.*config of the "
                                         r"one institution"):
        open_ledgers(settings, ["alpha", "bravo"])
    with connect(pg_server, db) as conn:
        assert migrations.current_version(conn, "ledger") == 1
        assert conn.execute("SELECT COUNT(*) FROM ledger_entries").fetchone() == (2,)
    # An empty old ledger needs no owner.
    empty = pg_server.create_database()
    with connect(pg_server, empty) as conn:
        migrations.apply(conn, "ledger", target=1)
    for book in PgLedger.open_many(pg_server.dsn(empty), ["alpha", "bravo"],
                                   password=APP_PASSWORD):
        book.close()


def test_each_ledger_reads_and_writes_its_institution_only(pg_server: PgServer) -> None:
    books = PgLedger.open_many(pg_server.dsn(pg_server.create_database()), INSTITUTIONS,
                               password=APP_PASSWORD)
    try:
        for n, book in enumerate(books, start=1):
            book.put(EntryKind.BILL, [bill("gas-1", float(n)), bill(f"{book.institution}-x", n)])
            book.put(EntryKind.FUEL, [FuelEntry(ref="f-1", vehicle="car", day=date(2025, 1, 2),
                                                litres=n, km=10)])
        # A replay of alpha's import changes nothing anywhere; a correction changes alpha's.
        assert books[0].put(EntryKind.BILL, [bill("gas-1", 1.0)]).unchanged == 1
        assert books[0].put(EntryKind.BILL, [bill("gas-1", 1.5)]).updated == 1
        for n, book in enumerate(books, start=1):
            assert isinstance(book, SqlLedger)
            assert book.count() == {"bill": 2, "fuel": 1}
            quantities = {b.ref: b.quantity for b in book.bills(date(2025, 1, 1),
                                                                date(2025, 1, 31))}
            assert quantities == {"gas-1": 1.5 if n == 1 else n, f"{book.institution}-x": n}
            assert [f.litres for f in book.fuel(date(2025, 1, 1), date(2025, 1, 3))] == [n]
    finally:
        for book in books:
            book.close()
    with pytest.raises(ValueError, match="institution"):
        PgLedger(pg_server.dsn(pg_server.create_database()), "", password=APP_PASSWORD)


def test_a_tenant_refuses_the_ledger_of_another_institution(pg_server: PgServer) -> None:
    config = parse_institution(INSTITUTION)
    profile = load_profile("national")
    mine, other = PgLedger.open_many(pg_server.dsn(pg_server.create_database()),
                                     [config.institution.id, "bravo"], password=APP_PASSWORD)
    try:
        assert Tenant(config, profile, mine).ledger is mine
        with pytest.raises(ValueError, match="given the ledger of 'bravo'"):
            Tenant(config, profile, other)
    finally:
        mine.close()
        other.close()


class Published:
    def publish(self, site: str, edge: str, command: object) -> None:
        pass


def test_workers_share_tokens_and_commands(pg_server: PgServer) -> None:
    """Two workers (each its own connections): a token issued through one verifies on the
    other and a revocation on the other holds on the first; a command sent through one is
    listed by the other under its institution, and under no other."""
    dsn = pg_server.dsn(pg_server.create_database())
    t1, t2 = (PgTokenStore(dsn, password=APP_PASSWORD) for _ in range(2))
    c1, c2 = (PgCommandBook(dsn, password=APP_PASSWORD) for _ in range(2))
    try:
        one, two = Authenticator(TEST_SECRET, t1), Authenticator(TEST_SECRET, t2)
        info, raw = one.issue("office", Role.ENGINEER, ["alpha"])
        assert two.verify(raw).institutions == frozenset({"alpha"})
        assert t2.revoke(info.id, now=5.0)
        assert not t2.revoke("no-such-token", now=5.0)
        with pytest.raises(AuthError, match="revoked"):
            one.verify(raw)
        assert [t.revoked for t in t1.all()] == [5.0]

        request = CommandRequest.model_validate(
            {"edge": "edge-alpha", "name": "override.clear", "args": {"override_id": "c-1"}})
        sent = CommandService(c1, Published()).send(
            institution="alpha", site="site-a", request=request, created_by="office",
            now_ms=1_000)
        assert [r.id for r in c2.rows("alpha")] == [sent.id]
        assert c2.rows("alpha", command_id=sent.id)[0].sent
        assert c2.rows("bravo") == []
        assert c2.rows("bravo", command_id=sent.id) == []
    finally:
        for table in (t1, t2, c1, c2):
            table.close()


def test_token_actions_of_the_cli_use_the_shared_database(
        pg_server: PgServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    dsn = pg_server.dsn(pg_server.create_database())  # no worker started on it yet
    monkeypatch.setenv("GREENGUARD_POSTGRES_PASSWORD", APP_PASSWORD)
    monkeypatch.delenv("GREENGUARD_AUTH_SECRET", raising=False)
    config = tmp_path / "institution.yaml"
    config.write_text(yaml.safe_dump(INSTITUTION, allow_unicode=True), encoding="utf-8")
    secret = tmp_path / "auth.secret"
    secret.write_text(TEST_SECRET, encoding="utf-8")
    secret.chmod(0o600)
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    argv = ["--config", str(config), "--db", str(tmp_path / "central.sqlite"),
            "--auth-secret-file", str(secret), "--store", "postgres", "--postgres-dsn", dsn]
    assert cli.run(parser.parse_args(["bootstrap-admin", *argv])) == 0
    raw = capsys.readouterr().out.strip()
    assert cli.run(parser.parse_args(["bootstrap-admin", *argv])) == 2
    assert "tokens (postgres)" in capsys.readouterr().err
    assert not (tmp_path / "central.auth.sqlite").exists()
    tokens = PgTokenStore(dsn, password=APP_PASSWORD)
    try:
        assert Authenticator(TEST_SECRET, tokens).verify(raw).role is Role.ADMIN
    finally:
        tokens.close()


def test_tokens_and_commands_of_an_older_centrals_files_are_kept(
        pg_server: PgServer, tmp_path: Path) -> None:
    """Before, each PostgreSQL worker kept tokens and commands in SQLite files beside its
    --db: the upgraded worker copies them into the shared tables, once, and a revocation
    made since in PostgreSQL is not undone by the file at the next start."""
    settings = load_settings(institution_config=tmp_path / "alpha.yaml",
                             database=tmp_path / "central.sqlite", store="postgres",
                             postgres_dsn=pg_server.dsn(pg_server.create_database()),
                             postgres_password=APP_PASSWORD)
    old_tokens = TokenStore(settings.auth_path)
    old_book = CommandBook(tmp_path / "central.commands.sqlite")
    try:
        info, raw = Authenticator(TEST_SECRET, old_tokens).issue("office", Role.VIEWER,
                                                                 ["alpha"])
        request = CommandRequest.model_validate(
            {"edge": "edge-alpha", "name": "override.clear", "args": {"override_id": "c-1"}})
        sent = CommandService(old_book, Published()).send(
            institution="alpha", site="site-a", request=request, created_by="office",
            now_ms=1_000)
    finally:
        old_tokens.close()
        old_book.close()
    for start in range(2):
        tokens, book = open_tokens(settings), open_commands(settings)
        try:
            auth = Authenticator(TEST_SECRET, tokens)
            if start == 0:
                assert auth.verify(raw).institutions == frozenset({"alpha"})
                assert tokens.revoke(info.id, now=9.0)
            else:
                with pytest.raises(AuthError, match="revoked"):
                    auth.verify(raw)
            assert [t.id for t in tokens.all()] == [info.id]
            assert [(r.id, r.sent) for r in book.rows("alpha")] == [(sent.id, True)]
            assert book.rows("bravo") == []
        finally:
            tokens.close()
            book.close()
