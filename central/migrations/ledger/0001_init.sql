-- The manual ledger (central/ledger.py): one row per (kind, ref), upserted.
-- lo/hi are ordinal days (bills, fuel) or POSIX seconds (clearances, hazardous moves).
CREATE TABLE ledger_entries (
    kind TEXT NOT NULL, ref TEXT NOT NULL,
    lo DOUBLE PRECISION NOT NULL, hi DOUBLE PRECISION NOT NULL,
    data TEXT NOT NULL, updated_count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, ref));
CREATE INDEX ledger_by_range ON ledger_entries (kind, lo);
