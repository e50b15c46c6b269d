"""A city's wire settings put together: `Message` -> frame bytes, and a streaming decoder.

Which frames are encrypted is the city's choice (`Encrypt`): "data" (variant B's rule:
authentication and heartbeat in clear, data AES), "all" (variant A as most cities run it:
every frame AES), or "none" (a test platform). Zipped data is gzip, then AES. The same
rules apply in both directions, so one codec serves the collector and a receiver.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocols.platform.crypto import AesCbc, Padding, unzip_data, zip_data
from protocols.platform.framing import Frame, FrameReader, Framing, Kind, encode_frame
from protocols.platform.messages import (
    DataMessage,
    HeartBeat,
    Message,
    decode_xml,
    encode_xml,
)


class Encrypt(enum.StrEnum):
    ALL = "all"
    DATA = "data"
    NONE = "none"


@dataclass(frozen=True)
class WireSettings:
    framing: Framing
    cipher: AesCbc | None = None
    encrypt: Encrypt = Encrypt.DATA
    encoding: str = "utf-8"
    zipped: bool = False  # data frames as kind 4 (gzip, then AES)
    decimals: int = 2


def kind_of(message: Message, zipped: bool) -> Kind:
    if isinstance(message.body, DataMessage):
        return Kind.ZIPPED_DATA if zipped else Kind.DATA
    if isinstance(message.body, HeartBeat):
        return Kind.HEARTBEAT
    return Kind.AUTH


class PlatformCodec:
    def __init__(self, settings: WireSettings) -> None:
        if settings.encrypt is not Encrypt.NONE and settings.cipher is None:
            raise ValueError(f"encrypt={settings.encrypt.value} needs a cipher")
        self.settings = settings

    def _encrypted(self, kind: int) -> bool:
        s = self.settings
        if s.encrypt is Encrypt.ALL:
            return True
        return s.encrypt is Encrypt.DATA and kind in (Kind.DATA, Kind.ZIPPED_DATA)

    def encode(self, message: Message) -> bytes:
        s = self.settings
        kind = kind_of(message, s.zipped)
        body = encode_xml(message, encoding=s.encoding, decimals=s.decimals)
        if kind is Kind.ZIPPED_DATA:
            body = zip_data(body)
        if self._encrypted(kind):
            assert s.cipher is not None
            body = s.cipher.encrypt(body)
        return encode_frame(s.framing, Frame(kind, body))

    def decode_frame(self, frame: Frame) -> Message:
        body = frame.body
        if self._encrypted(frame.kind):
            assert self.settings.cipher is not None
            body = self.settings.cipher.decrypt(body, strip=frame.kind != Kind.ZIPPED_DATA)
            if (self.settings.cipher.padding is Padding.ZERO and len(body) % 2
                    and self.settings.encoding.lower().replace("_", "-").startswith("utf-16")):
                body += b"\x00"  # zero padding ate the high byte of the closing ">"
        if frame.kind == Kind.ZIPPED_DATA:
            body = unzip_data(body)
        return decode_xml(body, encoding=self.settings.encoding)

    def reader(self) -> MessageReader:
        return MessageReader(self)


class MessageReader:
    """Bytes in, messages out: `feed` raises `FrameError` / `WireError` for garbage."""

    def __init__(self, codec: PlatformCodec) -> None:
        self.codec = codec
        self.frames = FrameReader(codec.settings.framing)

    def feed(self, data: bytes) -> list[Message]:
        return [self.codec.decode_frame(f) for f in self.frames.feed(data)]
