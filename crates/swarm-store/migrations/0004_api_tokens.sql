-- API tokens of the controller (`swarm serve`). Only a SHA-256 of each token is kept:
-- tokens are 256 random bits, so a fast hash is enough and lookups stay cheap.
CREATE TABLE api_tokens (
    id         TEXT PRIMARY KEY,
    user       TEXT NOT NULL,
    admin      INTEGER NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
