"""Golden frames of the municipal platform link (STANDARDS.md §4), written out by hand from
the spec: markers, lengths and trailers as literal bytes, the CRC from the standard
library's CRC-CCITT (`binascii.crc_hqx`, an implementation independent of ours), AES from
the NIST SP 800-38A vector and MD5 from the RFC 1321 test suite."""

from __future__ import annotations

import binascii
import gzip

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from protocols.errors import FrameError, WireError
from protocols.platform.codec import Encrypt, PlatformCodec, WireSettings
from protocols.platform.crypto import AesCbc, Md5Order, Padding, handshake_md5, unzip_data
from protocols.platform.framing import Frame, FrameReader, Framing, crc16_ccitt, encode_frame
from protocols.platform.ids import check_gateway_id, parse_building_id
from protocols.platform.messages import (
    Common,
    DataMessage,
    EnergyItem,
    HeartBeat,
    IdValidate,
    Message,
    MeterFunction,
    MeterReading,
    decode_xml,
)

# NIST SP 800-38A F.2.1 CBC-AES128.Encrypt, block 1
NIST_KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
NIST_IV = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
NIST_PLAIN = bytes.fromhex("6bc1bee22e409f96e93d7e117393172a")
NIST_CIPHER = bytes.fromhex("7649abac8119b246cee98e9b12e9197d")

KEY = b"0123456789abcdef"  # a city's 16-character key
COMMON = Common("330302G101", "01")
REQUEST_XML = (b'<?xml version="1.0" encoding="utf-8"?><root><common>'
               b"<building_id>330302G101</building_id><gateway_id>01</gateway_id>"
               b'<type>request</type></common><id_validate operation="request"/></root>')


def test_crc16_ccitt_check_value_and_stdlib_agree() -> None:
    assert crc16_ccitt(b"123456789") == 0x31C3  # CRC-16/XMODEM check value
    for data in (b"", b"\x00", REQUEST_XML):
        assert crc16_ccitt(data) == binascii.crc_hqx(data, 0)


def test_aes_cbc_nist_vector_and_iv_defaults_to_key() -> None:
    aes = AesCbc(NIST_KEY, NIST_IV, Padding.ZERO)  # 16 bytes: zero padding adds nothing
    assert aes.encrypt(NIST_PLAIN) == NIST_CIPHER
    assert aes.decrypt(NIST_CIPHER) == NIST_PLAIN
    enc = Cipher(algorithms.AES(KEY), modes.CBC(KEY)).encryptor()
    expected = enc.update(b"hello" + b"\x0b" * 11) + enc.finalize()
    assert AesCbc(KEY).encrypt(b"hello") == expected  # PKCS7, IV = key
    assert AesCbc(KEY).decrypt(expected) == b"hello"
    assert "0123" not in repr(AesCbc(KEY))


def test_aes_refuses_wrong_key_and_ragged_ciphertext() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        AesCbc(b"short")
    with pytest.raises(FrameError, match="AES blocks"):
        AesCbc(KEY).decrypt(b"x" * 15)
    with pytest.raises(FrameError, match="PKCS7"):
        AesCbc(b"fedcba9876543210").decrypt(AesCbc(KEY).encrypt(b"hello"))


def test_handshake_md5_both_orders_rfc1321() -> None:
    assert handshake_md5("a", "bc") == "900150983cd24fb0d6963f7d28e17f72"  # md5("abc")
    assert handshake_md5("bc", "a", Md5Order.KEY_SEQUENCE) == \
        "900150983cd24fb0d6963f7d28e17f72"
    assert handshake_md5("", "") == "d41d8cd98f00b204e9800998ecf8427e"


def test_55aa_frame_byte_for_byte() -> None:
    valid = b"\x03\x00\x00\x00" + NIST_CIPHER  # instruction 3 (data) LE + ciphertext
    crc = binascii.crc_hqx(valid, 0)
    frame = (b"\x55\xaa\x55\xaa" + b"\x14\x00\x00\x00" + valid
             + bytes([crc & 0xFF, crc >> 8]) + b"\x68\x68\x16\x16")
    assert encode_frame(Framing.A55AA, Frame(3, NIST_CIPHER)) == frame
    assert FrameReader(Framing.A55AA).feed(frame) == [Frame(3, NIST_CIPHER)]


def test_1f1f_frame_byte_for_byte() -> None:
    frame = b"\x1f\x1f\x03" + b"\x00\x00\x00\x10" + NIST_CIPHER
    assert encode_frame(Framing.B1F1F, Frame(3, NIST_CIPHER)) == frame
    assert FrameReader(Framing.B1F1F).feed(frame) == [Frame(3, NIST_CIPHER)]


def test_1f1f_handshake_request_plaintext_golden() -> None:
    codec = PlatformCodec(WireSettings(Framing.B1F1F, AesCbc(KEY), Encrypt.DATA))
    n = len(REQUEST_XML).to_bytes(4, "big")
    assert codec.encode(Message(COMMON, IdValidate("request"))) == \
        b"\x1f\x1f\x01" + n + REQUEST_XML


