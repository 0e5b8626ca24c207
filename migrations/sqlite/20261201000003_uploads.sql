-- Uploads of local files (tus 1.0) and the Uploading status.

-- The search index's facets gain the Uploading status. SQLite cannot alter a generated
-- column, and cannot drop one that triggers read, so the triggers are dropped and made again
-- unchanged. The column is virtual: existing documents keep their letters, which are the same.
DROP TRIGGER image_search_insert;
DROP TRIGGER image_search_update;
DROP TRIGGER image_search_tag_insert;
DROP TRIGGER image_search_tag_delete;
ALTER TABLE images DROP COLUMN search_facets;
ALTER TABLE images ADD COLUMN search_facets TEXT GENERATED ALWAYS AS (
        char(2) || 's' || CASE status WHEN 'queued' THEN 'q' WHEN 'uploading' THEN 'u' WHEN 'importing' THEN 'i' WHEN 'active' THEN 'a' WHEN 'failed' THEN 'f' END
        || char(2) || 'o' || CASE os_type WHEN 'alma' THEN 'a' WHEN 'centos' THEN 'c' WHEN 'oracle' THEN 'o' WHEN 'rhel' THEN 'h' WHEN 'rocky' THEN 'k' WHEN 'ubuntu' THEN 'u' END
        || char(2) || 'v' || CASE visibility WHEN 'private' THEN 'p' WHEN 'shared' THEN 's' END
) VIRTUAL;

CREATE TRIGGER image_search_insert AFTER INSERT ON images BEGIN
    INSERT INTO image_search (rowid, name, short, facets, tags) VALUES (
        (SELECT a.seq FROM accounts a WHERE a.id = new.account_id) * 1099511627776 + new.seq,
        lower(new.name), new.search_short, new.search_facets,
        COALESCE((SELECT group_concat(char(4) || t.tag_key || char(5) || t.tag_value || char(4), '') FROM image_tags t WHERE t.image_id = new.id), ''));
END;
CREATE TRIGGER image_search_update AFTER UPDATE OF name, status, os_type, visibility ON images
WHEN old.name IS NOT new.name OR old.status IS NOT new.status OR old.os_type IS NOT new.os_type
    OR old.visibility IS NOT new.visibility
BEGIN
    DELETE FROM image_search WHERE rowid = (SELECT a.seq FROM accounts a WHERE a.id = old.account_id) * 1099511627776 + old.seq;
    INSERT INTO image_search (rowid, name, short, facets, tags) VALUES (
        (SELECT a.seq FROM accounts a WHERE a.id = new.account_id) * 1099511627776 + new.seq,
        lower(new.name), new.search_short, new.search_facets,
        COALESCE((SELECT group_concat(char(4) || t.tag_key || char(5) || t.tag_value || char(4), '') FROM image_tags t WHERE t.image_id = new.id), ''));
END;
CREATE TRIGGER image_search_tag_insert AFTER INSERT ON image_tags BEGIN
    DELETE FROM image_search WHERE rowid = (
        SELECT a.seq * 1099511627776 + i.seq FROM images i JOIN accounts a ON a.id = i.account_id
        WHERE i.id = new.image_id);
    INSERT INTO image_search (rowid, name, short, facets, tags)
    SELECT a.seq * 1099511627776 + i.seq, lower(i.name), i.search_short, i.search_facets,
        COALESCE((SELECT group_concat(char(4) || t.tag_key || char(5) || t.tag_value || char(4), '') FROM image_tags t WHERE t.image_id = i.id), '')
    FROM images i JOIN accounts a ON a.id = i.account_id WHERE i.id = new.image_id;
END;
CREATE TRIGGER image_search_tag_delete AFTER DELETE ON image_tags BEGIN
    DELETE FROM image_search WHERE rowid = (
        SELECT a.seq * 1099511627776 + i.seq FROM images i JOIN accounts a ON a.id = i.account_id
        WHERE i.id = old.image_id);
    INSERT INTO image_search (rowid, name, short, facets, tags)
    SELECT a.seq * 1099511627776 + i.seq, lower(i.name), i.search_short, i.search_facets,
        COALESCE((SELECT group_concat(char(4) || t.tag_key || char(5) || t.tag_value || char(4), '') FROM image_tags t WHERE t.image_id = i.id), '')
    FROM images i JOIN accounts a ON a.id = i.account_id WHERE i.id = old.image_id;
END;

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
    length_bytes  INTEGER NOT NULL,
    offset_bytes  INTEGER NOT NULL,
    metadata      TEXT NOT NULL,            -- the Upload-Metadata header, validated
    hasher_state  TEXT NOT NULL,            -- hex: the SHA-512, MD5 (and SHA-256) states at the offset
    state         TEXT NOT NULL,            -- receiving, complete, terminated, expired
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX uploads_by_expiry ON uploads (state, expires_at);
CREATE INDEX uploads_by_account ON uploads (account_id, state);
