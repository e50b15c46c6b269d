"""`greenguard certs`: a small certificate authority for a site's Mosquitto.

One directory holds everything a small site needs for MQTT over TLS with one credential per
edge (the broker takes the client certificate's CN as the MQTT user name, and its ACL
confines each user to its own topics):

    ca.crt, ca.key              the CA; ca.key never leaves this directory
    broker.crt, broker.key      Mosquitto's server certificate (SANs: --broker-name)
    central.crt, central.key    the central aggregator's client certificate
    centrals/<name>.crt, .key   more central workers (scale-out), one identity each
    edges/<edge>.crt, .key      one client certificate per edge, CN = edge id
    control.key, control.pub    the Ed25519 key the central signs acks and commands with
                                (central --control-key); control.pub is the text every
                                edge configures as mqtt.central_public_key

Running the command again reuses the CA and every existing file, and issues only what is
missing, so adding an edge is `greenguard certs --dir D --edge new-edge`. Re-issuing a
certificate means deleting its two files first. Keys are ECDSA P-256 (fast on a Raspberry
Pi, accepted by every TLS stack Mosquitto links against); private keys are written 0600
in a 0700 directory and never printed, only paths and SHA-256 fingerprints are.

Errors (`CertsError`) name the option and the value; nothing is written for a run whose
arguments are invalid.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Same shape as a wire id (protocols.wire): the edge id is the CN and hence the MQTT user.
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_DNS_RE = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
                     r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")

BROKER_CN = "greenguard-broker"  # the ACL lets this identity read $SYS (health checks)
CENTRAL_CN = "greenguard-central"  # the ACL's name for the central; edges may not take it
RESERVED = frozenset({BROKER_CN, CENTRAL_CN})


class CertsError(Exception):
    """A bad option value or an unusable certificate directory."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"{field}: {value!r}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Authority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


@dataclass(frozen=True, slots=True)
class Issued:
    """One certificate the run wrote or found (paths only: keys are never returned)."""

    role: str
    name: str
    cert: Path
    key: Path
    created: bool
    fingerprint: str


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _write_private(path: Path, data: bytes, mode: int) -> None:
    """Create `path` with `mode` from the first byte (no window with wider permissions);
    refuse to overwrite: an existing key is kept by the caller, never replaced here."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have narrowed it; be exact
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _save(path_crt: Path, path_key: Path, cert: x509.Certificate,
          key: ec.EllipticCurvePrivateKey) -> None:
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    _write_private(path_key, key_pem, 0o600)
    _write_private(path_crt, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _builder(subject: str, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey,
             days: int, not_before: dt.datetime | None) -> x509.CertificateBuilder:
    start = (not_before or _now()) - dt.timedelta(minutes=5)  # tolerate small clock skew
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                           critical=False))


def make_ca(name: str = "greenguard site CA", days: int = 3650) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (_builder(name, subject, key.public_key(), days, None)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return Authority(cert, key)


def issue(ca: Authority, common_name: str, *, server_names: Sequence[str] = (),
          client: bool = True, days: int = 825, not_before: dt.datetime | None = None,
          ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A leaf certificate signed by `ca`. With `server_names` it is a server certificate
    (DNS and IP SANs); `client` adds clientAuth, which every MQTT identity needs."""
    key = ec.generate_private_key(ec.SECP256R1())
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    builder = (_builder(common_name, ca.cert.subject, key.public_key(), days, not_before)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False,
                                            key_agreement=True, key_cert_sign=False,
                                            crl_sign=False, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca.key.public_key()), critical=False))
    if server_names:
        sans: list[x509.GeneralName] = []
        for name in server_names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                sans.append(x509.DNSName(name))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
    builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    return builder.sign(ca.key, hashes.SHA256()), key


def _check_server_name(name: str) -> str:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        if not _DNS_RE.match(name):
            raise CertsError("--broker-name", name,
                             "not a host name or IP address") from None
    return name


def _check_edge(name: str) -> str:
    if not _ID_RE.match(name):
        raise CertsError("--edge", name, "not an edge id (1-64 of A-Z a-z 0-9 _ . -, "
                                         "not starting with _ . -)")
    if name in RESERVED:
        raise CertsError("--edge", name, "reserved for the broker or the central")
    return name


def _check_worker(name: str, central_name: str) -> str:
    if not _ID_RE.match(name):
        raise CertsError("--central-worker", name, "not an id")
    if name in RESERVED or name == central_name:
        raise CertsError("--central-worker", name, "reserved for the broker or the central")
    return name


def _load_ca(directory: Path) -> Authority | None:
    crt, key = directory / "ca.crt", directory / "ca.key"
    if not crt.exists() and not key.exists():
        return None
    if not (crt.exists() and key.exists()):
        missing = key if crt.exists() else crt
        raise CertsError("--dir", str(directory), f"{missing.name} is missing: restore it or "
                                                  "start a new directory")
    cert = x509.load_pem_x509_certificate(crt.read_bytes())
    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    if not isinstance(private, ec.EllipticCurvePrivateKey):
        raise CertsError("--dir", str(directory), "ca.key is not an EC key made by this command")
    return Authority(cert, private)


def _existing(role: str, name: str, crt: Path, key: Path) -> Issued | None:
    if crt.exists() and key.exists():
        cert = x509.load_pem_x509_certificate(crt.read_bytes())
        return Issued(role, name, crt, key, False, _fingerprint(cert))
    if crt.exists() or key.exists():
        raise CertsError("--dir", str(crt.parent),
                         f"only one of {crt.name} and {key.name} exists: delete it to re-issue")
    return None


