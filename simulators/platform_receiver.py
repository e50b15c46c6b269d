"""`greenguard sim platform`: a test receiver that plays the municipal energy platform.

Written from the guideline (STANDARDS.md §4) on its own: its frame parser, CRC, decryption
and XML reading share no code with the central's uploader or `protocols.platform`, so a
misreading of the guideline in one shows up as a disagreement with the other. It reads the
same city YAML for the settings a real platform would have agreed with the collector
(framing, key, IV, padding, which frames are encrypted, MD5 order, encoding).

Per connection it plays the platform: id_validate (a random 8-digit sequence, checks the
MD5), heart_beat (answers its clock), data (decrypts, unzips, checks the schema, stores
the items, answers `report_ack` / `continuous_ack` with OK). Data before a passed login is
refused. `mode` makes it misbehave, for fault tests and demos:

    normal    as above
    refuse    data answered with <ack>FAIL</ack>, nothing stored
    fail      logins answered with result fail
    stall     reads everything, handles and answers nothing (a hung platform)
    drop      closes the connection on every data frame, before storing it
    garbage   answers every frame with a frame head and a random body (handles nothing)

What it accepted is in a SQLite file (`received`: one row per accepted data message) and
in `events` (logins, heartbeats, refusals, schema errors), so tests can count.
"""

from __future__ import annotations

import argparse
import asyncio
import binascii
import contextlib
import enum
import hashlib
import json
import os
import re
import secrets
import sqlite3
import struct
import time
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


class Mode(enum.StrEnum):
    NORMAL = "normal"
    REFUSE = "refuse"
    FAIL = "fail"
    STALL = "stall"
    DROP = "drop"
    GARBAGE = "garbage"


@dataclass(frozen=True)
class ReceiverSettings:
    framing: str  # "55AA" | "1F1F"
    key_text: str = ""
    key: bytes = b""
    iv: bytes = b""
    padding: str = "pkcs7"  # | "zero"
    encrypt: str = "data"  # all | data | none
    md5_order: str = "sequence+key"
    encoding: str = "utf-8"

    @classmethod
    def from_city(cls, path: Path, env: dict[str, str] | None = None,
                  key_text: str | None = None) -> ReceiverSettings:
        """The settings of the city YAML at `path`; the key from `key_text` if given, else
        from the file or variable the YAML names."""
        doc: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        enc: dict[str, Any] = doc.get("encryption") or {}
        environ = os.environ if env is None else env
        if key_text is not None:
            pass
        elif enc.get("key_file"):
            kf = Path(enc["key_file"])
            key_text = (kf if kf.is_absolute() else path.parent / kf).read_text(
                encoding="utf-8").strip()
        elif enc.get("key_env"):
            key_text = environ.get(enc["key_env"], "").strip()
        else:
            key_text = ""
        key = key_text.encode() if len(key_text.encode()) == 16 else (
            bytes.fromhex(key_text) if len(key_text) == 32 else b"")
        iv_text = str(enc.get("iv", "key"))
        iv = key if iv_text == "key" else bytes.fromhex(iv_text)
        return cls(framing=str(doc["framing"]), key_text=key_text, key=key, iv=iv,
                   padding=str(enc.get("padding", "pkcs7")),
                   encrypt=str(enc.get("encrypt", "data")),
                   md5_order=str(doc.get("md5_order", "sequence+key")),
                   encoding=str(doc.get("encoding", "utf-8")))


# -- the wire, read and written here on its own -----------------------------------------

def _frames_55aa(buf: bytearray) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    while True:
        at = buf.find(b"\x55\xaa\x55\xaa")
        if at < 0:
            del buf[:max(0, len(buf) - 3)]
            return out
        del buf[:at]
        if len(buf) < 8:
            return out
        n = int.from_bytes(buf[4:8], "little")
        if n < 4 or n > 1 << 22:
            raise ValueError(f"length {n}")
        if len(buf) < 8 + n + 6:
            return out
        valid = bytes(buf[8:8 + n])
        crc = int.from_bytes(buf[8 + n:10 + n], "little")
        tail = bytes(buf[10 + n:14 + n])
        del buf[:14 + n]
        if tail != b"\x68\x68\x16\x16" or crc != binascii.crc_hqx(valid, 0):
            raise ValueError("bad trailer or CRC")
        out.append((int.from_bytes(valid[:4], "little"), valid[4:]))


