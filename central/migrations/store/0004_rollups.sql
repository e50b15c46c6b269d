-- Daily and hourly rollups of the interval records (central/pgrollup.py), filled here from
-- the intervals already stored; from now on ingest keeps them in each batch's transaction.
-- `nano` is the sum of integer nano-units (round(quantity × 1e9)); an interval straddling
-- bucket boundaries is split by overlap, part = floor(total × elapsed / span) at the
-- bucket's end minus the same at its start, exactly the rule of central/rollup.py. Day
-- buckets are UTC days (date ordinals, as Python's date.toordinal); hour buckets are epoch
-- hours. Intervals longer than a day or above 1e5 units stay out (read from the raw table
-- through `intervals_unrolled`, empty in normal operation).
CREATE TABLE interval_daily (
    edge TEXT NOT NULL, device TEXT NOT NULL, point TEXT NOT NULL, day INTEGER NOT NULL,
    nano BIGINT NOT NULL, PRIMARY KEY (edge, device, point, day));
CREATE TABLE interval_hourly (
    edge TEXT NOT NULL, device TEXT NOT NULL, point TEXT NOT NULL, hour BIGINT NOT NULL,
    nano BIGINT NOT NULL, PRIMARY KEY (edge, device, point, hour));
CREATE INDEX intervals_unrolled ON intervals (start)
    WHERE duration_s > 86400 OR quantity > 1e5 OR quantity < -1e5;

-- round() of a double is rint(): half to even, as Python's round(). Floor division of
-- numerics by a positive span: div() truncates, so one is taken off a negative remainder.
CREATE TEMPORARY TABLE rollup_parts ON COMMIT DROP AS
WITH rolled AS (
    SELECT edge, device, point, start, start + duration_s::bigint * 1000 AS stop,
           duration_s::bigint * 1000 AS span, round(quantity * 1000000000)::bigint::numeric AS total
    FROM intervals
    WHERE duration_s <= 86400 AND quantity <= 1e5 AND quantity >= -1e5),
cuts AS (
    SELECT r.edge, r.device, r.point, r.span, r.total, b.size, b.bucket,
           r.total * (LEAST(r.stop, (b.bucket + 1) * b.size) - r.start) AS upto,
           r.total * (GREATEST(r.start, b.bucket * b.size) - r.start) AS since
    FROM rolled r
    CROSS JOIN LATERAL (
        SELECT s.size, generate_series(r.start / s.size, (r.stop - 1) / s.size) AS bucket
        FROM (VALUES (3600000::bigint), (86400000::bigint)) AS s(size)) AS b)
SELECT edge, device, point, size, bucket,
       SUM((div(upto, span) - (mod(upto, span) < 0)::int)
           - (div(since, span) - (mod(since, span) < 0)::int))::bigint AS nano
FROM cuts GROUP BY edge, device, point, size, bucket;

INSERT INTO interval_hourly (edge, device, point, hour, nano)
    SELECT edge, device, point, bucket, nano FROM rollup_parts WHERE size = 3600000;
-- 719163 is date(1970, 1, 1).toordinal().
INSERT INTO interval_daily (edge, device, point, day, nano)
    SELECT edge, device, point, bucket + 719163, nano FROM rollup_parts WHERE size = 86400000;
