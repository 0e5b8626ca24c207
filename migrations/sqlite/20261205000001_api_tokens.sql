-- API tokens: a user's standing ways in for machines (X-Auth-Token). Only an HMAC of each
-- token is kept, keyed with the session secret, so a copy of the database cannot be used to
-- call the API.
CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    account_id    TEXT NOT NULL,
    name          TEXT NOT NULL,
    token_hash    TEXT NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER,                  -- NULL: until revoked
    last_used_at  INTEGER                   -- written at most once a minute
);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id, created_at);
