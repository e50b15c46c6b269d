"""The two framings of the platform link (STANDARDS.md §4, "Upload protocol").

"55AA" (variant A)::

    55 AA 55 AA | uint32 LE n | valid data (n bytes) | CRC16 LE | 68 68 16 16
    valid data = uint32 LE instruction + body (the AES ciphertext of the XML)

The CRC is CRC16-CCITT with polynomial 0x1021 and initial value 0 (the XMODEM variant,
check value 0x31C3 over b"123456789"), computed over the valid data. The guideline calls
the 4-byte field "instruction/sequence"; we send the message's kind (1 auth, 2 heartbeat,
3 data, 4 zipped data; the same numbers as variant B's type byte) little-endian, and the
reader hands it back without judging it: dispatch is on the XML, never on this field.

"1F1F" (variant B)::

    1F 1F | type (01 auth, 02 heartbeat, 03 data, 04 zipped data) | uint32 BE n | body

A `FrameReader` takes bytes as they arrive from a socket and yields whole frames; bytes
before a start marker are skipped and counted (`skipped`), a bad CRC, a bad trailer or a
length beyond `max_length` raise `FrameError` (the link is garbage: the caller closes it).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from protocols.errors import FrameError

PROTOCOL = "platform"
MAX_LENGTH = 4 * 1024 * 1024  # a data message of a large building is a few kB


class Framing(enum.StrEnum):
    A55AA = "55AA"
    B1F1F = "1F1F"


class Kind(enum.IntEnum):
    """What a frame carries (variant B's type byte; variant A's instruction word)."""

    AUTH = 1
    HEARTBEAT = 2
    DATA = 3
    ZIPPED_DATA = 4


@dataclass(frozen=True)
class Frame:
    kind: int  # a `Kind` value, or what the peer sent in that field
    body: bytes  # ciphertext or plaintext XML, as the framing carried it


A_HEAD = b"\x55\xaa\x55\xaa"
A_TAIL = b"\x68\x68\x16\x16"
B_HEAD = b"\x1f\x1f"


def crc16_ccitt(data: bytes, crc: int = 0) -> int:
    """CRC16-CCITT, polynomial 0x1021, initial value `crc` (0), no reflection, no final XOR."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def encode_frame(framing: Framing, frame: Frame) -> bytes:
    if not 0 <= frame.kind <= 0xFF:
        raise FrameError(PROTOCOL, f"frame kind {frame.kind} does not fit a byte")
    if framing is Framing.A55AA:
        valid = struct.pack("<I", frame.kind) + frame.body
        return (A_HEAD + struct.pack("<I", len(valid)) + valid
                + struct.pack("<H", crc16_ccitt(valid)) + A_TAIL)
    return B_HEAD + bytes([frame.kind]) + struct.pack(">I", len(frame.body)) + frame.body


class FrameReader:
    """Streaming decoder of one framing: `feed(bytes)` returns the frames completed."""

    def __init__(self, framing: Framing, *, max_length: int = MAX_LENGTH) -> None:
        self.framing = framing
        self.max_length = max_length
        self.skipped = 0  # bytes before a start marker, dropped
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        while True:
            frame = self._next()
            if frame is None:
                return frames
            frames.append(frame)

    def _sync(self, head: bytes) -> bool:
        """Drop bytes before `head`; False while no whole head is buffered."""
        at = self._buf.find(head)
        if at < 0:
            keep = len(head) - 1  # a head may be split across reads
            drop = max(0, len(self._buf) - keep)
            while drop < len(self._buf) and not head.startswith(bytes(self._buf[drop:])):
                drop += 1
            self.skipped += drop
            del self._buf[:drop]
            return False
        self.skipped += at
        del self._buf[:at]
        return True

    def _next(self) -> Frame | None:
        if self.framing is Framing.A55AA:
            return self._next_a()
        return self._next_b()

    def _next_a(self) -> Frame | None:
        if not self._sync(A_HEAD) or len(self._buf) < 8:
            return None
        (n,) = struct.unpack_from("<I", self._buf, 4)
        if n < 4 or n > self.max_length:
            head = bytes(self._buf[:8])
            del self._buf[:4]  # resync after this head
            raise FrameError(PROTOCOL, f"55AA length {n} outside 4..{self.max_length}", head)
        total = 8 + n + 2 + 4
        if len(self._buf) < total:
            return None
        raw = bytes(self._buf[:total])
        del self._buf[:total]
        valid = raw[8:8 + n]
        (crc,) = struct.unpack_from("<H", raw, 8 + n)
        if raw[-4:] != A_TAIL:
            raise FrameError(PROTOCOL, f"55AA trailer {raw[-4:].hex(' ')}, not 68 68 16 16",
                             raw)
        if crc != crc16_ccitt(valid):
            raise FrameError(PROTOCOL, f"55AA CRC {crc:04X}, computed "
                             f"{crc16_ccitt(valid):04X}", raw)
        (kind,) = struct.unpack_from("<I", valid, 0)
        return Frame(kind=kind, body=valid[4:])

    def _next_b(self) -> Frame | None:
        if not self._sync(B_HEAD) or len(self._buf) < 7:
            return None
        kind = self._buf[2]
        (n,) = struct.unpack_from(">I", self._buf, 3)
        if n > self.max_length:
            head = bytes(self._buf[:7])
            del self._buf[:2]
            raise FrameError(PROTOCOL, f"1F1F length {n} above {self.max_length}", head)
        if len(self._buf) < 7 + n:
            return None
        body = bytes(self._buf[7:7 + n])
        del self._buf[:7 + n]
        return Frame(kind=kind, body=body)