def test_55aa_handshake_request_encrypted_golden() -> None:
    codec = PlatformCodec(WireSettings(Framing.A55AA, AesCbc(KEY), Encrypt.ALL))
    raw = codec.encode(Message(COMMON, IdValidate("request")))
    pad = 16 - len(REQUEST_XML) % 16
    enc = Cipher(algorithms.AES(KEY), modes.CBC(KEY)).encryptor()
    valid = b"\x01\x00\x00\x00" + enc.update(REQUEST_XML + bytes([pad]) * pad) + enc.finalize()
    crc = binascii.crc_hqx(valid, 0)
    assert raw == (b"\x55\xaa\x55\xaa" + len(valid).to_bytes(4, "little") + valid
                   + crc.to_bytes(2, "little") + b"\x68\x68\x16\x16")


def _decrypt_by_hand(ct: bytes, key: bytes) -> bytes:
    dec = Cipher(algorithms.AES(key), modes.CBC(key)).decryptor()
    plain = dec.update(ct) + dec.finalize()
    return plain[:-plain[-1]]


def test_data_report_encrypted_and_zipped_golden() -> None:
    msg = Message(COMMON, DataMessage(
        "report", sequence="477", parser="yes", time="20140602091520",
        energy_items=(EnergyItem("01000", 45.2), EnergyItem("01A00", 12.8)),
        meters=(MeterReading("1", "1#总表", (MeterFunction("1", "01A00", 675.17, "192"),)),)))
    xml = ('<?xml version="1.0" encoding="utf-8"?><root><common><building_id>330302G101'
           "</building_id><gateway_id>01</gateway_id><type>report</type></common>"
           '<data operation="report"><sequence>477</sequence><parser>yes</parser>'
           "<time>20140602091520</time><energy_items><energy_item code=\"01000\">45.20"
           '</energy_item><energy_item code="01A00">12.80</energy_item></energy_items>'
           '<meters total="1"><meter id="1" name="1#总表"><function id="1" coding="01A00" '
           'error="192">675.17</function></meter></meters></data></root>').encode()
    plain = PlatformCodec(WireSettings(Framing.B1F1F, AesCbc(KEY), Encrypt.DATA))
    raw = plain.encode(msg)
    assert raw[:3] == b"\x1f\x1f\x03"
    assert int.from_bytes(raw[3:7], "big") == len(raw) - 7
    assert _decrypt_by_hand(raw[7:], KEY) == xml
    zipped = PlatformCodec(WireSettings(Framing.B1F1F, AesCbc(KEY), Encrypt.DATA,
                                        zipped=True))
    raw = zipped.encode(msg)
    assert raw[2] == 0x04
    assert gzip.decompress(_decrypt_by_hand(raw[7:], KEY)) == xml
    (back,) = zipped.reader().feed(raw)
    assert (back.common.building_id, back.common.type, back.body) == \
        ("330302G101", "report", msg.body)


@pytest.mark.parametrize("framing", list(Framing))
@pytest.mark.parametrize("encoding", ["utf-8", "gb2312", "utf-16-le"])
@pytest.mark.parametrize("zipped", [False, True])
def test_round_trip_byte_by_byte(framing: Framing, encoding: str, zipped: bool) -> None:
    """Zero padding is the hard case: UTF-16LE text and gzip trailers end in NUL bytes."""
    codec = PlatformCodec(WireSettings(framing, AesCbc(KEY, padding=Padding.ZERO),
                                       Encrypt.ALL, encoding=encoding, zipped=zipped))
    msgs = [Message(COMMON, IdValidate("sequence", sequence="12345678")),
            Message(COMMON, HeartBeat("time", time="20261204210000")),
            Message(Common("330302G101", "01", "report"),
                    DataMessage("report", "1", "yes", "20261204210000",
                                (EnergyItem("01B10", 3.5),))),
            Message(COMMON, DataMessage("report_ack", "1", ack="OK"))]
    stream = b"junk" + b"".join(codec.encode(m) for m in msgs)
    reader = codec.reader()
    got = [m for i in range(len(stream)) for m in reader.feed(stream[i:i + 1])]
    assert [m.body for m in got] == [m.body for m in msgs]
    assert [m.common.type for m in got] == ["sequence", "time", "report", "report_ack"]
    assert reader.frames.skipped == 4


def test_reader_errors_bad_crc_and_trailer() -> None:
    good = encode_frame(Framing.A55AA, Frame(2, b"abcd"))
    bad_crc = good[:-6] + bytes([good[-6] ^ 1]) + good[-5:]
    with pytest.raises(FrameError, match="CRC"):
        FrameReader(Framing.A55AA).feed(bad_crc)
    with pytest.raises(FrameError, match="trailer"):
        FrameReader(Framing.A55AA).feed(good[:-1] + b"\x00")
    with pytest.raises(FrameError, match="length"):
        FrameReader(Framing.B1F1F, max_length=10).feed(b"\x1f\x1f\x03\x00\x00\x01\x00")


