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
-- Since 1992 the zone's offset is a constant +08:00 (its last change was in 1991), so
-- from then on days are plain arithmetic (694195200000 ms is 1992-01-01 00:00 local, day
-- 727198); earlier instants go through the time-zone database.
CREATE FUNCTION pg_temp.gg_day(ms BIGINT) RETURNS INTEGER LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN ms >= 694195200000 THEN ((ms + 28800000) / 86400000 + 719163)::integer
           ELSE ((timestamptz 'epoch' + ms * interval '1 millisecond') AT TIME ZONE
                 'Asia/Shanghai')::date - date '0001-01-01' + 1 END $$;
CREATE FUNCTION pg_temp.gg_midnight(day INTEGER) RETURNS BIGINT LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN day >= 727198 THEN (day - 719163)::bigint * 86400000 - 28800000
           ELSE floor(extract(epoch FROM (date '0001-01-01' + (day - 1))::timestamp
                              AT TIME ZONE 'Asia/Shanghai') * 1000)::bigint END $$;

-- round() of a double is rint(): half to even, as Python's round(). An interval inside one
-- hour and one day (nearly all) is one part each, its total; the others are split, floor
-- division of numerics by the positive span: div() truncates, so one is taken off a
-- negative remainder.
CREATE TEMPORARY TABLE rollup_rolled ON COMMIT DROP AS
    SELECT edge, device, point, start, start + duration_s::bigint * 1000 AS stop,
           round(quantity * 1000000000)::bigint AS total,
           pg_temp.gg_day(start) AS day0,
           pg_temp.gg_day(start + duration_s::bigint * 1000 - 1) AS day1
    FROM intervals
    WHERE duration_s <= 86400 AND quantity <= 1e5 AND quantity >= -1e5;
CREATE TEMPORARY TABLE rollup_parts ON COMMIT DROP AS
WITH split AS (
    SELECT edge, device, point, start, stop, (stop - start) AS span, total::numeric AS total,
           day0, day1
    FROM rollup_rolled WHERE start / 3600000 <> (stop - 1) / 3600000 OR day0 <> day1),
buckets AS (
    SELECT r.*, 'h' AS kind, h AS bucket, h * 3600000 AS lo, (h + 1) * 3600000 AS hi
    FROM split r
    CROSS JOIN LATERAL generate_series(r.start / 3600000, (r.stop - 1) / 3600000) AS h
    UNION ALL
    SELECT r.*, 'd', d, pg_temp.gg_midnight(d), pg_temp.gg_midnight(d + 1)
    FROM split r CROSS JOIN LATERAL generate_series(r.day0, r.day1) AS d),
cuts AS (
    SELECT edge, device, point, kind, bucket, span, total * (LEAST(stop, hi) - start) AS upto,
           total * (GREATEST(start, lo) - start) AS since
    FROM buckets),
parts AS (
    SELECT edge, device, point, kind, bucket,
           ((div(upto, span) - (mod(upto, span) < 0)::int)
            - (div(since, span) - (mod(since, span) < 0)::int))::bigint AS nano
    FROM cuts
    UNION ALL
    SELECT edge, device, point, kind, bucket, total
    FROM rollup_rolled
    CROSS JOIN LATERAL (VALUES ('h', start / 3600000), ('d', day0::bigint)) AS b(kind, bucket)
    WHERE start / 3600000 = (stop - 1) / 3600000 AND day0 = day1)
SELECT edge, device, point, kind, bucket, SUM(nano)::bigint AS nano
FROM parts GROUP BY edge, device, point, kind, bucket;

INSERT INTO interval_hourly (edge, device, point, hour, nano)
    SELECT edge, device, point, bucket, nano FROM rollup_parts WHERE kind = 'h';
INSERT INTO interval_daily (edge, device, point, day, nano)
    SELECT edge, device, point, bucket, nano FROM rollup_parts WHERE kind = 'd';
DROP FUNCTION pg_temp.gg_day(BIGINT);
DROP FUNCTION pg_temp.gg_midnight(INTEGER);

-- The per-day AC-compliance cache (central/accache.py, central/pgaccache.py): generations of
-- sample rows written per series and UTC day (counted from now on, in each batch's
-- transaction), and the cached (judged, compliant) ms of whole local days keyed by them.
CREATE TABLE sample_days (
    edge TEXT NOT NULL, device TEXT NOT NULL, point TEXT NOT NULL, bucket BIGINT NOT NULL,
    gen BIGINT NOT NULL, PRIMARY KEY (edge, device, point, bucket));
CREATE TABLE ac_days (
    edge TEXT NOT NULL, device TEXT NOT NULL, points TEXT NOT NULL, rule TEXT NOT NULL,
    with_on SMALLINT NOT NULL, day INTEGER NOT NULL, fingerprint TEXT NOT NULL,
    judged_ms BIGINT NOT NULL, compliant_ms BIGINT NOT NULL,
    PRIMARY KEY (edge, device, points, rule, with_on, day));
