-- Placeholder for the store migration 0003 of the multi-institution work, which lands in a
-- parallel branch: migration numbers must run 1, 2, 3 ... Delete this file when that
-- branch's 0003 is merged.
SELECT 1;
