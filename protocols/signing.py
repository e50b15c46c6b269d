"""End-to-end authenticity of the downlink: the central signs every ack and command with
Ed25519, each edge holds the central's public key and verifies (docs/wire-protocol.md,
"Signed downlink"; docs/security.md).

Why not trust the broker: an ack makes the edge delete outbox rows and a command switches a
device. With only the broker's ACLs between a forger and both, one misconfigured listener
hands over the site. A signature over (topic, key id, issued, expiry, message) cannot be made
without the central's private key, cannot be moved to another edge's topic, and stops being
accepted after its expiry; `Verifier` also remembers the signatures it accepted until they
expire, so a replayed envelope is refused even where replay would be harmless.

Keys: the private key is a PKCS#8 PEM file on the central (0600), made by `greenguard
certs` or at the central's first start; the public key is 32 raw bytes, written in edge
configs as unpadded base64url (43 characters).
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from protocols.errors import ProtocolError, WireError
from protocols.wire import Ack, Command, Signed, decode, encode, signing_input

ACK_TTL_MS = 3_600_000  # an ack's envelope is accepted for an hour (edge clocks drift)
CLOCK_SKEW_MS = 300_000  # an envelope issued up to 5 min "in the future" of the edge clock
MAX_REMEMBERED = 10_000  # accepted signatures kept for replay detection
UPLINK_EXP_MS = 253402300799999  # uplink envelopes do not expire: the largest wire time


class Refusal(StrEnum):
    UNSIGNED = "unsigned"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_KEY = "unknown_key"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    REPLAYED = "replayed"
    RETAINED = "retained"
    MALFORMED = "malformed"


class SignatureError(ProtocolError):
    """A downlink message the edge must not act on; `refusal` says why, `inner` is the
    decoded inner message when there was one (to audit a refused command by its id)."""

    def __init__(self, refusal: Refusal, detail: str,
                 inner: Ack | Command | None = None) -> None:
        self.refusal = refusal
        self.detail = detail
        self.inner = inner
        super().__init__(f"{refusal.value}: {detail}")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


def generate_private_key_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())


def public_key_text(private_pem: bytes) -> str:
    """The public key as configured on edges: 32 raw bytes, unpadded base64url."""
    return _b64(_load_private(private_pem).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def create_key_file(key_file: Path, public_file: Path) -> bool:
    """Write a new Ed25519 private key to `key_file` (0600, never overwriting, fsynced) and
    its public key text to `public_file`; False if `key_file` exists. The one writer of the
    central's control key and an edge's uplink key."""
    pem = generate_private_key_pem()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
        out.flush()
        os.fsync(out.fileno())
    public_file.write_text(public_key_text(pem) + "\n", encoding="ascii")
    return True


def _load_private(pem: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise WireError("control_key", "<private key>", f"not a PEM private key: {exc}"
                        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise WireError("control_key", type(key).__name__, "must be an Ed25519 key")
    return key


def parse_public_key(text: str) -> Ed25519PublicKey:
    """`WireError` naming the problem if `text` is not a 32-byte base64url key."""
    try:
        raw = _unb64(text.strip())
    except ValueError:
        raise WireError("central_public_key", text, "not base64url") from None
    if len(raw) != 32:
        raise WireError("central_public_key", text,
                        f"must be 32 bytes of Ed25519 public key, got {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


class Signer:
    """The central's half: wraps acks and commands in `Signed` envelopes."""

    def __init__(self, private_pem: bytes) -> None:
        self._key = _load_private(private_pem)
        raw = self._key.public_key().public_bytes(serialization.Encoding.Raw,
                                                  serialization.PublicFormat.Raw)
        self.kid = key_id(raw)
        self.public_key = _b64(raw)
        self._last_ts = 0

    def envelope(self, topic_name: str, message: Ack | Command, now_ms: int) -> Signed:
        msg = encode(message).decode()
        # Strictly increasing: two acks of the same watermark within one millisecond (or
        # under a simulated clock that stands still) are different envelopes, not a replay.
        ts = max(now_ms, self._last_ts + 1)
        self._last_ts = ts
        exp = message.expires if isinstance(message, Command) else ts + ACK_TTL_MS
        ts = min(ts, exp - 1)
        sig = self._key.sign(signing_input(topic_name, self.kid, ts, exp, msg))
        return Signed(self.kid, ts, exp, msg, _b64(sig))

    def sign(self, topic_name: str, message: Ack | Command, now_ms: int) -> bytes:
        return encode(self.envelope(topic_name, message, now_ms))

    def seal(self, topic_name: str, payload: bytes, ts: int) -> bytes:
        """An uplink message (batch, birth, death) as already encoded, in a signed envelope
        that does not expire (a backlog may be sent days later; the central's dedup, not an
        expiry, absorbs replays)."""
        msg = payload.decode()
        ts = min(max(ts, 0), UPLINK_EXP_MS - 1)
        sig = self._key.sign(signing_input(topic_name, self.kid, ts, UPLINK_EXP_MS, msg))
        return encode(Signed(self.kid, ts, UPLINK_EXP_MS, msg, _b64(sig)))


