-- Uploads of local files (tus 1.0). Statuses are stored as text; the Uploading status needs
-- no change to the search index here.

-- The file name an upload was created with (display only).
ALTER TABLE images ADD COLUMN source_file_name TEXT;
-- The format the creator declared, which inspection must confirm (NULL: qcow2, as before).
ALTER TABLE images ADD COLUMN declared_format TEXT;

-- One tus upload per image. The offset is durable: it moves only after the bytes before it
-- are fsynced, and together with the hashers' state at that offset, so a resumed upload
-- never re-reads what it already has.
CREATE TABLE uploads (
    id            TEXT PRIMARY KEY,         -- 128 random bits, hex; the upload URL's last part
    image_id      TEXT NOT NULL UNIQUE REFERENCES images (id) ON DELETE CASCADE,
    account_id    TEXT NOT NULL,
    length_bytes  BIGINT NOT NULL,
    offset_bytes  BIGINT NOT NULL,
    metadata      TEXT NOT NULL,            -- the Upload-Metadata header, validated
    hasher_state  TEXT NOT NULL,            -- hex: the SHA-512, MD5 (and SHA-256) states at the offset
    state         TEXT NOT NULL,            -- receiving, complete, terminated, expired
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX uploads_by_expiry ON uploads (state, expires_at);
CREATE INDEX uploads_by_account ON uploads (account_id, state);
