-- swarm store, schema 3: the warm pool. One row per pool slot (a Fly app with a volume
-- and IPs made ahead of any workspace). The row is the slot's journal: it is written
-- (state 'filling', app name chosen) before any Fly call, each Fly id is recorded the
-- moment it is known, and 'ready' is written last. `create` takes a ready slot by
-- deleting its row in the same transaction that gives its app to the workspace record,
-- so a slot is never held by two workspaces, nor by a workspace and the pool at once.
-- `data` is the whole PoolSlot as JSON; the other columns are copies for the take query.

CREATE TABLE pool_slots (
    id             TEXT PRIMARY KEY,
    app            TEXT NOT NULL UNIQUE,
    state          TEXT NOT NULL,
    region         TEXT NOT NULL,
    org            TEXT NOT NULL,
    ip_mode        TEXT NOT NULL,
    volume_size_gb INTEGER NOT NULL,
    data           TEXT NOT NULL,
    created_at     TEXT NOT NULL
);
CREATE INDEX pool_slots_take ON pool_slots (state, region, org, ip_mode, volume_size_gb);
