-- Image attributes, tags, Work History, download-link revocation, and the indexes that keep
-- the Image List fast with many images in one account.

ALTER TABLE images ADD COLUMN architecture TEXT NOT NULL DEFAULT 'x86_64';
ALTER TABLE images ADD COLUMN boot_mode TEXT NOT NULL DEFAULT 'bios';
ALTER TABLE images ADD COLUMN features TEXT NOT NULL DEFAULT '';
-- Bumped to revoke every download link issued before.
ALTER TABLE images ADD COLUMN link_generation BIGINT NOT NULL DEFAULT 0;

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
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  TEXT NOT NULL,
    image_id    TEXT NOT NULL,
    image_name  TEXT NOT NULL,
    topic       TEXT NOT NULL,
    changes     TEXT NOT NULL,   -- JSON array of {field, old, new}
    message     TEXT NOT NULL,
    result      TEXT NOT NULL,
    worker      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX image_events_by_image ON image_events (account_id, image_id, id);

-- One index per sort order and filter of the Image List, each led by the account.
DROP INDEX images_by_account;
CREATE INDEX images_by_created ON images (account_id, created_at DESC, id);
CREATE INDEX images_by_name ON images (account_id, name, id);
CREATE INDEX images_by_size ON images (account_id, size_bytes, id);
CREATE INDEX images_by_account_status ON images (account_id, status, created_at DESC, id);
CREATE INDEX images_by_os_type ON images (account_id, os_type, created_at DESC, id);
CREATE INDEX images_by_visibility ON images (account_id, visibility, created_at DESC, id);
