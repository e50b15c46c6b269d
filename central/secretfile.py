"""Reading a secret from a file, with the checks that catch the usual slips.

A secret file (`--auth-secret-file`, `--postgres-password-file`) must be readable by its owner
only (mode 0600 or stricter: a world-readable signing secret lets anyone on the machine mint
admin tokens), must not be empty (an empty file is a failed `openssl rand … >` redirect, not
a missing flag), and must hold one value, not a YAML document (the institution file passed
to the wrong flag). Each refusal is a `ConfigError` naming the setting, the file and what to
do. Group- or world-readable files are refused only where permissions mean something (POSIX).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import yaml

from central.errors import ConfigError


def _looks_like_yaml(text: str) -> list[str] | None:
    """The top-level keys (or an empty list for a sequence) when `text` is a multi-line YAML
    document: what a configuration file looks like and a secret never does."""
    if len([line for line in text.splitlines() if line.strip()]) < 2:
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    if isinstance(data, dict):
        return [str(k) for k in data]
    return [] if isinstance(data, list) else None


def read_secret_file(path: Path, field: str, *, keep_spaces: bool = False) -> str:
    """The secret in `path`: without surrounding whitespace, or with `keep_spaces` (a
    password may end in a space) without the final line break only."""
    source = str(path)
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError("settings", [(field, source, f"cannot read: {reason}")]) from None
    if not stat.S_ISREG(mode):
        raise ConfigError("settings", [(field, source, "is not a regular file")])
    if os.name == "posix" and mode & 0o077:
        raise ConfigError("settings", [(field, source, (
            f"readable by others (mode {stat.S_IMODE(mode):04o}); a secret file must be "
            f"mode 0600 or stricter: chmod 600 {source}"))])
    value = text.rstrip("\r\n") if keep_spaces else text.strip()
    if not value.strip():
        raise ConfigError("settings", [(field, source, (
            "the file is empty; write the secret into it, e.g. (umask 077; openssl rand "
            f"-base64 48 > {source})"))])
    keys = _looks_like_yaml(text)
    if keys is not None:
        shown = ", ".join(keys[:4]) + (", …" if len(keys) > 4 else "")
        what = f"a YAML mapping (keys: {shown})" if keys else "a YAML list"
        raise ConfigError("settings", [(field, source, (
            f"holds {what}, not a secret: is this the configuration file passed to the "
            "wrong flag? A secret file holds one line"))])
    return value
