"""Exceptions raised by `protocols`.

    ProtocolError                 base of everything this package raises
    ├── WireError                 a wire message is malformed; `.field` and `.value` name it
    └── RegisterMapError          a register map file is invalid; `.model` and `.field`
        └── DecodeError           raw registers cannot be turned into a value

Libraries raise; the agent and the central decide what to do (count, quarantine, log once).
"""

from __future__ import annotations

from typing import Any


class ProtocolError(Exception):
    """Base class for all errors raised by `protocols`."""


class WireError(ProtocolError):
    """A wire message failed validation. `field` is a dotted path such as `records[3].seq`."""

    def __init__(self, field: str, value: Any, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"{field}: {reason} (got {shown})")


class RegisterMapError(ProtocolError):
    """A register map definition is invalid."""

    def __init__(self, model: str, field: str, reason: str) -> None:
        self.model = model
        self.field = field
        self.reason = reason
        super().__init__(f"register map {model!r}, {field}: {reason}")


class DecodeError(RegisterMapError):
    """Raw registers of one point are not a usable value (NaN, out of range, wrong length)."""
