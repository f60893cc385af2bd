-- swarm store, schema 8: the workspace's IP mode, copied out of `data` into the list
-- columns: `swarm list` prices each workspace (a dedicated IPv4 is billed) without
-- decoding its record, and the budget check reads it with the owner's other rows.
ALTER TABLE workspaces ADD COLUMN ip_mode TEXT;

UPDATE workspaces SET ip_mode = json_extract(data, '$.spec.ip_mode') WHERE json_valid(data);
