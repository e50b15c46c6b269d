"""Bad input as `ConfigError` problems, (field path, value, reason): strict YAML reading (a
duplicate key or a syntax error names its line) and pydantic errors flattened, for the
institution file, the code tables and the process settings alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from central.errors import ConfigError, Problem
from protocols.fullwidth import structural_fullwidth


def problems_from(exc: ValidationError) -> list[Problem]:
    """Flatten pydantic errors into (field path, value, reason) with `a[2].b` paths."""
    problems: list[Problem] = []
    for err in exc.errors():
        ctx = err.get("ctx") or {}
        if err["type"] == "cross_field" and "problems" in ctx:
            problems.extend(ctx["problems"])
            continue
        path = ""
        for part in err["loc"]:
            if part == "[key]":  # pydantic's marker for a dict key; the key is already there
                continue
            path += f"[{part}]" if isinstance(part, int) and path else (
                f".{part}" if path else str(part))
        reason = err["msg"].removeprefix("Value error, ")
        problems.append((path or "<root>", err.get("input"), reason))
    return problems


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one)."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", mark)
        out[key] = loader.construct_object(value_node, deep=True)
    return out


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def read_yaml(path: Path) -> Any:
    """Parse a YAML file; syntax errors become a `ConfigError` with line and column."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, [("<file>", source, f"cannot read: {exc}")]) from None
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [*fullwidth_problems(text),
                                   ("<yaml>", where, f"YAML syntax error: {problem}")]) from None


def fullwidth_problems(text: str) -> list[tuple[str, object, str]]:
    """Full-width punctuation where YAML syntax belongs (protocols/fullwidth.py), as
    problems that come first: they are usually the cause of the others."""
    return [(f"<yaml> {f.where}", f.char, f.problem) for f in structural_fullwidth(text)]
