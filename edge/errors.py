"""Exceptions raised by the edge agent.

    EdgeError                     base
    ├── ConfigError               the YAML config is invalid; the message names device and field
    ├── DeviceError               one device could not be read or written; `.device`, `.reason`
    │   ├── DeviceTimeoutError    no (complete) answer within the device's timeout
    │   ├── DeviceFaultError      the device answered with an error (Modbus exception code,
    │   │                         DL/T 645 error reply, Shelly RPC error); `.code`
    │   ├── GarbledFrameError     bytes arrived that are not the answer (CRC, noise, collision)
    │   └── BusBusyError          too many writes already wait for the bus; nothing was sent
    └── OutboxError               the outbox database cannot be written (disk full, corrupt)

Drivers raise `DeviceError`s; the bus scheduler decides (backoff, offline/online events,
counters). Value checks on writes raise `protocols.errors.WriteRejectedError` before any I/O.
"""

from __future__ import annotations


class EdgeError(Exception):
    """Base class for errors raised by `edge`."""


class ConfigError(EdgeError):
    """Invalid configuration; raised at start-up before any I/O."""


class DeviceError(EdgeError):
    def __init__(self, device: str, reason: str) -> None:
        self.device = device
        self.reason = reason
        super().__init__(f"device {device!r}: {reason}")


class DeviceTimeoutError(DeviceError):
    pass


class DeviceFaultError(DeviceError):
    """The link works and the device refused: a mapping or device problem, not the bus."""

    def __init__(self, device: str, reason: str, code: int) -> None:
        self.code = code
        super().__init__(device, reason)


class GarbledFrameError(DeviceError):
    pass


class BusBusyError(DeviceError):
    pass


class OutboxError(EdgeError):
    pass
