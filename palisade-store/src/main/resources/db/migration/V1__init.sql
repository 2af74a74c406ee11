-- palisade control-plane metadata, version 1
CREATE TABLE accounts (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    key_hash    text PRIMARY KEY,
    account_id  text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    key_prefix  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE databases (
    id                 text PRIMARY KEY,
    account_id         text NOT NULL REFERENCES accounts (id),
    label              text NOT NULL,
    isolation          text NOT NULL,
    pg_version         text NOT NULL,
    plan_name          text NOT NULL,
    cpu                integer NOT NULL,
    memory_mb          integer NOT NULL,
    disk_mb            integer NOT NULL,
    iops               integer NOT NULL,
    bandwidth_mbps     integer NOT NULL,
    persistent         boolean NOT NULL,
    ttl_seconds        integer,
    expires_at         timestamptz,
    host               text NOT NULL,
    state              text NOT NULL,
    state_reason       text,
    username           text NOT NULL,
    dbname             text NOT NULL,
    password_enc       text NOT NULL,
    broker_token_hash  text NOT NULL,
    broker_token_enc   text NOT NULL,
    endpoint_host      text,
    endpoint_port      integer,
    labels             jsonb NOT NULL DEFAULT '{}',
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    last_active_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX databases_account_idx ON databases (account_id, created_at);
CREATE INDEX databases_host_idx ON databases (host);
