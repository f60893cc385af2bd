-- swarm store, schema 9: a workspace's status may be 'suspended' (and its record's
-- spec may carry `idle_policy`). No table changes: `status` is free TEXT. The number
-- is what matters: a swarm from before suspend read such a record as damage ("a record
-- is unreadable ... put back a backup"), wrong advice for a healthy store; with schema 9
-- it refuses the store at open, unchanged, with "written by a newer swarm (schema 9);
-- upgrade swarm" (docs/VERSIONING.md).
SELECT 1;
