-- Image attributes, tags, Work History, download-link revocation, and the indexes that keep
-- the Image List fast with many images in one account.

ALTER TABLE images ADD COLUMN architecture TEXT NOT NULL DEFAULT 'x86_64';
ALTER TABLE images ADD COLUMN boot_mode TEXT NOT NULL DEFAULT 'bios';
ALTER TABLE images ADD COLUMN features TEXT NOT NULL DEFAULT '';
-- Bumped to revoke every download link issued before.
ALTER TABLE images ADD COLUMN link_generation INTEGER NOT NULL DEFAULT 0;

CREATE TABLE image_tags (
    image_id    TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    account_id  TEXT NOT NULL,
    tag_key     TEXT NOT NULL,
    tag_value   TEXT NOT NULL,
    PRIMARY KEY (image_id, tag_key)
);
CREATE INDEX image_tags_by_key ON image_tags (account_id, tag_key, tag_value, image_id);

-- Kept after the image is deleted, so no foreign key.
CREATE TABLE image_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  TEXT NOT NULL,
    image_id    TEXT NOT NULL,
    image_name  TEXT NOT NULL,
    topic       TEXT NOT NULL,
    changes     TEXT NOT NULL,   -- JSON array of {field, old, new}
    message     TEXT NOT NULL,
    result      TEXT NOT NULL,
    worker      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX image_events_by_image ON image_events (account_id, image_id, id);

-- One index per sort order and filter of the Image List, each led by the account. Sorts
-- tie-break on id in the same direction, so one index serves both directions.
DROP INDEX images_by_account;
CREATE INDEX images_by_created ON images (account_id, created_at, id);
CREATE INDEX images_by_name ON images (account_id, name, id);
CREATE INDEX images_by_size ON images (account_id, size_bytes, id);
CREATE INDEX images_by_account_status ON images (account_id, status, created_at, id);
CREATE INDEX images_by_os_type ON images (account_id, os_type, created_at, id);
CREATE INDEX images_by_visibility ON images (account_id, visibility, created_at, id);

-- Name search: a trigram index finds names containing any 3 or more characters, ignoring
-- case, without scanning every row. Kept in step with images by triggers.
CREATE VIRTUAL TABLE images_name_fts USING fts5(name, content='images', content_rowid='seq', tokenize='trigram');
CREATE TRIGGER images_name_fts_insert AFTER INSERT ON images BEGIN
    INSERT INTO images_name_fts (rowid, name) VALUES (new.seq, new.name);
END;
CREATE TRIGGER images_name_fts_delete AFTER DELETE ON images BEGIN
    INSERT INTO images_name_fts (images_name_fts, rowid, name) VALUES ('delete', old.seq, old.name);
END;
CREATE TRIGGER images_name_fts_update AFTER UPDATE OF name ON images BEGIN
    INSERT INTO images_name_fts (images_name_fts, rowid, name) VALUES ('delete', old.seq, old.name);
    INSERT INTO images_name_fts (rowid, name) VALUES (new.seq, new.name);
END;
INSERT INTO images_name_fts (images_name_fts) VALUES ('rebuild');

-- Counts of each account's images, in total and per status, OS type, visibility and tag, kept
-- by triggers in the same transaction as every change, so the Image List's total for a single
-- filter is one row read instead of a count over every image.
CREATE TABLE image_counts (
    account_id  TEXT NOT NULL,
    dimension   TEXT NOT NULL,   -- all, status, os_type, visibility, tag_key, tag (key, US, value)
    value       TEXT NOT NULL,
    n           INTEGER NOT NULL,
    PRIMARY KEY (account_id, dimension, value)
);
CREATE TRIGGER image_counts_insert AFTER INSERT ON images BEGIN
    INSERT INTO image_counts (account_id, dimension, value, n) VALUES
        (new.account_id, 'all', '', 1), (new.account_id, 'status', new.status, 1),
        (new.account_id, 'os_type', new.os_type, 1), (new.account_id, 'visibility', new.visibility, 1)
    ON CONFLICT (account_id, dimension, value) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER image_counts_delete AFTER DELETE ON images BEGIN
    UPDATE image_counts SET n = n - 1 WHERE account_id = old.account_id AND (
        dimension = 'all' OR (dimension = 'status' AND value = old.status)
        OR (dimension = 'os_type' AND value = old.os_type) OR (dimension = 'visibility' AND value = old.visibility));
END;
CREATE TRIGGER image_counts_update AFTER UPDATE OF status, os_type, visibility ON images
WHEN old.status IS NOT new.status OR old.os_type IS NOT new.os_type OR old.visibility IS NOT new.visibility
BEGIN
    UPDATE image_counts SET n = n - 1 WHERE account_id = old.account_id AND (
        (dimension = 'status' AND value = old.status)
        OR (dimension = 'os_type' AND value = old.os_type) OR (dimension = 'visibility' AND value = old.visibility));
    INSERT INTO image_counts (account_id, dimension, value, n) VALUES
        (new.account_id, 'status', new.status, 1), (new.account_id, 'os_type', new.os_type, 1),
        (new.account_id, 'visibility', new.visibility, 1)
    ON CONFLICT (account_id, dimension, value) DO UPDATE SET n = n + 1;
END;
-- Tags are only ever inserted and deleted (an edit replaces the image's tags).
CREATE TRIGGER image_tag_counts_insert AFTER INSERT ON image_tags BEGIN
    INSERT INTO image_counts (account_id, dimension, value, n) VALUES
        (new.account_id, 'tag_key', new.tag_key, 1),
        (new.account_id, 'tag', new.tag_key || char(31) || new.tag_value, 1)
    ON CONFLICT (account_id, dimension, value) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER image_tag_counts_delete AFTER DELETE ON image_tags BEGIN
    UPDATE image_counts SET n = n - 1 WHERE account_id = old.account_id AND (
        (dimension = 'tag_key' AND value = old.tag_key)
        OR (dimension = 'tag' AND value = old.tag_key || char(31) || old.tag_value));
END;