def test_decode_spec_example_with_whitespace_and_refusals() -> None:
    xml = b"""<?xml version="1.0" encoding="utf-8"?>
<root>
  <common><building_id>330302G101</building_id><gateway_id>01</gateway_id><type>x</type></common>
  <data operation="continuous">
    <sequence>477</sequence><parser>yes</parser><time>20140602091520</time>
    <energy_items><energy_item code="01000">45.2</energy_item></energy_items>
  </data>
</root>"""
    msg = decode_xml(xml)
    assert isinstance(msg.body, DataMessage)
    assert (msg.element, msg.operation, msg.body.energy_items) == \
        ("data", "continuous", (EnergyItem("01000", 45.2),))
    with pytest.raises(WireError, match=r"energy_items\[0\]: not a number"):
        decode_xml(xml.replace(b">45.2<", b">abc<"))
    with pytest.raises(WireError, match="unknown operation"):
        decode_xml(xml.replace(b'"continuous"', b'"bogus"'))
    with pytest.raises(WireError, match="DOCTYPE"):
        decode_xml(b'<!DOCTYPE r [<!ENTITY a "b">]><root/>')
    with pytest.raises(WireError, match="well-formed"):
        decode_xml(b"<root><common>")
    with pytest.raises(WireError, match="md5"):
        decode_xml(REQUEST_XML.replace(b'operation="request"/>',
                                       b'operation="md5"><md5>xyz</md5></id_validate>'))


def test_data_ack_acceptance() -> None:
    assert DataMessage("report_ack", ack="OK").accepted
    assert DataMessage("reply", ack="pass").accepted
    assert not DataMessage("report_ack", ack="FAIL").accepted
    assert not DataMessage("report_ack").accepted


def test_unzip_refuses_bombs_and_garbage() -> None:
    with pytest.raises(FrameError, match="beyond"):
        unzip_data(gzip.compress(b"\x00" * 100_000), limit=1000)
    with pytest.raises(FrameError, match="inflate"):
        unzip_data(b"not gzip")
    with pytest.raises(FrameError, match="truncated"):
        unzip_data(gzip.compress(b"<root/>")[:-3])


@pytest.mark.parametrize("text", ["330302G101", "110105A001", "330302G101X0001"])
def test_building_ids_accepted(text: str) -> None:
    bid = parse_building_id(text)
    assert str(bid) == text
    assert bid.building == text[:10]


@pytest.mark.parametrize(("text", "reason"), [
    ("330302G10", "9 characters"), ("33030XG101", "division"), ("330302Z101", "type letter"),
    ("330302G1O1", "serial"), ("330302G101x0001", "characters 11-15"),
    ("330302G101X00A1", "characters 11-15")])
def test_building_ids_refused_with_reason(text: str, reason: str) -> None:
    with pytest.raises(WireError, match=reason) as info:
        parse_building_id(text, "buildings.A.building_id")
    assert info.value.field == "buildings.A.building_id"


def test_gateway_id() -> None:
    assert check_gateway_id("01") == "01"
    with pytest.raises(WireError, match="gateway"):
        check_gateway_id("0 1")


def _auth_frame(xml: bytes, kind: int = 1) -> bytes:
    return b"\x1f\x1f" + bytes([kind]) + len(xml).to_bytes(4, "big") + xml


def test_handshake_and_heartbeat_golden_1f1f() -> None:
    """The four id_validate steps and the heartbeat of STANDARDS.md §4, byte for byte, as
    "1F1F" sends them (authentication and heartbeat in clear)."""
    import hashlib

    codec = PlatformCodec(WireSettings(Framing.B1F1F, AesCbc(KEY), Encrypt.DATA))
    head = (b'<?xml version="1.0" encoding="utf-8"?><root><common><building_id>330302G101'
            b"</building_id><gateway_id>01</gateway_id>")
    sequence = (head + b'<type>sequence</type></common><id_validate operation="sequence">'
                b"<sequence>12345678</sequence></id_validate></root>")
    digest = hashlib.md5(b"12345678" + KEY).hexdigest()  # md5(sequence + key)
    md5 = (head + b'<type>md5</type></common><id_validate operation="md5"><md5>'
           + digest.encode() + b"</md5></id_validate></root>")
    result = (head + b'<type>result</type></common><id_validate operation="result">'
              b"<result>pass</result></id_validate></root>")
    notify = head + b'<type>notify</type></common><heart_beat operation="notify"/></root>'
    beat = (head + b'<type>time</type></common><heart_beat operation="time">'
            b"<time>20261204210000</time></heart_beat></root>")
    # collector -> platform: what we send
    assert codec.encode(Message(COMMON, IdValidate("request"))) == _auth_frame(REQUEST_XML)
    assert handshake_md5("12345678", KEY.decode()) == digest
    assert codec.encode(Message(COMMON, IdValidate("md5", md5=digest))) == _auth_frame(md5)
    assert codec.encode(Message(COMMON, HeartBeat("notify"))) == _auth_frame(notify, 2)
    # platform -> collector: what we read
    got = codec.reader().feed(_auth_frame(sequence) + _auth_frame(result)
                              + _auth_frame(beat, 2))
    assert [m.body for m in got] == [IdValidate("sequence", sequence="12345678"),
                                     IdValidate("result", result="pass"),
                                     HeartBeat("time", time="20261204210000")]
