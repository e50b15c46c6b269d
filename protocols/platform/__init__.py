"""The municipal energy platform's data-transfer protocol (MOHURD 2008 数据传输技术导则 as
cities implement it; STANDARDS.md §4), sans-IO.

    framing    the two framings: "55AA" (uint32 LE length, CRC16-CCITT, 68 68 16 16 trailer)
               and "1F1F" (type byte, uint32 BE length); a streaming `FrameReader`
    crypto     AES-128-CBC with the city's key and IV (PKCS7 or zero padding), the
               id_validate MD5, gzip for zipped data
    messages   the XML messages (id_validate, heart_beat, data) and their dispatch on
               element name plus `operation`
    ids        the national building id (6-digit division + type letter + 3-digit serial,
               optionally the 5-character city extension)
    codec      a city's wire settings put together: message -> frame bytes and back

Everything here is pure: no sockets, no clocks, no files. The central's uploader and any
test receiver wire it to I/O. Errors are `protocols.errors.FrameError` (protocol
`platform`) for bytes that are not a frame or cannot be decrypted, and `WireError` for a
well-framed message whose XML or fields are wrong.
"""
