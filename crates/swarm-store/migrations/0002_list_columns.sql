-- swarm store, schema 2: what the human `swarm list` shows, copied out of `data` into
-- columns, so listing 10,000 workspaces reads a small covering index instead of
-- decoding every record. The store writes them in the same statement as `data`.
-- Nullable: a row whose `data` lacks a field is reported as corrupt by the list, not
-- refused here (a failed migration would lock the user out of every command).

ALTER TABLE workspaces ADD COLUMN region TEXT;
ALTER TABLE workspaces ADD COLUMN cpu_kind TEXT;
ALTER TABLE workspaces ADD COLUMN cpus INTEGER;
ALTER TABLE workspaces ADD COLUMN memory_mb INTEGER;
ALTER TABLE workspaces ADD COLUMN storage_gb INTEGER;
ALTER TABLE workspaces ADD COLUMN url TEXT;

-- One-time backfill of the rows written at schema 1.
UPDATE workspaces SET
    region     = json_extract(data, '$.spec.region'),
    cpu_kind   = json_extract(data, '$.spec.guest.cpu_kind'),
    cpus       = json_extract(data, '$.spec.guest.cpus'),
    memory_mb  = json_extract(data, '$.spec.guest.memory_mb'),
    storage_gb = json_extract(data, '$.spec.storage_gb'),
    url        = json_extract(data, '$.url')
WHERE json_valid(data);

-- Covering the list query: SQLite scans this (about 100 bytes a row) instead of the
-- table, whose rows carry the whole record.
CREATE INDEX workspaces_list ON workspaces
    (created_at, id, status, name, region, cpu_kind, cpus, memory_mb, storage_gb, url);
