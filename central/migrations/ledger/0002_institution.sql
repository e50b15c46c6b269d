-- Ledger entries belong to one institution: a central serves a config directory of many,
-- all in one database. The institution leads the primary key, so an upsert by (kind, ref)
-- of one institution never touches another's entry of the same ref.
-- Rows written before this version belong to the one institution that central served:
-- central/pgledger.py names it in the setting greenguard.ledger_owner when the central is
-- started with that institution's config. Without it, a ledger holding rows is refused
-- (the migration fails and the database stays at version 1) rather than guessed.
ALTER TABLE ledger_entries ADD COLUMN institution TEXT;
DO $$
DECLARE
    owner TEXT := COALESCE(current_setting('greenguard.ledger_owner', true), '');
    n BIGINT;
BEGIN
    SELECT COUNT(*) INTO n FROM ledger_entries;
    IF n > 0 AND owner = '' THEN
        RAISE EXCEPTION 'the ledger holds % entries from before institutions were recorded; '
            'start the central once with the config of the one institution it served '
            '(a single file, not a directory) so they are attributed to it', n;
    END IF;
    UPDATE ledger_entries SET institution = owner;
END $$;
ALTER TABLE ledger_entries ALTER COLUMN institution SET NOT NULL;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_pkey;
ALTER TABLE ledger_entries ADD PRIMARY KEY (institution, kind, ref);
DROP INDEX ledger_by_range;
CREATE INDEX ledger_by_range ON ledger_entries (institution, kind, lo);
