"""Exceptions raised by `central`.

    CentralError                  base of everything this package raises
    ├── ConfigError               institution config, settings or coefficient profile invalid;
    │   │                         `.source` names the file, `.problems` lists (field, value, reason)
    │   ├── ProfileError          a coefficient profile is unknown, invalid or does not fit the
    │   │                         institution's meters (unit without a conversion)
    │   └── FactorError           the emission-factor table or `carbon.factors` is invalid
    │                             (central/carbon_factors.py)
    ├── MissingFactorError        no emission factor is valid for an energy at a time
    │                             (`central.carbon.EmissionFactors.co2_kg`)
    ├── EntryError                ledger entries (API or CSV/XLSX import) refused; `.problems`
    │                             lists (row.field, value, reason); nothing was stored
    ├── ReportError               a report cannot be produced (no CJK font for the PDF, bad period)
    ├── StoreError                a store read or write failed (sqlite error, disk full); a batch
    │                             whose write failed is not acknowledged, so the edge resends it
    ├── HttpServerError           the built-in HTTP server could not start (port in use)
    └── ScopeError                a central-wide read asked of one institution's reader, or a
                                  reader of one institution used for another (central/reader.py)

Libraries raise; the service decides (count, quarantine, log once). Malformed MQTT payloads
are not exceptions here: `protocols.errors.WireError` is caught by ingest and quarantined in
the dead-letter table.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any


class CentralError(Exception):
    """Base class for all errors raised by `central`."""


Problem = tuple[str, Any, str]
"""(dotted field path, offending value, reason)."""


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class ConfigError(CentralError):
    """A configuration file or setting is invalid. Every problem names its field and value."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        lines = [f"{field}: {reason} (got {_shown(value)})" for field, value, reason in problems]
        super().__init__(f"{source}: " + ("; ".join(lines) if lines else "invalid"))


class ProfileError(ConfigError):
    """A coefficient profile is unknown, invalid, or cannot convert a configured meter."""


class EntryError(CentralError):
    """Ledger entries were refused, all of them: every problem names its row, field, value."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        lines = [f"{field}: {reason} (got {_shown(value)})" for field, value, reason in problems]
        super().__init__(f"{source}: " + ("; ".join(lines) if lines else "invalid"))


class ReportError(CentralError):
    """A report cannot be produced; the message says what is missing."""


class StoreError(CentralError):
    """A store operation failed; `.operation` says which. The cause is chained."""

    def __init__(self, operation: str, reason: str) -> None:
        self.operation = operation
        self.reason = reason
        super().__init__(f"store {operation} failed: {reason}")


@contextlib.contextmanager
def overflow_is_a_store_error(operation: str) -> Iterator[None]:
    """A value no column can hold (an integer beyond 64 bits, a number beyond a double)
    makes the write fail like any other store error (no ack), instead of an `OverflowError`
    escaping ingest. The wire decoder refuses such values first; this is the store's own
    guard for records that did not come through it."""
    try:
        yield
    except OverflowError as exc:
        raise StoreError(operation, f"a value too large to store: {exc}") from exc


class HttpServerError(CentralError):
    """The HTTP server could not start (uvicorn exits the process on bind errors)."""


class ScopeError(CentralError):
    """A read outside the institution a `central.reader.TenantReader` is bound to."""
