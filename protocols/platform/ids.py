"""The national building id of the municipal platforms (STANDARDS.md §4, Identifiers).

    330302 G 101          10 characters: 6-digit administrative-division code (行政区划代码),
    ^^^^^^ ^ ^^^          building-type letter A-H, 3-digit serial in the division
    330302 G 101 X 0001   15 characters, the extended form some cities issue (the issue's
                          "6+1+3+1+4"): the 10-character id plus one character [A-Z0-9] and
                          four digits, kept verbatim (cities use it for a sub-building or a
                          collector; the first 10 characters are always the building)

Type letters: A office, B mall, C hotel, D culture and education (schools), E healthcare,
F sports, G mixed, H other. The gateway id (collector number) is not validated beyond
being 1-16 letters or digits: the guideline does not fix it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from protocols.errors import WireError

TYPE_LETTERS = {"A": "office", "B": "mall", "C": "hotel", "D": "culture and education",
                "E": "healthcare", "F": "sports", "G": "mixed", "H": "other"}
_GATEWAY = re.compile(r"^[A-Za-z0-9]{1,16}$")


@dataclass(frozen=True)
class BuildingId:
    division: str
    type_letter: str
    serial: str
    extension: str = ""  # "" or 1 character + 4 digits

    def __str__(self) -> str:
        return f"{self.division}{self.type_letter}{self.serial}{self.extension}"

    @property
    def building(self) -> str:
        """The 10-character national building id, without the city's extension."""
        return f"{self.division}{self.type_letter}{self.serial}"


def parse_building_id(text: str, field: str = "building_id") -> BuildingId:
    """The id, or `WireError(field, text, reason)` saying which part is wrong."""
    if not isinstance(text, str):
        raise WireError(field, text, "a building id is a text of 10 or 15 characters")
    if len(text) not in (10, 15):
        raise WireError(field, text, f"{len(text)} characters; a building id has 10 "
                        "(6-digit division + type letter + 3-digit serial) or 15 (plus "
                        "1 character and 4 digits)")
    division, letter, serial, ext = text[:6], text[6], text[7:10], text[10:]
    if not (division.isascii() and division.isdigit()):
        raise WireError(field, text, f"characters 1-6 {division!r} must be the 6-digit "
                        "administrative-division code")
    if letter not in TYPE_LETTERS:
        raise WireError(field, text, f"character 7 {letter!r} must be a building-type "
                        "letter A-H (A office, D culture and education, E healthcare, ...)")
    if not (serial.isascii() and serial.isdigit()):
        raise WireError(field, text, f"characters 8-10 {serial!r} must be a 3-digit serial")
    if ext and not (re.fullmatch(r"[A-Z0-9]", ext[0]) and ext[1:].isascii()
                    and ext[1:].isdigit()):
        raise WireError(field, text, f"characters 11-15 {ext!r} must be one letter or digit "
                        "and 4 digits")
    return BuildingId(division, letter, serial, ext)


def check_gateway_id(text: str, field: str = "gateway_id") -> str:
    if not isinstance(text, str) or not _GATEWAY.fullmatch(text):
        raise WireError(field, text, "a gateway id is 1-16 letters or digits (typically 2 "
                        "digits, e.g. '01')")
    return text
