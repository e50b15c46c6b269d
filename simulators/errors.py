"""Exceptions raised by `simulators`.

    SimulatorError              base of everything this package raises
    ├── ScenarioError           a scenario file is invalid; `.source` and `.problems` name it
    ├── IllegalAddressError     a read touches registers the simulated device does not have;
    │                           `.table`, `.address`, `.count` (the Modbus server answers
    │                           exception 2, illegal data address)
    └── IllegalValueError       a write the simulated device refuses (not writable, outside
                                its range): Modbus exception 3, illegal data value

Configuration mistakes in code (a profile with peak < base, a meter without a cumulative
point) raise `ValueError` at construction, before any I/O.
"""

from __future__ import annotations

from collections.abc import Sequence


class SimulatorError(Exception):
    """Base class for all errors raised by `simulators`."""


class ScenarioError(SimulatorError):
    """A scenario document failed validation; every problem names its field and value."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        listed = "\n  ".join(self.problems)
        super().__init__(f"invalid scenario {source}:\n  {listed}")


class IllegalAddressError(SimulatorError):
    """A register read that the device's register map does not cover."""

    def __init__(self, table: str, address: int, count: int, reason: str) -> None:
        self.table = table
        self.address = address
        self.count = count
        self.reason = reason
        super().__init__(f"{table} registers {address}..{address + count - 1}: {reason}")


class IllegalValueError(SimulatorError):
    """A write the simulated device refuses, as a real controller would."""

    def __init__(self, point: str, reason: str) -> None:
        self.point = point
        self.reason = reason
        super().__init__(f"{point}: {reason}")