def make_site(directory: Path, *, broker_names: Sequence[str] = (),
              edges: Sequence[str] = (), central_name: str = CENTRAL_CN,
              central_workers: Sequence[str] = (),
              days: int = 825, ca_days: int = 3650) -> list[Issued]:
    """Create or complete a site's certificate directory; returns what is in it now."""
    names = [_check_server_name(n) for n in broker_names]
    edge_ids = [_check_edge(e) for e in edges]
    workers = [_check_worker(w, central_name) for w in central_workers]
    for name in edge_ids:
        if name in workers or (directory / "centrals" / f"{name}.crt").exists():
            raise CertsError("--edge", name, "already a central worker's name")
    for name in workers:
        if (directory / "edges" / f"{name}.crt").exists():
            raise CertsError("--central-worker", name, "already an edge's name")
    if len(set(workers)) != len(workers):
        raise CertsError("--central-worker", workers, "a name is given twice")
    if not _ID_RE.match(central_name):
        raise CertsError("--central-name", central_name, "not an id")
    if not 1 <= days <= ca_days:
        raise CertsError("--days", days, f"must be between 1 and --ca-days ({ca_days})")
    if len(set(edge_ids)) != len(edge_ids):
        raise CertsError("--edge", edge_ids, "an edge id is given twice")
    broker_crt, broker_key = directory / "broker.crt", directory / "broker.key"
    if not names and not broker_crt.exists():
        raise CertsError("--broker-name", None, "needed to create broker.crt: the host name "
                                                "or address the edges connect to")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)  # the CA key lives here
    (directory / "edges").mkdir(mode=0o700, exist_ok=True)
    if workers:
        (directory / "centrals").mkdir(mode=0o700, exist_ok=True)

    ca = _load_ca(directory)
    out: list[Issued] = []
    if ca is None:
        ca = make_ca(days=ca_days)
        _save(directory / "ca.crt", directory / "ca.key", ca.cert, ca.key)
        out.append(Issued("ca", "ca", directory / "ca.crt", directory / "ca.key", True,
                          _fingerprint(ca.cert)))
    else:
        out.append(Issued("ca", "ca", directory / "ca.crt", directory / "ca.key", False,
                          _fingerprint(ca.cert)))

    wanted: list[tuple[str, str, Path, Path, Sequence[str]]] = [
        ("broker", BROKER_CN, broker_crt, broker_key, names),
        ("central", central_name, directory / "central.crt", directory / "central.key", ()),
    ]
    wanted += [("central", w, directory / "centrals" / f"{w}.crt",
                directory / "centrals" / f"{w}.key", ()) for w in workers]
    wanted += [("edge", e, directory / "edges" / f"{e}.crt", directory / "edges" / f"{e}.key",
                ()) for e in edge_ids]
    for role, cn, crt, key, sans in wanted:
        found = _existing(role, cn, crt, key)
        if found is not None:
            out.append(found)
            continue
        cert, private = issue(ca, cn, server_names=sans, days=days)
        _save(crt, key, cert, private)
        out.append(Issued(role, cn, crt, key, True, _fingerprint(cert)))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", "-d", type=Path, required=True, metavar="DIR",
                        help="certificate directory (created 0700; keep it off the edges)")
    parser.add_argument("--broker-name", action="append", default=[], metavar="HOST",
                        help="host name or IP address the broker is reached at (repeatable; "
                             "needed the first time)")
    parser.add_argument("--edge", action="append", default=[], metavar="EDGE_ID",
                        help="issue a client certificate for this edge (repeatable)")
    parser.add_argument("--central-name", default=CENTRAL_CN, metavar="NAME",
                        help=f"CN of the central's certificate (default {CENTRAL_CN}, the "
                             "name deploy/mosquitto/acl grants)")
    parser.add_argument("--central-worker", action="append", default=[], metavar="NAME",
                        help="a further central ingest worker's certificate (repeatable); "
                             "each needs its own `user` block in deploy/mosquitto/acl")
    parser.add_argument("--days", type=int, default=825,
                        help="validity of broker, central and edge certificates (default 825)")
    parser.add_argument("--ca-days", type=int, default=3650,
                        help="validity of a new CA (default 3650)")


def run(args: argparse.Namespace) -> int:
    try:
        issued = make_site(args.dir, broker_names=args.broker_name, edges=args.edge,
                           central_name=args.central_name,
                           central_workers=args.central_worker, days=args.days,
                           ca_days=args.ca_days)
    except CertsError as exc:
        print(f"greenguard certs: {exc}", file=sys.stderr)
        return 2
    for item in issued:
        state = "created" if item.created else "kept"
        print(f"{state:8} {item.role:8} {item.name:24} {item.cert}  SHA256 {item.fingerprint}")
    created, public = make_control_key(args.dir)
    state = "created" if created else "kept"
    print(f"{state:8} {'control':8} {'control-signing':24} {args.dir / 'control.key'}  "
          f"mqtt.central_public_key: {public}")
    return 0


def make_control_key(directory: Path) -> tuple[bool, str]:
    """control.key (0600) and control.pub in the site directory, kept if present; returns
    whether it was created and the public key text for the edges' configs."""
    from central.control import create_control_key, public_key_path
    from protocols.signing import public_key_text

    key = directory / "control.key"
    created = create_control_key(key)
    public = public_key_text(key.read_bytes())
    public_key_path(key).write_text(public + "\n", encoding="ascii")
    return created, public