def _frames_1f1f(buf: bytearray) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    while True:
        at = buf.find(b"\x1f\x1f")
        if at < 0:
            del buf[:max(0, len(buf) - 1)]
            return out
        del buf[:at]
        if len(buf) < 7:
            return out
        n = int.from_bytes(buf[3:7], "big")
        if n > 1 << 22:
            raise ValueError(f"length {n}")
        if len(buf) < 7 + n:
            return out
        out.append((buf[2], bytes(buf[7:7 + n])))
        del buf[:7 + n]


def _frame(framing: str, kind: int, body: bytes) -> bytes:
    if framing == "55AA":
        valid = struct.pack("<I", kind) + body
        return (b"\x55\xaa\x55\xaa" + struct.pack("<I", len(valid)) + valid
                + struct.pack("<H", binascii.crc_hqx(valid, 0)) + b"\x68\x68\x16\x16")
    return b"\x1f\x1f" + bytes([kind]) + struct.pack(">I", len(body)) + body


class _Crypto:
    def __init__(self, s: ReceiverSettings) -> None:
        self.s = s

    def encrypted(self, kind: int) -> bool:
        return self.s.encrypt == "all" or (self.s.encrypt == "data" and kind in (3, 4))

    def open(self, kind: int, body: bytes) -> bytes:
        if self.encrypted(kind):
            d = Cipher(algorithms.AES(self.s.key), modes.CBC(self.s.iv)).decryptor()
            body = d.update(body) + d.finalize()
            if self.s.padding == "pkcs7":
                if not 1 <= body[-1] <= 16:
                    raise ValueError("bad padding")
                body = body[:-body[-1]]
            elif kind != 4:  # zipped data keeps its padding: the inflater stops at the end
                body = body.rstrip(b"\x00")
                if len(body) % 2 and self.s.encoding.lower().startswith("utf-16"):
                    body += b"\x00"
        if kind == 4:
            inflater = zlib.decompressobj(wbits=31)  # gzip
            body = inflater.decompress(body, 1 << 24)
            if not inflater.eof:
                raise ValueError("zipped data truncated or too large")
        return body

    def seal(self, kind: int, plain: bytes) -> bytes:
        if not self.encrypted(kind):
            return plain
        if self.s.padding == "pkcs7":
            n = 16 - len(plain) % 16
            plain += bytes([n]) * n
        else:
            plain += b"\x00" * (-len(plain) % 16)
        e = Cipher(algorithms.AES(self.s.key), modes.CBC(self.s.iv)).encryptor()
        return e.update(plain) + e.finalize()


class SchemaError(ValueError):
    pass


_BUILDING = re.compile(r"^[0-9]{6}[A-H][0-9]{3}([A-Z0-9][0-9]{4})?$")


def _parse(xml: bytes, encoding: str) -> tuple[dict[str, str], ET.Element]:
    text = xml.decode(encoding)
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)
    root = ET.fromstring(text)
    common = root.find("common")
    if root.tag != "root" or common is None:
        raise SchemaError("no <root><common>")
    c = {e.tag: (e.text or "").strip() for e in common}
    if not _BUILDING.match(c.get("building_id", "")):
        raise SchemaError(f"building_id {c.get('building_id')!r}")
    body = [e for e in root if e.tag != "common"]
    if len(body) != 1:
        raise SchemaError("one message element expected")
    return c, body[0]


def _xml(common: dict[str, str], inner: str, encoding: str) -> bytes:
    head = (f"<common><building_id>{common.get('building_id', '')}</building_id>"
            f"<gateway_id>{common.get('gateway_id', '')}</gateway_id></common>")
    return (f'<?xml version="1.0" encoding="{encoding}"?><root>{head}{inner}</root>'
            ).encode(encoding)


# -- the receiver ------------------------------------------------------------------------

