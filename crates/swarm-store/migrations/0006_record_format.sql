-- swarm store, schema 6: which encoding of the record `data` holds (RECORD_FORMAT in
-- crates/swarm/src/store/sqlite.rs, set with every write). `list --json` prints rows of
-- the current encoding as stored and decodes the others (NULL: written before schema 6).
ALTER TABLE workspaces ADD COLUMN data_format INTEGER;
