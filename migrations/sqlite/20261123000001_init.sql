-- Accounts, their users and sessions, and images. Times are Unix milliseconds (UTC); booleans
-- are 0/1 integers, which both databases and sqlx's Any driver read the same way.

CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,       -- the Account ID, lower case
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES accounts (id),
    user_name      TEXT NOT NULL UNIQUE, -- lower case
    password_hash  TEXT NOT NULL,        -- argon2id PHC string
    created_at     INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash  TEXT PRIMARY KEY,        -- HMAC-SHA256 of the cookie value; the value itself is never stored
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE images (
    -- An explicit integer key keeps rowids stable (VACUUM may renumber implicit ones), so
    -- the name-search index can refer to rows by it.
    seq                 INTEGER PRIMARY KEY,
    id                  TEXT NOT NULL UNIQUE,
    account_id          TEXT NOT NULL REFERENCES accounts (id),
    name                TEXT NOT NULL,
    description         TEXT NOT NULL,
    os_type             TEXT NOT NULL,
    min_disk_gb         INTEGER NOT NULL,
    min_ram_gb          INTEGER NOT NULL,
    visibility          TEXT NOT NULL,
    protected           INTEGER NOT NULL,
    status              TEXT NOT NULL,
    failure_reason      TEXT,
    image_type          TEXT NOT NULL,
    source_url          TEXT,
    disk_format         TEXT,            -- found by inspection, not declared
    size_bytes          INTEGER,
    virtual_size_bytes  INTEGER,
    hash_algo           TEXT,
    hash_value          TEXT,
    checksum_md5        TEXT,
    blob_key            TEXT,            -- set only once the bytes are durable in the blob store
    bytes_done          INTEGER NOT NULL DEFAULT 0,
    bytes_total         INTEGER,
    import_attempts     INTEGER NOT NULL DEFAULT 0,
    created_by          TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_by          TEXT NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX images_by_account ON images (account_id, created_at DESC, id);
CREATE INDEX images_by_status ON images (status);
