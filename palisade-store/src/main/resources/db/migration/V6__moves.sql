-- Moves between rungs (issue 13): one row per attempt, kept as history. At most one unfinished move per database.
-- The plan the database moves to is stored whole; the phase says how far the move got, and with it what a restart of
-- palisade must do: before 'switched' undo the move (the tenant stays where it was), from 'switched' on finish it.
CREATE TABLE moves (
    id              text PRIMARY KEY,
    database_id     text NOT NULL,
    account_id      text NOT NULL,
    from_isolation  text NOT NULL,
    to_isolation    text NOT NULL,
    from_plan       jsonb NOT NULL,
    to_plan         jsonb NOT NULL,
    phase           text NOT NULL,
    detail          text,
    copied_bytes    bigint NOT NULL DEFAULT 0,
    total_bytes     bigint NOT NULL DEFAULT 0,
    lag_bytes       bigint NOT NULL DEFAULT 0,
    cutover_ms      bigint,
    started_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE UNIQUE INDEX moves_one_unfinished ON moves (database_id) WHERE finished_at IS NULL;
CREATE INDEX moves_by_database ON moves (database_id, started_at DESC);