@dataclass(frozen=True, slots=True)
class Verified:
    message: Ack | Command
    envelope: Signed


class Verifier:
    """The edge's half. `check` returns the inner message or raises `SignatureError`.
    Time checks use the edge's clock only when it is synchronised (`clock_synced`): an
    unsynced clock must not make every ack look expired, and commands keep their own expiry
    check in the rules (which also pauses time-based actuation while unsynced)."""

    def __init__(self, public_key: str) -> None:
        self._key = parse_public_key(public_key)
        self.kid = key_id(self._key.public_bytes(serialization.Encoding.Raw,
                                                 serialization.PublicFormat.Raw))
        self._seen: OrderedDict[str, int] = OrderedDict()  # signature → exp

    def check(self, topic_name: str, payload: bytes, *, now_ms: int, clock_synced: bool = True,
              retained: bool = False) -> Verified:
        try:
            outer = decode(payload)
        except WireError as exc:
            raise SignatureError(Refusal.MALFORMED, str(exc)) from None
        if not isinstance(outer, Signed):
            inner = outer if isinstance(outer, Ack | Command) else None
            raise SignatureError(Refusal.UNSIGNED, f"a bare {type(outer).__name__.lower()}, "
                                 "not a signed envelope", inner)
        try:
            message = decode(outer.msg.encode())
        except WireError as exc:
            raise SignatureError(Refusal.MALFORMED, f"msg.{exc}") from None
        if not isinstance(message, Ack | Command):
            raise SignatureError(Refusal.MALFORMED,
                                 f"msg: a {type(message).__name__.lower()} is not signable")
        if retained:
            raise SignatureError(Refusal.RETAINED, "a retained control message is never "
                                 "acted on", message)
        if outer.kid != self.kid:
            raise SignatureError(Refusal.UNKNOWN_KEY, f"kid {outer.kid} is not the configured "
                                 f"central key {self.kid}", message)
        try:
            self._key.verify(_unb64(outer.sig),
                             signing_input(topic_name, outer.kid, outer.ts, outer.exp,
                                           outer.msg))
        except (InvalidSignature, ValueError):
            raise SignatureError(Refusal.BAD_SIGNATURE, "the signature does not verify for "
                                 f"topic {topic_name}", message) from None
        if isinstance(message, Command) and (message.expires != outer.exp
                                             or message.issued > outer.ts + CLOCK_SKEW_MS):
            raise SignatureError(Refusal.MALFORMED, "the envelope's expiry is not the "
                                 "command's", message)
        if clock_synced:
            if now_ms >= outer.exp:
                raise SignatureError(Refusal.EXPIRED, f"expired at {outer.exp}, now {now_ms}",
                                     message)
            if outer.ts > now_ms + CLOCK_SKEW_MS:
                raise SignatureError(Refusal.NOT_YET_VALID, f"issued at {outer.ts}, later "
                                     f"than now {now_ms} + {CLOCK_SKEW_MS} ms", message)
        self._forget(now_ms if clock_synced else None)
        if outer.sig in self._seen:
            raise SignatureError(Refusal.REPLAYED, "this signed envelope was accepted before",
                                 message)
        self._seen[outer.sig] = outer.exp
        while len(self._seen) > MAX_REMEMBERED:
            self._seen.popitem(last=False)
        return Verified(message, outer)

    def unseal(self, topic_name: str, payload: bytes) -> bytes:
        """The inner payload of an edge's signed uplink envelope, or `SignatureError`:
        signature and key only (uplink replays are absorbed by the central's dedup)."""
        try:
            outer = decode(payload)
        except WireError as exc:
            raise SignatureError(Refusal.MALFORMED, str(exc)) from None
        if not isinstance(outer, Signed):
            raise SignatureError(Refusal.UNSIGNED, f"a bare {type(outer).__name__.lower()}, "
                                 "not a signed envelope")
        if outer.kid != self.kid:
            raise SignatureError(Refusal.UNKNOWN_KEY, f"kid {outer.kid} is not the edge's "
                                 f"configured key {self.kid}")
        try:
            self._key.verify(_unb64(outer.sig),
                             signing_input(topic_name, outer.kid, outer.ts, outer.exp,
                                           outer.msg))
        except (InvalidSignature, ValueError):
            raise SignatureError(Refusal.BAD_SIGNATURE, "the signature does not verify for "
                                 f"topic {topic_name}") from None
        return outer.msg.encode()

    def _forget(self, now_ms: int | None) -> None:
        if now_ms is None:
            return
        while self._seen:  # oldest first; acks expire in the order they came
            sig, exp = next(iter(self._seen.items()))
            if exp > now_ms:
                return
            del self._seen[sig]
