"""Tokens and secrets: the signing secret is checked before anything starts, the first
admin comes from `bootstrap-admin` only once, tokens are created, listed and revoked from the
command line, and several institutions load from a directory."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml

from central import cli
from central.auth import Authenticator, AuthError, Role, TokenStore, check_secret
from central.errors import ConfigError
from central.institution import load_institutions
from tests.unit.central.central_helpers import INSTITUTION, TEST_SECRET


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize("secret", [
    None, "", "   ", "short-but-random-Q7x", "changeme" * 5, "please-change-this-" * 3,
    "a" * 64, "your-secret-key-goes-here-0123456789",
])
def test_missing_short_or_placeholder_secrets_are_refused(secret: str | None) -> None:
    with pytest.raises(ConfigError) as err:
        check_secret(secret)
    assert "auth_secret" in str(err.value)
    if secret:
        assert secret not in str(err.value)  # never echoed


def test_a_generated_secret_is_accepted() -> None:
    assert check_secret(TEST_SECRET) == TEST_SECRET


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.delenv("GREENGUARD_AUTH_SECRET", raising=False)
    config = tmp_path / "institution.yaml"
    config.write_text(yaml.safe_dump(INSTITUTION, allow_unicode=True), encoding="utf-8")
    secret = tmp_path / "auth.secret"
    secret.write_text(TEST_SECRET + "\n", encoding="utf-8")
    secret.chmod(0o600)
    return ["--config", str(config), "--db", str(tmp_path / "central.sqlite"),
            "--auth-secret-file", str(secret)]


def verify(tmp_path: Path, raw: str) -> tuple[Role, frozenset[str] | None]:
    store = TokenStore(tmp_path / "central.auth.sqlite")
    try:
        p = Authenticator(TEST_SECRET, store).verify(raw)
        return p.role, p.institutions
    finally:
        store.close()


def test_the_central_refuses_to_start_without_a_secret(
        tmp_path: Path, setup: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(parse(*setup[:4], "--check")) == 2  # no --auth-secret-file
    assert "auth_secret: missing" in capsys.readouterr().err
    placeholder = tmp_path / "placeholder.secret"
    placeholder.write_text("CHANGE-ME-to-a-long-random-string-please", encoding="utf-8")
    placeholder.chmod(0o600)
    assert cli.run(parse(*setup[:4], "--auth-secret-file", str(placeholder))) == 2
    assert "placeholder" in capsys.readouterr().err
    assert not (tmp_path / "central.sqlite").exists()  # refused before opening anything


def test_bootstrap_admin_once_then_tokens_from_the_cli(
        tmp_path: Path, setup: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(parse("bootstrap-admin", *setup)) == 0
    out = capsys.readouterr()
    admin = out.out.strip()
    assert "shown only once" in out.err
    assert verify(tmp_path, admin) == (Role.ADMIN, None)

    assert cli.run(parse("bootstrap-admin", *setup)) == 2  # an active admin exists
    assert "an active admin token exists already" in capsys.readouterr().err

    assert cli.run(parse("create-token", *setup, "--name", "office", "--role", "engineer",
                         "--institution", "demo-school", "--ttl-days", "30")) == 0
    engineer = capsys.readouterr().out.strip()
    assert verify(tmp_path, engineer) == (Role.ENGINEER, frozenset({"demo-school"}))

    assert cli.run(parse("create-token", *setup, "--name", "x",
                         "--institution", "nowhere")) == 2
    assert "--institution: unknown (known: demo-school) (got 'nowhere')" in \
        capsys.readouterr().err

    assert cli.run(parse("list-tokens", *setup)) == 0
    listing = capsys.readouterr().out
    assert "admin    active  institutions=all" in listing
    assert "engineer active  institutions=demo-school  office" in listing
    assert admin not in listing  # only ids are stored and listed

    token_id = listing.splitlines()[0].split()[0]
    assert cli.run(parse("revoke-token", *setup, "--id", token_id)) == 0
    with pytest.raises(AuthError, match="token revoked"):
        verify(tmp_path, admin)
    # With the only admin revoked, a new bootstrap is allowed (lost-token recovery).
    assert cli.run(parse("bootstrap-admin", *setup)) == 0
    assert cli.run(parse("revoke-token", *setup, "--id", "ffff")) == 2


def test_several_institutions_from_a_directory(tmp_path: Path) -> None:
    other = json.loads(json.dumps(INSTITUTION))
    other["institution"]["id"] = "second-school"
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(INSTITUTION, allow_unicode=True), "utf-8")
    (tmp_path / "b.yml").write_text(yaml.safe_dump(other, allow_unicode=True), "utf-8")
    (tmp_path / "notes.txt").write_text("not an institution", "utf-8")
    assert [c.institution.id for c in load_institutions(tmp_path)] == [
        "demo-school", "second-school"]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(other, allow_unicode=True), "utf-8")
    with pytest.raises(ConfigError) as err:
        load_institutions(tmp_path)
    assert "duplicate institution id (also in b.yml) (got 'second-school')" in str(err.value)
    assert [c.institution.id for c in load_institutions(tmp_path / "a.yaml")] == [
        "demo-school"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="no institution"):
        load_institutions(empty)


def test_an_edge_shared_by_two_institutions_is_refused(tmp_path: Path) -> None:
    from central.api import Tenant, create_app
    from central.institution import parse_institution
    from central.profile import load_profile
    from protocols.clock import VirtualClock
    from tests.unit.central.central_helpers import authenticator

    other = json.loads(json.dumps(INSTITUTION))
    other["institution"]["id"] = "second-school"
    profile = load_profile("national")
    with pytest.raises(ConfigError) as err:
        create_app(tmp_path / "c.sqlite", [Tenant(parse_institution(INSTITUTION), profile),
                                           Tenant(parse_institution(other), profile)],
                   VirtualClock(0), authenticator())
    assert "already belongs to institution demo-school" in str(err.value)
