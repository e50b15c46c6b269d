"""Working space for the edge outbox on a disk that fills up (shared RELIABILITY.md
scenario 11): the free-space measure, the reserve file, and seq ranges of dropped records.

Pure helpers and small file operations; the policy lives in `edge.outbox.Outbox`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PAGE = 4096
_CHUNK = 64 * 1024


def fs_free_bytes(directory: Path) -> int:
    """Bytes an unprivileged process can still write on the filesystem of `directory`."""
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


MIN_FREE_DEFAULT = 4 << 20
RESERVE_DEFAULT = 1 << 20


def default_headroom(directory: Path) -> tuple[int, int]:
    """(min_free_bytes, reserve_bytes) when not configured: 4 MiB and 1 MiB, or an eighth
    and a sixteenth of a smaller volume (a 2 MiB volume keeps 256 KiB and 128 KiB), so the
    defaults never refuse everything on a small partition."""
    try:
        st = os.statvfs(directory)
        total = st.f_blocks * st.f_frsize
    except OSError:
        return MIN_FREE_DEFAULT, RESERVE_DEFAULT
    return (max(64 << 10, min(MIN_FREE_DEFAULT, total // 8)),
            max(0, min(RESERVE_DEFAULT, total // 16)))


class ReserveFile:
    """A preallocated file of `size` bytes, released (deleted) to give its space back to
    the outbox when the disk is full, and made again when the space is back."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size

    @property
    def held(self) -> bool:
        try:
            return self.size > 0 and self.path.stat().st_size >= self.size
        except OSError:
            return False

    def make(self) -> bool:
        """Write `size` bytes (zeros, fsynced: a sparse file would reserve nothing).
        Returns False, leaving no partial file, if the disk has no room for it."""
        if self.size <= 0 or self.held:
            return self.size <= 0 or self.held
        zeros = bytes(_CHUNK)
        try:
            with self.path.open("wb") as f:
                left = self.size
                while left > 0:
                    n = min(left, _CHUNK)
                    f.write(zeros[:n])
                    left -= n
                f.flush()
                os.fsync(f.fileno())
        except OSError:
            self.release()
            return False
        return True

    def release(self) -> bool:
        """Delete the reserve; True if there was one."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        except OSError:
            return False
        return True


def add_range(ranges: list[list[int]], first: int, last: int) -> None:
    """Append [first, last] to sorted, disjoint `ranges`, merging with the last one when
    they touch."""
    if first > last:
        return
    if ranges and first <= ranges[-1][1] + 1:
        ranges[-1][1] = max(ranges[-1][1], last)
    else:
        ranges.append([first, last])


def range_count(ranges: list[list[int]]) -> int:
    return sum(b - a + 1 for a, b in ranges)


@dataclass
class DiskStatus:
    """What the edge reports out of band while the outbox is under disk pressure.

    `version` grows with every change, so the uplink publishes each change once."""

    pressure: bool = False
    since_ms: int = 0
    until_ms: int | None = None
    free_bytes: int = 0
    min_free_bytes: int = 0
    dropped_seqs: list[list[int]] = field(default_factory=list)
    reason: str = ""
    version: int = 0

    @property
    def dropped_records(self) -> int:
        return range_count(self.dropped_seqs)

    def data(self, depth: int) -> dict[str, object]:
        out: dict[str, object] = {
            "state": "raised" if self.pressure else "cleared",
            "disk_pressure": self.pressure, "since_ts": self.since_ms,
            "free_bytes": self.free_bytes, "min_free_bytes": self.min_free_bytes,
            "dropped_records": self.dropped_records,
            "dropped_seqs": [list(r) for r in self.dropped_seqs],
            "outbox_depth": depth, "reason": self.reason}
        if self.until_ms is not None:
            out["until_ts"] = self.until_ms
        return out


def wal_limits(min_free_bytes: int) -> tuple[int, int]:
    """(wal_autocheckpoint pages, journal_size_limit bytes): the WAL stays well inside the
    headroom the high-water mark keeps free."""
    pages = max(16, min(1000, min_free_bytes // 2 // PAGE))
    return pages, max(PAGE * 16, min_free_bytes // 2)
