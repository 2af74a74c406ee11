-- per-tenant backups: WAL archives (one per WAL lineage of a database), base backups, long-running operations

-- per-database backup settings (NULL = the server's default)
ALTER TABLE databases ADD COLUMN durability text NOT NULL DEFAULT 'async';
ALTER TABLE databases ADD COLUMN retention_seconds integer;
ALTER TABLE databases ADD COLUMN base_backup_interval_seconds integer;

-- One archive = one WAL lineage: it starts with a base backup and is continued by streaming. A database gets a new one
-- when it is restored in place; the pre-restore copy takes over the old one. database_id is NULL once the database is
-- deleted with kept backups (keep_until says until when).
CREATE TABLE archives (
    id              text PRIMARY KEY,
    database_id     text,
    account_id      text NOT NULL,
    data_key_enc    text NOT NULL,
    slot_name       text NOT NULL,
    system_id       text,
    timeline        integer,
    archived_lsn    bigint,
    caught_up_at    timestamptz,
    last_error      text,
    last_error_at   timestamptz,
    failures        bigint NOT NULL DEFAULT 0,
    keep_until      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX archives_database_idx ON archives (database_id);
ALTER TABLE databases ADD COLUMN archive_id text;

CREATE TABLE base_backups (
    id           text PRIMARY KEY,
    archive_id   text NOT NULL REFERENCES archives (id) ON DELETE CASCADE,
    state        text NOT NULL,
    trigger      text NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    start_lsn    bigint,
    end_lsn      bigint,
    timeline     integer,
    bytes        bigint NOT NULL DEFAULT 0,
    parts        integer NOT NULL DEFAULT 0,
    error        text
);
CREATE INDEX base_backups_archive_idx ON base_backups (archive_id, started_at);

-- restores, forks, on-demand backups: recorded with source and target, progress and outcome
CREATE TABLE operations (
    id            text PRIMARY KEY,
    kind          text NOT NULL,
    account_id    text NOT NULL,
    database_id   text NOT NULL,
    source_id     text,
    target        text NOT NULL,
    state         text NOT NULL,
    phase         text,
    bytes         bigint NOT NULL DEFAULT 0,
    wal_bytes     bigint NOT NULL DEFAULT 0,
    result_id     text,
    error         text,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);
CREATE INDEX operations_database_idx ON operations (database_id, started_at);
