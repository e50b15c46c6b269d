"""Full-width punctuation where YAML needs ASCII: found, placed and named.

A configuration typed with a Chinese input method easily gets `：` for `:`, `，` for `,` or
`［` for `[`. YAML then either refuses the file with a message about something else
("could not find expected ':'") or reads a different structure than was meant, and the
error names a field that looks right. `structural_fullwidth(text)` finds those characters
where YAML syntax is expected, so the error can say: line 12, column 16, `：` (U+FF1A)
should be the ASCII `:`.

Full-width characters inside values are normal (`name: 示范中学（东校区）`, `教学楼，一层`)
and are not reported: only a `：` before any ASCII `:` on its line (where the key ends), the
full-width brackets, braces and commas on a line that opens a flow collection, and a
full-width `－`, `＃` or ideographic space that starts a line's content. Pure; no YAML parser.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

ASCII_FOR: dict[str, str] = {
    "：": ":", "，": ",", "［": "[", "］": "]", "｛": "{", "｝": "}", "－": "-", "＃": "#",
    "　": " ", "“": '"', "”": '"', "‘": "'", "’": "'", "＂": '"', "＇": "'", "、": ",",
}
_FLOW = set("[{［｛")
_LINE_START = set("－＃　")


@dataclass(frozen=True)
class FullWidth:
    line: int  # 1-based, as editors count
    column: int  # 1-based
    char: str

    @property
    def ascii(self) -> str:
        return ASCII_FOR[self.char]

    @property
    def where(self) -> str:
        return f"line {self.line}, column {self.column}"

    @property
    def problem(self) -> str:
        name = unicodedata.name(self.char, "")
        return (f"full-width '{self.char}' (U+{ord(self.char):04X} {name}) where YAML needs "
                f"the ASCII '{self.ascii}'")

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


def _unquoted(line: str) -> list[tuple[int, str]]:
    """(column index, char) of the line outside ASCII-quoted scalars and comments."""
    out: list[tuple[int, str]] = []
    quote: str | None = None
    for i, c in enumerate(line):
        if quote:
            if c == quote:
                quote = None
            continue
        if c in "'\"" and (i == 0 or line[i - 1] in " \t:[{,-"):
            quote = c
            continue
        if c == "#" and (i == 0 or line[i - 1] in " \t"):
            break
        out.append((i, c))
    return out


def structural_fullwidth(text: str) -> list[FullWidth]:
    """Full-width characters standing where YAML expects its ASCII syntax, in text order."""
    found: list[FullWidth] = []
    for n, line in enumerate(text.splitlines(), start=1):
        chars = _unquoted(line)
        content = [(i, c) for i, c in chars if c not in " \t"]
        if content and content[0][1] in _LINE_START:
            found.append(FullWidth(n, content[0][0] + 1, content[0][1]))
        seen_colon = False
        flow = False
        for i, c in chars:
            if c == ":":
                seen_colon = True
            elif c == "：" and not seen_colon:
                found.append(FullWidth(n, i + 1, c))
                seen_colon = True  # one key separator per line
            if c in _FLOW:
                flow = True
            if flow and c in "，［］｛｝、" and not any(
                    f.line == n and f.column == i + 1 for f in found):
                found.append(FullWidth(n, i + 1, c))
        # A value opened with a full-width quote right after the key's colon.
        for i, c in chars:
            if c in "“‘＂＇" and line[:i].rstrip().endswith((":", "：", "-")):
                found.append(FullWidth(n, i + 1, c))
    return found
