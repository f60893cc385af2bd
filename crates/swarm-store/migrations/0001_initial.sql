-- swarm store, schema 1. Applied by swarm::store::sqlite inside one transaction;
-- PRAGMA user_version records the schema number.

-- Store-wide facts, e.g. which Fly this store belongs to.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- One row per workspace; `data` is the full WorkspaceRecord as JSON, `name` and
-- `status` are copied out for lookups and the live-name uniqueness rule.
CREATE TABLE workspaces (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    status     TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX workspaces_live_name ON workspaces (name) WHERE status <> 'deleted';

-- The journal: one row per operation (intent), one per completed step.
CREATE TABLE operations (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id   TEXT NOT NULL,
    workspace_name TEXT NOT NULL,
    kind           TEXT NOT NULL,
    owner          TEXT NOT NULL,
    started_at     TEXT NOT NULL,
    finished_at    TEXT,
    outcome        TEXT
);
CREATE INDEX operations_unfinished ON operations (id) WHERE finished_at IS NULL;
CREATE INDEX operations_workspace ON operations (workspace_id);

CREATE TABLE operation_steps (
    operation_id INTEGER NOT NULL REFERENCES operations (id),
    seq          INTEGER NOT NULL,
    step         TEXT NOT NULL,
    detail       TEXT NOT NULL,
    at           TEXT NOT NULL,
    PRIMARY KEY (operation_id, seq)
);

-- Per-workspace locks (keyed by name, so two creates of one name exclude each other):
-- a lease that its holder renews; stale after expires_at_ms.
CREATE TABLE locks (
    name          TEXT PRIMARY KEY,
    owner         TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    operation     TEXT NOT NULL,
    acquired_at   TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL
);
