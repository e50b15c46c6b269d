"""Every `greenguard …` command and `make demo ARGS="…"` the user docs show names
subcommands and flags the parser has: a renamed or removed flag fails here, not for a reader.

Only the words are checked (subcommand chain, `--flags` at the level they are given), not the
values: the commands that are cheap to run are run by their own tests (the README block,
commissioning, rules)."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from simulators.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
PAGES = ("README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").rglob("*.md")))


def _words(command: str) -> list[str]:
    """The argv after `greenguard`, without placeholders' decoration: `[--device ID …]` →
    `--device ID`, `(--host H | --serial PORT)` → both flags, `…` dropped."""
    command = re.sub(r"\\\|", " ", command)  # `\|` inside a table cell
    command = re.sub(r"[\[\]()|…]", " ", command)
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        words = command.split()
    return [w for w in words if w not in {"&", ">", "<", "..."}
            and not w.startswith((">", "2>"))]


def documented_commands() -> list[tuple[str, list[str]]]:
    found: list[tuple[str, list[str]]] = []
    for page in PAGES:
        text = (REPO / page).read_text(encoding="utf-8")
        # Inline code (may wrap a line) and code-block lines.
        spans = [s.replace("\n", " ") for s in re.findall(r"(?<!`)`([^`]+)`(?!`)", text)]
        for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.DOTALL):
            spans += block.splitlines()
        for span in spans:
            span = span.strip().removeprefix("$ ").removeprefix(".venv/bin/")
            if span.startswith("greenguard "):
                cut = span.split(" > ")[0].split(" 2>")[0]
                found.append((f"{page}: {span}", _words(cut.removeprefix("greenguard "))))
            demo = re.match(r'make demo ARGS="([^"]*)"', span)
            if demo:
                found.append((f"{page}: {span}", ["demo", *_words(demo.group(1))]))
    return found


COMMANDS = documented_commands()


def test_the_docs_show_commands() -> None:
    assert len(COMMANDS) > 100
    assert any(words[:2] == ["edge", "scan"] for _, words in COMMANDS)
    assert any(words[0] == "demo" and "--start" in words for _, words in COMMANDS)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings}


@pytest.mark.parametrize(("where", "words"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_every_documented_flag_exists(where: str, words: list[str]) -> None:
    top, _ = build_parser(words)
    chain = [top]
    level = _subparsers(top)
    for word in words:
        if word.startswith("--"):
            flag = word.split("=", 1)[0]
            assert any(flag in _options(p) for p in chain), (
                f"{where}: {flag} is not an option of "
                f"{' '.join(p.prog for p in chain[-1:])}")
        elif word in level:
            chain.append(level[word])
            level = _subparsers(level[word])
