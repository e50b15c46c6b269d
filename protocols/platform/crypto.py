"""AES-128-CBC, the id_validate MD5 and the zipped-data compression of the platform link.

Cities differ (STANDARDS.md §4): the IV is the key itself in most access documents, padding
is PKCS7 or zeros (no padding at all when the text is already a multiple of 16 bytes), and
the handshake digest is md5(sequence + key) or md5(key + sequence). All of it is a
parameter here; nothing is guessed. Zero padding cannot carry trailing NUL bytes: XML text
never ends in one (UTF-16LE's last NUL is restored by the codec), and zipped data is
inflated with the padding left on.
"""

from __future__ import annotations

import enum
import gzip
import hashlib
import zlib

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from protocols.errors import FrameError

PROTOCOL = "platform"
BLOCK = 16


class Padding(enum.StrEnum):
    PKCS7 = "pkcs7"
    ZERO = "zero"


class Md5Order(enum.StrEnum):
    SEQUENCE_KEY = "sequence+key"
    KEY_SEQUENCE = "key+sequence"


class AesCbc:
    """AES-128-CBC with a fixed key and IV (the IV is the key unless the city gives one)."""

    def __init__(self, key: bytes, iv: bytes | None = None,
                 padding: Padding = Padding.PKCS7) -> None:
        if len(key) != BLOCK:
            raise ValueError(f"AES-128 key must be 16 bytes, got {len(key)}")
        self.iv = key if iv is None else iv
        if len(self.iv) != BLOCK:
            raise ValueError(f"AES IV must be 16 bytes, got {len(self.iv)}")
        self._key = key
        self.padding = padding

    def __repr__(self) -> str:  # never show the key
        return f"AesCbc(padding={self.padding.value})"

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self.iv))

    def encrypt(self, plain: bytes) -> bytes:
        if self.padding is Padding.PKCS7:
            n = BLOCK - len(plain) % BLOCK
            padded = plain + bytes([n]) * n
        else:
            padded = plain + b"\x00" * (-len(plain) % BLOCK)
        enc = self._cipher().encryptor()
        return enc.update(padded) + enc.finalize()

    def decrypt(self, data: bytes, *, strip: bool = True) -> bytes:
        """The plaintext; with zero padding and `strip=False` the padding is left on (for
        gzip, whose trailer may end in NUL bytes; the inflater ignores what follows)."""
        if not data or len(data) % BLOCK:
            raise FrameError(PROTOCOL, f"ciphertext of {len(data)} bytes is not a whole "
                             "number of AES blocks", data)
        dec = self._cipher().decryptor()
        plain = dec.update(data) + dec.finalize()
        if self.padding is Padding.ZERO:
            return plain.rstrip(b"\x00") if strip else plain
        n = plain[-1]
        if not 1 <= n <= BLOCK or plain[-n:] != bytes([n]) * n:
            raise FrameError(PROTOCOL, "bad PKCS7 padding after decryption (wrong key or "
                             "IV?)", data)
        return plain[:-n]


def handshake_md5(sequence: str, key: str, order: Md5Order = Md5Order.SEQUENCE_KEY,
                  encoding: str = "utf-8") -> str:
    """The 32 lowercase hex digits a collector answers an id_validate sequence with."""
    text = sequence + key if order is Md5Order.SEQUENCE_KEY else key + sequence
    return hashlib.md5(text.encode(encoding), usedforsecurity=False).hexdigest()


def zip_data(plain: bytes) -> bytes:
    """Zipped data (kind 4): gzip of the XML, before encryption."""
    return gzip.compress(plain, mtime=0)


def unzip_data(data: bytes, *, limit: int = 16 * 1024 * 1024) -> bytes:
    """gzip (or a bare zlib stream) back to XML, refusing more than `limit` bytes."""
    try:
        d = zlib.decompressobj(wbits=47)  # 32 + 15: gzip or zlib header, detected
        out = d.decompress(data, limit)
        if d.unconsumed_tail:
            raise FrameError(PROTOCOL, f"zipped data expands beyond {limit} bytes")
        if not d.eof:
            raise FrameError(PROTOCOL, "zipped data is truncated", data[:40])
        return out
    except zlib.error as exc:
        raise FrameError(PROTOCOL, f"zipped data does not inflate: {exc}", data[:40]) from exc
