"""The frame shape DL/T 645 and CJ/T 188 share: optional FE preamble, 68, header with a
length byte, data, a sum-mod-256 checksum from the first 68, and 16 at the end. Each codec
keeps its own header layout; finding, checking and closing frames is done here once."""

from __future__ import annotations

from collections.abc import Callable

from protocols.errors import FrameError

START = 0x68
END = 0x16


def close(body: bytes, preamble: bytes) -> bytes:
    """`body` (from the first 68 through the data) framed: preamble, checksum, end byte."""
    return preamble + body + bytes([sum(body) & 0xFF, END])


def scan(buffer: bytes, *, protocol: str, length_at: int,
         check_header: Callable[[bytes], None] | None = None) -> tuple[bytes | None, int]:
    """Find the first complete frame: (raw frame, bytes consumed), or (None, n) where n
    leading bytes (garbage, preamble) can be dropped and more bytes are needed.

    `length_at` is the offset of the length byte from the 68; the data follows it. A frame
    whose checksum or end byte is wrong raises `FrameError` (on a half-duplex bus nothing
    after a broken frame can be trusted).
    """
    start = buffer.find(START)
    if start < 0:
        return None, len(buffer)
    if len(buffer) - start < length_at + 1:
        return None, start
    if check_header is not None:
        check_header(bytes(buffer[start:]))
    end = start + length_at + 3 + buffer[start + length_at]
    if len(buffer) < end:
        return None, start
    raw = bytes(buffer[start:end])
    if sum(raw[:-2]) & 0xFF != raw[-2]:
        raise FrameError(protocol, "checksum mismatch", raw)
    if raw[-1] != END:
        raise FrameError(protocol, "end byte 16 missing", raw)
    return raw, end


def whole(raw: bytes, *, protocol: str, length_at: int,
          check_header: Callable[[bytes], None] | None = None) -> bytes:
    """The one frame `raw` holds (preamble and trailing FE allowed, nothing else)."""
    frame, used = scan(raw, protocol=protocol, length_at=length_at, check_header=check_header)
    if frame is None:
        raise FrameError(protocol, "incomplete frame", raw)
    if raw[used:].strip(b"\xfe"):
        raise FrameError(protocol, "bytes after the end of the frame", raw)
    return frame
