"""Exceptions raised by the edge agent.

    EdgeError                     base
    ├── ConfigError               the YAML config is invalid; the message names device and field
    ├── DeviceError               one device could not be read (timeout, exception code, decode)
    │   └── DeviceTimeoutError
    └── OutboxError               the outbox database cannot be written (disk full, corrupt)
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


class OutboxError(EdgeError):
    pass
