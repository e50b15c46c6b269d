"""Exceptions raised by `protocols`.

    ProtocolError                 base of everything this package raises
    ├── WireError                 a wire message is malformed; `.field` and `.value` name it
    ├── RegisterMapError          a register map file is invalid; `.model` and `.field`
    │   ├── DecodeError           raw registers cannot be turned into a value
    │   └── WriteRejectedError         a value to write is outside the point's allowlist/range
    └── FrameError                a device frame (Modbus RTU, DL/T 645, CJ/T 188, plug
        │                         JSON, sensor JSON) is malformed; `.protocol`, `.reason`
        └── DeviceReplyError      a well-formed frame that says "error": Modbus exception
                                  code, DL/T 645 error reply, Shelly RPC error; `.code`

Libraries raise; the agent and the central decide what to do (count, quarantine, log once).
A `FrameError` on a bus means garbage on the line (noise, a collision, a device answering
out of turn): the request failed and nothing it carried may be stored. A
`DeviceReplyError` means the device is alive and refused: the link is fine.
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


class WriteRejectedError(RegisterMapError):
    """A value an actuator was asked to write is not allowed for the point (not writable,
    outside `write.min`…`write.max`, not one of `write.allowed`, wrong type). Nothing was
    sent to the device."""


class FrameError(ProtocolError):
    """A device frame could not be parsed. `protocol` names the codec (`modbus-rtu`,
    `dlt645`, `cjt188`, `tasmota`, `shelly`, `bin-sensor`, `zigbee2mqtt`)."""

    def __init__(self, protocol: str, reason: str, frame: bytes | str | None = None) -> None:
        self.protocol = protocol
        self.reason = reason
        self.frame = frame
        shown = ""
        if isinstance(frame, bytes | bytearray):
            shown = f" [{bytes(frame[:40]).hex(' ').upper()}{' …' if len(frame) > 40 else ''}]"
        elif isinstance(frame, str):
            shown = f" ({frame[:60]!r})"
        super().__init__(f"{protocol}: {reason}{shown}")


class DeviceReplyError(FrameError):
    """The device answered, and the answer is an error (`code` is the protocol's own)."""

    def __init__(self, protocol: str, code: int, reason: str) -> None:
        self.code = code
        super().__init__(protocol, reason)
