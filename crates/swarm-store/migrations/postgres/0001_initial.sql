-- swarm store on PostgreSQL, schema 1: the tables of SQLite schema 9 in PostgreSQL's
-- types. Applied by swarm::store::postgres in one transaction under an advisory lock;
-- meta's `schema_version` records the number. Records, pool slots and step details
-- stay JSON text (not jsonb): `list --json` prints a record as it was written.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE workspaces (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,
    data        TEXT NOT NULL,
    data_format BIGINT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    region      TEXT NOT NULL,
    cpu_kind    TEXT NOT NULL,
    cpus        BIGINT NOT NULL,
    memory_mb   BIGINT NOT NULL,
    storage_gb  BIGINT NOT NULL,
    url         TEXT NOT NULL,
    owner       TEXT,
    ip_mode     TEXT NOT NULL
);
-- One live workspace per name, enforced by the database for every writer.
CREATE UNIQUE INDEX workspaces_live_name ON workspaces (name) WHERE status <> 'deleted';
CREATE INDEX workspaces_list ON workspaces (created_at, id);
CREATE INDEX workspaces_owner ON workspaces (owner) WHERE status <> 'deleted';

CREATE TABLE operations (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id   UUID NOT NULL,
    workspace_name TEXT NOT NULL,
    kind           TEXT NOT NULL,
    owner          TEXT NOT NULL,
    started_at     TIMESTAMPTZ NOT NULL,
    finished_at    TIMESTAMPTZ,
    outcome        TEXT
);
CREATE INDEX operations_unfinished ON operations (id) WHERE finished_at IS NULL;
CREATE INDEX operations_workspace ON operations (workspace_id);

CREATE TABLE operation_steps (
    operation_id BIGINT NOT NULL REFERENCES operations (id),
    seq          BIGINT NOT NULL,
    step         TEXT NOT NULL,
    detail       TEXT NOT NULL,
    at           TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (operation_id, seq)
);

-- Per-workspace leases; times from the database's clock, so replicas on several
-- hosts agree on when one has expired.
CREATE TABLE locks (
    name        TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    pid         BIGINT NOT NULL,
    operation   TEXT NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE pool_slots (
    id             UUID PRIMARY KEY,
    app            TEXT NOT NULL UNIQUE,
    state          TEXT NOT NULL,
    region         TEXT NOT NULL,
    org            TEXT NOT NULL,
    ip_mode        TEXT NOT NULL,
    volume_size_gb BIGINT NOT NULL,
    data           TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX pool_slots_take ON pool_slots (state, region, org, ip_mode, volume_size_gb);

-- Only a SHA-256 of each controller token.
CREATE TABLE api_tokens (
    id         TEXT PRIMARY KEY,
    user_name  TEXT NOT NULL,
    admin      BOOLEAN NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE events (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace TEXT NOT NULL,
    owner     TEXT,
    at        TIMESTAMPTZ NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    detail    TEXT NOT NULL
);
CREATE INDEX events_by_workspace ON events (workspace, id);
