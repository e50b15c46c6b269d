"""Packed BCD, lowest byte first, as Chinese meter protocols (DL/T 645, CJ/T 188) carry
numbers and addresses."""

from __future__ import annotations

from protocols.errors import FrameError


def bcd_to_int(raw: bytes, *, protocol: str) -> int:
    """BCD bytes, lowest byte first, as an integer; `FrameError` on a non-decimal nibble."""
    value = 0
    for byte in reversed(raw):
        hi, lo = byte >> 4, byte & 0x0F
        if hi > 9 or lo > 9:
            raise FrameError(protocol, f"not BCD: {raw.hex(' ').upper()}")
        value = value * 100 + hi * 10 + lo
    return value


def int_to_bcd(value: int, size: int) -> bytes:
    """`value` as `size` BCD bytes, lowest first; `ValueError` if it does not fit."""
    if not 0 <= value < 100**size:
        raise ValueError(f"{value} does not fit {size} BCD bytes")
    out = bytearray()
    for _ in range(size):
        value, pair = divmod(value, 100)
        out.append((pair // 10) << 4 | pair % 10)
    return bytes(out)
