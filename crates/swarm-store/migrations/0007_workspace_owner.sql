-- swarm store, schema 7: the controller user owning a workspace, copied out of `data`
-- so that a quota check (in the same transaction as the create or resize it guards)
-- reads one user's rows through an index instead of decoding every record.
ALTER TABLE workspaces ADD COLUMN owner TEXT;

UPDATE workspaces SET owner = json_extract(data, '$.spec.owner') WHERE json_valid(data);

CREATE INDEX workspaces_owner ON workspaces (owner) WHERE status <> 'deleted';
