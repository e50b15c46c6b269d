"""The edge outbox on a real, small, full volume (a tmpfs; root only, skipped otherwise).

Unlike the reliability scenario, the disk here is filled to the last byte by *another*
file, so SQLite really hits ENOSPC: acknowledgements must still delete rows (the reserve
is released), and appends must be refused by seq, never raise.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from edge.outbox import Outbox
from protocols.wire import Sample
from tests.faults.harness import small_disk


def fill(path: Path) -> None:
    """Write zeros until the filesystem says no more."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for size in (65536, 4096, 512, 1):
            while True:
                try:
                    os.write(fd, bytes(size))
                except OSError:
                    break
    finally:
        os.close(fd)


def test_acks_delete_and_appends_are_refused_by_seq_on_a_completely_full_disk(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with small_disk(tmp_path / "disk", "1m") as disk:
        box = Outbox(disk / "o.sqlite", edge_id="e1", min_free_bytes=64 << 10,
                     reserve_bytes=128 << 10)
        assert box.reserve.held
        t = 1000.0
        while not box.disk_status.pressure:  # the outbox fills its share of the volume
            t += 1
            box.append([Sample(0, int(t * 1000), "m1", "power_w", float(i), "W")
                        for i in range(50)], now=t)
        depth = box.stats().depth
        fill(disk / "other")  # then something else takes every byte left
        for _ in range(5):
            t += 1
            assert box.append([Sample(0, int(t * 1000), "m1", "power_w", 1.0, "W")],
                              now=t) == []
        assert box.ack(box.last_seq) == depth  # deleting works on a full disk
        assert box.acked_upto == box.last_seq
        assert "released the 131072 B reserve" in caplog.text  # room for the delete
        t += 10
        seqs = box.append([Sample(0, int(t * 1000), "m1", "power_w", 2.0, "W")], now=t)
        assert seqs, "the freed pages take new records again"
        rows = [json.loads(r.body) for r in box.read_after(0, 10)]
        assert rows[0]["name"] == "outbox.disk_full"
        dropped = {q for a, b in rows[0]["data"]["dropped_seqs"] for q in range(a, b + 1)}
        assert len(dropped) == box.refused_records
        assert max(dropped) < seqs[0]
        box.close()
        box = Outbox(disk / "o.sqlite", edge_id="e1", min_free_bytes=64 << 10,
                     reserve_bytes=128 << 10)
        assert box.acked_upto >= depth  # the ack was written, not only remembered


def test_a_healthy_link_keeps_the_wal_bounded_on_a_2_mib_volume(tmp_path: Path) -> None:
    """Issue 20: with SQLite's default auto-checkpoint the WAL alone filled a 2 MiB volume in
    40 s on a healthy link. Here about 80,000 records pass through the outbox (many times
    what the volume holds) with acks trailing 200 rows behind, on the default settings."""
    with small_disk(tmp_path / "disk", "2m") as disk:
        box = Outbox(disk / "o.sqlite", edge_id="e1")  # defaults scale to the volume
        assert box.min_free_bytes == 256 * 1024
        assert box.reserve.held
        wal = disk / "o.sqlite-wal"
        biggest = 0
        for i in range(3000):
            box.append([Sample(0, i, "m1", f"p{k}", float(k), "W") for k in range(27)],
                       now=1000.0 + i)
            box.ack(box.last_seq - 200)
            biggest = max(biggest, wal.stat().st_size if wal.exists() else 0)
        assert not box.disk_status.pressure
        assert box.refused_records == 0
        assert box.last_seq == 3000 * 27
        print("largest WAL", biggest)
        assert biggest < 512 * 1024, biggest  # well inside the volume, never the whole
        box.close()
