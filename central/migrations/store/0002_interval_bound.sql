-- The longest interval ever stored bounds how far before a period's start a straddling
-- interval can begin, which keeps period sums a short range scan on intervals_by_start.
-- One row, raised with a plain conditional UPDATE: a row that is already high enough is not
-- locked, so concurrent ingest workers do not queue behind each other on it.
CREATE TABLE interval_bound (
    id SMALLINT PRIMARY KEY CHECK (id = 1), seconds INTEGER NOT NULL);
INSERT INTO interval_bound (id, seconds)
    SELECT 1, COALESCE(MAX(duration_s), 0) FROM intervals;
