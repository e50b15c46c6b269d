"""What the SQLite `Store` and the PostgreSQL `PgStore` share below the port: how records
are encoded in their tables and decoded again. Adapter-private; callers use
central/storeport.py.
"""

from __future__ import annotations

import json

from central.storeport import CommandResult, event_data

MAX_DEAD_LETTER_BYTES = 64 * 1024  # longer payloads are truncated; `size` keeps the original


def command_result(raw: str, ts: int, ids: frozenset[str]) -> CommandResult | None:
    """The answer in one `command.result` event's data if it names one of `ids`. Decoded in
    Python by both stores (PostgreSQL keeps `data` as text, json_extract is SQLite's)."""
    data = event_data(raw)
    if data is None or not isinstance(data.get("id"), str) or data["id"] not in ids:
        return None
    status, detail = data.get("status"), data.get("detail")
    return CommandResult(
        id=data["id"], status=status if isinstance(status, str) else None,
        detail=None if detail is None else detail if isinstance(detail, str)
        else json.dumps(detail, ensure_ascii=False), ts=int(ts))


def flag_list(flags: str | None) -> tuple[str, ...]:
    return tuple(f for f in str(flags).split(",") if f) if flags else ()
