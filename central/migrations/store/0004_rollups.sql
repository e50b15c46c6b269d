-- Daily and hourly rollups of the interval records (central/pgrollup.py), filled here from
-- the intervals already stored; from now on ingest keeps them in each batch's transaction.
-- `nano` is the sum of integer nano-units (round(quantity × 1e9)); an interval straddling
-- bucket boundaries is split by overlap, part = floor(total × elapsed / span) at the
-- bucket's end minus the same at its start, exactly the rule of central/rollup.py. Day
-- buckets are local days of Asia/Shanghai; hour buckets are epoch hours. Intervals longer
-- than a day or above 1e5 units stay out (read from the raw table through
-- `intervals_unrolled`, empty in normal operation).
CREATE TABLE interval_daily (
    edge TEXT NOT NULL, device TEXT NOT NULL, point TEXT NOT NULL, day INTEGER NOT NULL,
    nano BIGINT NOT NULL, PRIMARY KEY (edge, device, point, day));
CREATE TABLE interval_hourly (
    edge TEXT NOT NULL, device TEXT NOT NULL, point TEXT NOT NULL, hour BIGINT NOT NULL,
    nano BIGINT NOT NULL, PRIMARY KEY (edge, device, point, hour));
CREATE INDEX intervals_unrolled ON intervals (start)
    WHERE duration_s > 86400 OR quantity > 1e5 OR quantity < -1e5;

-- The day zone: local calendar days of Asia/Shanghai (central/pgrollup.py DAY_ZONE). Day
-- ordinals are Python's date.toordinal(); a midnight is the local date's first instant.
CREATE FUNCTION pg_temp.gg_day(ms BIGINT) RETURNS INTEGER LANGUAGE sql IMMUTABLE AS $$
    SELECT ((timestamptz 'epoch' + ms * interval '1 millisecond') AT TIME ZONE
            'Asia/Shanghai')::date - date '0001-01-01' + 1 $$;
CREATE FUNCTION pg_temp.gg_midnight(day INTEGER) RETURNS BIGINT LANGUAGE sql IMMUTABLE AS $$
    SELECT floor(extract(epoch FROM (date '0001-01-01' + (day - 1))::timestamp AT TIME ZONE
                         'Asia/Shanghai') * 1000)::bigint $$;

-- round() of a double is rint(): half to even, as Python's round(). Floor division of
-- numerics by a positive span: div() truncates, so one is taken off a negative remainder.
CREATE TEMPORARY TABLE rollup_parts ON COMMIT DROP AS
WITH rolled AS (
    SELECT edge, device, point, start, start + duration_s::bigint * 1000 AS stop,
           duration_s::bigint * 1000 AS span,
           round(quantity * 1000000000)::bigint::numeric AS total
    FROM intervals
    WHERE duration_s <= 86400 AND quantity <= 1e5 AND quantity >= -1e5),
buckets AS (
    SELECT r.*, 'h' AS kind, h AS bucket, h * 3600000 AS lo, (h + 1) * 3600000 AS hi
    FROM rolled r
    CROSS JOIN LATERAL generate_series(r.start / 3600000, (r.stop - 1) / 3600000) AS h
    UNION ALL
    SELECT r.*, 'd', d, pg_temp.gg_midnight(d), pg_temp.gg_midnight(d + 1)
    FROM rolled r CROSS JOIN LATERAL generate_series(pg_temp.gg_day(r.start),
                                                     pg_temp.gg_day(r.stop - 1)) AS d),
cuts AS (
    SELECT edge, device, point, kind, bucket, span, total * (LEAST(stop, hi) - start) AS upto,
           total * (GREATEST(start, lo) - start) AS since
    FROM buckets)
SELECT edge, device, point, kind, bucket,
       SUM((div(upto, span) - (mod(upto, span) < 0)::int)
           - (div(since, span) - (mod(since, span) < 0)::int))::bigint AS nano
FROM cuts GROUP BY edge, device, point, kind, bucket;

INSERT INTO interval_hourly (edge, device, point, hour, nano)
    SELECT edge, device, point, bucket, nano FROM rollup_parts WHERE kind = 'h';
INSERT INTO interval_daily (edge, device, point, day, nano)
    SELECT edge, device, point, bucket, nano FROM rollup_parts WHERE kind = 'd';
DROP FUNCTION pg_temp.gg_day(BIGINT);
DROP FUNCTION pg_temp.gg_midnight(INTEGER);
