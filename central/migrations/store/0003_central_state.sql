-- The central's own state, shared by every worker of a PostgreSQL central
-- (docs/scale-out.md): API tokens, so a token issued or revoked through one worker holds
-- on all of them, and the commands sent to edges, keyed by institution, so any worker
-- answers for a command another one sent. Same columns as the SQLite files they replace
-- (central/auth.py, central/commands.py).
CREATE TABLE tokens (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, institutions TEXT,
    created DOUBLE PRECISION NOT NULL, expires DOUBLE PRECISION, revoked DOUBLE PRECISION);
CREATE TABLE commands (
    institution TEXT NOT NULL, id TEXT NOT NULL, site TEXT NOT NULL, edge TEXT NOT NULL,
    name TEXT NOT NULL, args TEXT NOT NULL, issued BIGINT NOT NULL, expires BIGINT NOT NULL,
    created_by TEXT NOT NULL, sent SMALLINT NOT NULL DEFAULT 0,
    PRIMARY KEY (institution, id));
CREATE INDEX commands_by_institution ON commands (institution, issued);
