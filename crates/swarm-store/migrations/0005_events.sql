-- The event history of workspaces (`GET /v1/workspaces/{name}/events`): who did
-- what, when, and how it ended; automatic actions too (actor `reconciler`,
-- `idle-policy`). Kept by name and owner, so a deleted workspace's history stays
-- readable and never shows under another user's workspace of the same name.
-- No secrets: `detail` holds ids, error codes and messages only.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace   TEXT NOT NULL,
    owner       TEXT,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX events_by_workspace ON events (workspace, id);
