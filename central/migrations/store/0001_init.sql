-- Telemetry store, first version: the tables of central/store.py's SQLite schema.
-- Values of samples are split into a number and a text column (PostgreSQL columns have one
-- type); vtype says which one holds the value ('n' number, 'b' boolean as 0/1, 's' text).
CREATE TABLE streams (
    edge TEXT NOT NULL, epoch BIGINT NOT NULL, site TEXT NOT NULL,
    watermark BIGINT NOT NULL DEFAULT 0, updated DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (edge, epoch));
CREATE TABLE pending (
    edge TEXT NOT NULL, epoch BIGINT NOT NULL, after BIGINT NOT NULL, upto BIGINT NOT NULL,
    PRIMARY KEY (edge, epoch, after, upto));
CREATE TABLE samples (
    stream_edge TEXT NOT NULL, stream_epoch BIGINT NOT NULL, seq BIGINT NOT NULL,
    ts BIGINT NOT NULL, device TEXT NOT NULL, point TEXT NOT NULL,
    num DOUBLE PRECISION, txt TEXT, vtype TEXT NOT NULL, unit TEXT NOT NULL,
    synced SMALLINT NOT NULL,
    PRIMARY KEY (stream_edge, stream_epoch, seq));
CREATE INDEX samples_by_point ON samples (stream_edge, device, point, ts);
CREATE TABLE latest (
    edge TEXT NOT NULL, device TEXT NOT NULL, point TEXT NOT NULL, ts BIGINT NOT NULL,
    num DOUBLE PRECISION, txt TEXT, vtype TEXT NOT NULL, unit TEXT NOT NULL,
    stream_epoch BIGINT NOT NULL, seq BIGINT NOT NULL,
    PRIMARY KEY (edge, device, point));
CREATE TABLE intervals (
    edge TEXT NOT NULL, device TEXT NOT NULL, point TEXT NOT NULL, start BIGINT NOT NULL,
    duration_s INTEGER NOT NULL, quantity DOUBLE PRECISION NOT NULL, unit TEXT NOT NULL,
    flags TEXT NOT NULL, synced SMALLINT NOT NULL, stream_epoch BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (edge, device, point, start));
CREATE INDEX intervals_by_start ON intervals (start);
CREATE TABLE events (
    stream_edge TEXT NOT NULL, stream_epoch BIGINT NOT NULL, seq BIGINT NOT NULL,
    ts BIGINT NOT NULL, name TEXT NOT NULL, severity TEXT NOT NULL, device TEXT,
    data TEXT NOT NULL, synced SMALLINT NOT NULL,
    PRIMARY KEY (stream_edge, stream_epoch, seq));
CREATE INDEX events_by_ts ON events (ts);
CREATE TABLE edges (
    edge TEXT PRIMARY KEY, site TEXT NOT NULL, epoch BIGINT, online SMALLINT,
    software TEXT, devices TEXT, birth_ts BIGINT, synced SMALLINT,
    last_seen DOUBLE PRECISION, changed DOUBLE PRECISION);
CREATE TABLE dead_letter (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, digest TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL, payload BYTEA NOT NULL, size INTEGER NOT NULL, error TEXT NOT NULL,
    first_seen DOUBLE PRECISION NOT NULL, last_seen DOUBLE PRECISION NOT NULL,
    count BIGINT NOT NULL);
