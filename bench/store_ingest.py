"""Central store write rate against the raw SQLite ceiling, measured in the same run.

    python -m bench.store_ingest [--records 200000] [--batch 500]

Raw ceiling: executemany of the same number of rows into a bare table in one transaction
per batch, same journal settings (WAL, synchronous=FULL). Ours: `Store.store_batch` with
samples (dedup keys, latest-value table, watermark), one transaction per batch.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from central.store import Store
from protocols.wire import Batch, Sample, StreamId


def raw_sqlite(path: Path, records: int, batch: int) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE s (seq INTEGER PRIMARY KEY, ts INTEGER, device TEXT, point TEXT, "
               "value REAL, unit TEXT)")
    t0 = time.perf_counter()
    for first in range(1, records + 1, batch):
        rows = [(s, s, f"m{s % 100}", "power_w", float(s), "W")
                for s in range(first, min(first + batch, records + 1))]
        db.execute("BEGIN")
        db.executemany("INSERT INTO s VALUES (?, ?, ?, ?, ?, ?)", rows)
        db.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    db.close()
    return records / elapsed


def store(path: Path, records: int, batch: int) -> float:
    st = Store(path)
    stream = StreamId("edge-1", 1)
    batches = []
    for first in range(1, records + 1, batch):
        recs = tuple(Sample(s, s, f"m{s % 100}", "power_w", float(s), "W")
                     for s in range(first, min(first + batch, records + 1)))
        batches.append(Batch(stream, first - 1, 0, True, recs))
    t0 = time.perf_counter()
    for b in batches:
        st.store_batch(b, "site-1")
    elapsed = time.perf_counter() - t0
    st.close()
    return records / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ceiling = raw_sqlite(Path(tmp) / "raw.sqlite", args.records, args.batch)
        ours = store(Path(tmp) / "store.sqlite", args.records, args.batch)
    print(f"records={args.records} batch={args.batch}")
    print(f"raw SQLite insert     {ceiling:12,.0f} rows/s   (ceiling)")
    print(f"central Store.store_batch {ours:8,.0f} records/s   ratio {ours / ceiling:.2f}")


if __name__ == "__main__":
    main()
