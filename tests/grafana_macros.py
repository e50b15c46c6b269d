"""Grafana's InfluxQL macro and variable expansion, as its InfluxDB datasource does it, for
running dashboard and alert queries against a real InfluxDB in tests.

- `$timeFilter` → `time >= <from>ms and time <= <to>ms`
- `$__interval_ms` → the interval in ms; `$__interval` → the same as Grafana prints it
  (`10m`, `1h`, `30s`): the range ÷ max data points, rounded up to a "nice" interval and
  never below the datasource's `timeInterval` (1m, deploy/grafana/provisioning/)
- `$name` / `${name}` of a template variable: the value; inside a regex `/…/` a value is
  regex-escaped and several values become `(a|b)`; the All value `.*` is left as is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

NICE_MS = (1_000, 5_000, 10_000, 15_000, 30_000, 60_000, 300_000, 600_000, 900_000,
           1_800_000, 3_600_000, 10_800_000, 21_600_000, 43_200_000, 86_400_000,
           604_800_000)
MIN_INTERVAL_MS = 60_000  # the datasource's timeInterval


def interval_ms(from_ms: int, to_ms: int, max_points: int = 1000) -> int:
    raw = max((to_ms - from_ms) // max_points, MIN_INTERVAL_MS)
    return next((n for n in NICE_MS if n >= raw), NICE_MS[-1])


def format_interval(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _regex_value(values: Sequence[str]) -> str:
    if list(values) == [".*"]:
        return ".*"
    escaped = [re.sub(r"([\\^$.|?*+()\[\]{}/-])", r"\\\1", v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def _literal(text: str) -> str:
    """`text` as a `re.sub` replacement taken literally."""
    return text.replace("\\", "\\\\")


def expand(query: str, *, from_ms: int, to_ms: int,
           variables: Mapping[str, Sequence[str]]) -> str:
    step = interval_ms(from_ms, to_ms)
    out = query.replace("$timeFilter", f"time >= {from_ms}ms and time <= {to_ms}ms")
    out = out.replace("$__interval_ms", str(step)).replace("$__interval",
                                                           format_interval(step))

    def in_regex(match: re.Match[str]) -> str:
        body = match.group(0)
        for name, values in variables.items():
            value = _regex_value(values)
            body = re.sub(rf"\$\{{{name}(?::regex)?\}}|\${name}\b", _literal(value), body)
        return body

    out = re.sub(r"=~ /[^/]*/|!~ /[^/]*/", in_regex, out)
    for name, values in variables.items():
        plain = ",".join(values)
        out = re.sub(rf"\$\{{{name}\}}|\${name}\b", _literal(plain), out)
    if "$" in re.sub(r"[=!]~ /[^/]*/", "", out):
        raise ValueError(f"unexpanded macro or variable in {out!r}")
    return out