SCHEMA = """
CREATE TABLE IF NOT EXISTS received (id INTEGER PRIMARY KEY, ts REAL NOT NULL,
    building_id TEXT NOT NULL, gateway_id TEXT NOT NULL, operation TEXT NOT NULL,
    time TEXT NOT NULL, sequence TEXT NOT NULL, items TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, ts REAL NOT NULL,
    building_id TEXT NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL);
"""


@dataclass
class _Conn:
    common: dict[str, str] = field(default_factory=dict)
    sequence: str = ""
    passed: bool = False


class PlatformReceiver:
    def __init__(self, settings: ReceiverSettings, db: str | Path, *,
                 host: str = "127.0.0.1", port: int = 0, mode: Mode = Mode.NORMAL,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.crypto = _Crypto(settings)
        self.host = host
        self.port = port
        self.mode = mode
        self.clock = clock
        self.db = sqlite3.connect(str(db), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=OFF")  # a test tool: speed over durability
        self.db.executescript(SCHEMA)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> PlatformReceiver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for w in list(self._writers):
            w.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self.db.close()

    def drop_all(self) -> None:
        """Close every open connection (a platform restart)."""
        for w in list(self._writers):
            w.close()

    def _event(self, building: str, kind: str, detail: str = "") -> None:
        self.db.execute("INSERT INTO events (ts, building_id, kind, detail) VALUES (?,?,?,?)",
                        (self.clock(), building, kind, detail))

    def received(self) -> list[tuple[str, str, str, dict[str, float]]]:
        """(building_id, gateway_id, time, items) of every accepted data message."""
        rows = self.db.execute("SELECT building_id, gateway_id, time, items FROM received "
                               "ORDER BY id").fetchall()
        return [(b, g, t, json.loads(i)) for b, g, t, i in rows]

    def event_counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT kind, COUNT(*) FROM events GROUP BY kind"))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        state = _Conn()
        buf = bytearray()
        split = _frames_55aa if self.settings.framing == "55AA" else _frames_1f1f
        try:
            while data := await reader.read(65536):
                buf += data
                try:
                    frames = split(buf)
                except ValueError as exc:
                    self._event("", "bad_frame", str(exc))
                    return
                for kind, body in frames:
                    if self.mode is Mode.STALL:
                        self._event(state.common.get("building_id", ""), "stalled")
                        continue  # hung: reads, handles nothing, answers nothing
                    if self.mode is Mode.GARBAGE:
                        self._event(state.common.get("building_id", ""), "garbage_sent")
                        answer: bytes | None = self._garbage()
                    else:
                        answer = self._handle(state, kind, body)
                    if answer is None:
                        return  # drop
                    writer.write(answer)
                    await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def _garbage(self) -> bytes:
        """A frame head with a random body: bad CRC (55AA) or undecryptable data (1F1F)."""
        junk = secrets.token_bytes(16)
        if self.settings.framing == "55AA":
            return (b"\x55\xaa\x55\xaa" + (20).to_bytes(4, "little") + b"\x03\x00\x00\x00"
                    + junk + secrets.token_bytes(2) + b"\x68\x68\x16\x16")
        return b"\x1f\x1f\x03" + (16).to_bytes(4, "big") + junk

    def _reply(self, state: _Conn, kind: int, inner: str) -> bytes:
        plain = _xml(state.common, inner, self.settings.encoding)
        return _frame(self.settings.framing, kind, self.crypto.seal(kind, plain))

    def _handle(self, state: _Conn, kind: int, body: bytes) -> bytes | None:
        """The answer frame, or None to drop the connection."""
        try:
            common, el = _parse(self.crypto.open(kind, body), self.settings.encoding)
        except (ValueError, ET.ParseError, EOFError, OSError) as exc:
            self._event("", "schema_error", f"{type(exc).__name__}: {exc}")
            return None
        state.common = common
        building = common["building_id"]
        op = el.get("operation")
        if el.tag == "id_validate" and op == "request":
            state.sequence = f"{secrets.randbelow(10**8):08d}"
            return self._reply(state, 1, '<id_validate operation="sequence"><sequence>'
                               f"{state.sequence}</sequence></id_validate>")
        if el.tag == "id_validate" and op == "md5":
            s = self.settings
            text = (state.sequence + s.key_text if s.md5_order == "sequence+key"
                    else s.key_text + state.sequence)
            expected = hashlib.md5(text.encode(s.encoding), usedforsecurity=False).hexdigest()
            got = (el.findtext("md5") or "").strip().lower()
            state.passed = bool(state.sequence) and got == expected and self.mode is not Mode.FAIL
            self._event(building, "login" if state.passed else "login_failed")
            result = "pass" if state.passed else "fail"
            return self._reply(state, 1, '<id_validate operation="result"><result>'
                               f"{result}</result></id_validate>")
        if el.tag == "heart_beat" and op == "notify":
            self._event(building, "heartbeat")
            now = datetime.fromtimestamp(self.clock()).strftime("%Y%m%d%H%M%S")
            return self._reply(state, 2, f'<heart_beat operation="time"><time>{now}</time>'
                               "</heart_beat>")
        if el.tag == "data" and op in ("report", "continuous"):
            if self.mode is Mode.DROP:
                self._event(building, "dropped")
                return None
            seq = (el.findtext("sequence") or "").strip()
            ok, why, items = self._check_data(state, el)
            if ok and self.mode is Mode.REFUSE:
                ok, why = False, "refusing (mode refuse)"
            if ok:
                self.db.execute(
                    "INSERT INTO received (ts, building_id, gateway_id, operation, time, "
                    "sequence, items) VALUES (?,?,?,?,?,?,?)",
                    (self.clock(), building, common.get("gateway_id", ""), op,
                     (el.findtext("time") or "").strip(), seq, json.dumps(items)))
            else:
                self._event(building, "refused", why)
            return self._reply(state, 3, f'<data operation="{op}_ack"><sequence>{seq}'
                               f"</sequence><ack>{'OK' if ok else 'FAIL'}</ack></data>")
        self._event(building, "unknown", f"{el.tag} {op}")
        return None

    @staticmethod
    def _check_data(state: _Conn, el: ET.Element) -> tuple[bool, str, dict[str, float]]:
        if not state.passed:
            return False, "data before a passed login", {}
        t = (el.findtext("time") or "").strip()
        if not re.fullmatch(r"[0-9]{14}", t):
            return False, f"time {t!r}", {}
        items: dict[str, float] = {}
        for it in el.iterfind("energy_items/energy_item"):
            code = it.get("code") or ""
            if not re.fullmatch(r"[0-9]{2}[0-9A-Z]{3}", code) or code in items:
                return False, f"energy_item code {code!r}", {}
            try:
                items[code] = float((it.text or "").strip())
            except ValueError:
                return False, f"energy_item {code} value {it.text!r}", {}
        if not items:
            return False, "no energy_items", {}
        return True, "", items


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["platform"], help="platform: the test receiver")
    parser.add_argument("--city", type=Path, required=True, help="the city YAML")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: the "
                        "city's platform.port)")
    parser.add_argument("--db", type=Path, default=Path("platform-received.sqlite"),
                        help="where received data and events are recorded")
    parser.add_argument("--mode", choices=[m.value for m in Mode], default="normal")
    parser.add_argument("--key-file", type=Path, help="the shared key (default: the file or "
                        "variable the city YAML names)")


async def _serve_forever(args: argparse.Namespace) -> None:
    doc = yaml.safe_load(args.city.read_text(encoding="utf-8"))
    port = args.port or int(doc["platform"]["port"])
    key = (args.key_file.read_text(encoding="utf-8").strip() if args.key_file is not None
           else None)
    settings = ReceiverSettings.from_city(args.city, key_text=key)
    async with PlatformReceiver(settings, args.db, host=args.host, port=port,
                                mode=Mode(args.mode)) as rx:
        print(f"platform test receiver ({settings.framing}, mode {rx.mode.value}) on "
              f"{args.host}:{rx.port}, recording to {args.db} (Ctrl-C to stop)", flush=True)
        await asyncio.Event().wait()


def run(args: argparse.Namespace) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(args))
    return 0
