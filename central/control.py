"""The central's control-signing key: every ack and command it publishes is signed with it
(protocols/signing.py), and each edge configures its public key (`mqtt.central_public_key`).

The key is made by `greenguard certs` (control.key / control.pub in the certificate
directory) or, if the configured file does not exist, at the central's first start (0600,
next to the database), with the public key written beside it as `<file>.pub` and logged.
"""

from __future__ import annotations

import logging
from pathlib import Path

from central.errors import ConfigError
from protocols.errors import WireError
from protocols.signing import Signer, create_key_file

log = logging.getLogger(__name__)


def public_key_path(key_file: Path) -> Path:
    return key_file.with_name(key_file.name + ".pub") if key_file.suffix != ".key" \
        else key_file.with_suffix(".pub")


def create_control_key(key_file: Path) -> bool:
    """Write a new key (0600, never overwriting) and its public key; False if one exists."""
    return create_key_file(key_file, public_key_path(key_file))


def load_signer(key_file: Path, *, create: bool = True) -> Signer:
    """The central's signer; creates the key at first start when `create`. `ConfigError`
    names the file if it cannot be read or is not an Ed25519 private key."""
    if create and not key_file.exists() and create_control_key(key_file):
        log.warning("created the control-signing key %s; configure every edge with "
                    "mqtt.central_public_key: %s", key_file,
                    public_key_path(key_file).read_text(encoding="ascii").strip())
    try:
        signer = Signer(key_file.read_bytes())
    except OSError as exc:
        raise ConfigError("settings", [("control_key_file", str(key_file),
                                        f"cannot read: {exc.strerror}")]) from None
    except WireError as exc:
        raise ConfigError("settings", [("control_key_file", str(key_file),
                                        exc.reason)]) from None
    log.info("signing acks and commands with key %s (public key %s)", signer.kid,
             signer.public_key)
    return signer
