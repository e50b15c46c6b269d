"""`greenguard certs`: what it writes, with which modes, and what it refuses."""

from __future__ import annotations

import argparse
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from central.certs import CertsError, make_site
from simulators.cli import main


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def usages(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_a_site_directory_holds_ca_broker_central_and_edges(tmp_path: Path) -> None:
    d = tmp_path / "ca"
    issued = make_site(d, broker_names=["mqtt.school.example", "10.0.0.5"],
                       edges=["edge-hd01", "edge-hd02"])
    assert [(i.role, i.name, i.created) for i in issued] == [
        ("ca", "ca", True), ("broker", "greenguard-broker", True),
        ("central", "greenguard-central", True), ("edge", "edge-hd01", True),
        ("edge", "edge-hd02", True)]
    ca = load(d / "ca.crt")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    broker = load(d / "broker.crt")
    sans = broker.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["mqtt.school.example"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.5")]
    assert ExtendedKeyUsageOID.SERVER_AUTH in usages(broker)
    for path, name in [(d / "central.crt", "greenguard-central"),
                       (d / "edges" / "edge-hd01.crt", "edge-hd01")]:
        cert = load(path)
        assert cn(cert) == name  # the broker's MQTT user name
        assert usages(cert) == {ExtendedKeyUsageOID.CLIENT_AUTH}
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        cert.verify_directly_issued_by(ca)
    broker.verify_directly_issued_by(ca)
    # keys are private to the owner, certificates readable, the directory closed
    assert mode(d) == 0o700
    assert mode(d / "edges") == 0o700
    for key in [d / "ca.key", d / "broker.key", d / "central.key", d / "edges/edge-hd02.key"]:
        assert mode(key) == 0o600, key
        assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    for crt in [d / "ca.crt", d / "broker.crt", d / "edges/edge-hd02.crt"]:
        assert mode(crt) == 0o644, crt


def test_a_second_run_keeps_everything_and_adds_the_new_edge(tmp_path: Path) -> None:
    d = tmp_path / "ca"
    first = {i.name: i.fingerprint for i in make_site(d, broker_names=["localhost"],
                                                      edges=["e1"])}
    key_before = (d / "edges" / "e1.key").read_bytes()
    second = make_site(d, edges=["e1", "e2"])  # no --broker-name needed any more
    assert {i.name: i.fingerprint for i in second if not i.created} == first
    assert [i.name for i in second if i.created] == ["e2"]
    assert (d / "edges" / "e1.key").read_bytes() == key_before
    load(d / "edges" / "e2.crt").verify_directly_issued_by(load(d / "ca.crt"))


@pytest.mark.parametrize(("kwargs", "field", "value"), [
    ({"broker_names": ["localhost"], "edges": ["bad/edge"]}, "--edge", "bad/edge"),
    ({"broker_names": ["localhost"], "edges": ["+"]}, "--edge", "+"),
    ({"broker_names": ["localhost"], "edges": ["greenguard-central"]}, "--edge",
     "greenguard-central"),
    ({"broker_names": ["localhost"], "edges": ["e1", "e1"]}, "--edge", ["e1", "e1"]),
    ({"broker_names": ["not a host"]}, "--broker-name", "not a host"),
    ({"edges": ["e1"]}, "--broker-name", None),
    ({"broker_names": ["localhost"], "days": 0}, "--days", 0),
    ({"broker_names": ["localhost"], "central_workers": ["greenguard-central"]},
     "--central-worker", "greenguard-central"),
    ({"broker_names": ["localhost"], "central_workers": ["w1"], "edges": ["w1"]},
     "--edge", "w1"),
])
def test_bad_options_name_the_option_and_write_nothing(
        tmp_path: Path, kwargs: dict[str, object], field: str, value: object) -> None:
    d = tmp_path / "ca"
    with pytest.raises(CertsError) as info:
        make_site(d, **kwargs)  # type: ignore[arg-type]
    assert (info.value.field, info.value.value) == (field, value)
    assert not d.exists()


def test_half_a_key_pair_is_an_error_not_a_silent_reissue(tmp_path: Path) -> None:
    d = tmp_path / "ca"
    make_site(d, broker_names=["localhost"], edges=["e1"])
    (d / "edges" / "e1.crt").unlink()
    with pytest.raises(CertsError, match=r"e1\.key"):
        make_site(d, edges=["e1"])
    (d / "ca.key").unlink()
    with pytest.raises(CertsError, match=r"ca\.key is missing"):
        make_site(d, edges=["e2"])


def test_the_command_prints_paths_and_fingerprints_never_keys(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "ca"
    assert main(["certs", "--dir", str(d), "--broker-name", "localhost", "--edge", "e1"]) == 0
    out = capsys.readouterr().out
    assert "PRIVATE KEY" not in out
    assert (d / "edges" / "e1.key").read_text().splitlines()[1] not in out
    assert f"{d / 'edges' / 'e1.crt'}" in out
    assert main(["certs", "--dir", str(d), "--edge", "bad/id"]) == 2
    assert "--edge: 'bad/id'" in capsys.readouterr().err


def test_central_workers_get_their_own_identities(tmp_path: Path) -> None:
    d = tmp_path / "ca"
    make_site(d, broker_names=["localhost"], central_workers=["central-2", "central-3"])
    for name in ("central-2", "central-3"):
        cert = load(d / "centrals" / f"{name}.crt")
        assert cn(cert) == name
        assert mode(d / "centrals" / f"{name}.key") == 0o600
    with pytest.raises(CertsError) as info:
        make_site(d, edges=["central-2"])
    assert info.value.field == "--edge"


def test_the_control_signing_key_is_made_once_and_its_public_key_printed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from central.certs import add_arguments, make_control_key, run
    from protocols.signing import Signer

    d = tmp_path / "ca"
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert run(parser.parse_args(["--dir", str(d), "--broker-name", "localhost"])) == 0
    public = (d / "control.pub").read_text().strip()
    assert "created  control  control-signing" in capsys.readouterr().out
    assert mode(d / "control.key") == 0o600
    assert Signer((d / "control.key").read_bytes()).public_key == public
    assert make_control_key(d) == (False, public)  # kept on a second run
