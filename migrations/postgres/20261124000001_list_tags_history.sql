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

-- One index per sort order and filter of the Image List, each led by the account. Sorts
-- tie-break on id in the same direction, so one index serves both directions.
DROP INDEX images_by_account;
CREATE INDEX images_by_created ON images (account_id, created_at, id);
CREATE INDEX images_by_name ON images (account_id, name, id);
CREATE INDEX images_by_size ON images (account_id, size_bytes, id);
CREATE INDEX images_by_account_status ON images (account_id, status, created_at, id);
CREATE INDEX images_by_os_type ON images (account_id, os_type, created_at, id);
CREATE INDEX images_by_visibility ON images (account_id, visibility, created_at, id);
-- Size sorts put images without a size last in both directions.
CREATE INDEX images_by_size_desc ON images (account_id, size_bytes DESC NULLS LAST, id DESC);

-- Name search: a trigram index lets lower(name) LIKE '%term%' (3 or more characters) skip
-- most rows. Names are ASCII by rule, so lower() is exact.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX images_name_trigrams ON images USING gin (lower(name) gin_trgm_ops);

-- Counts of each account's images, in total and per status, OS type, visibility and tag, kept
-- by triggers in the same transaction as every change, so the Image List's total for a single
-- filter is one row read instead of a count over every image.
CREATE TABLE image_counts (
    account_id  TEXT NOT NULL,
    dimension   TEXT NOT NULL,   -- all, status, os_type, visibility, tag_key, tag (key, US, value)
    value       TEXT NOT NULL,
    n           BIGINT NOT NULL,
    PRIMARY KEY (account_id, dimension, value)
);

-- Statement-level triggers read every changed row at once (transition tables), so a bulk
-- insert updates each counter once, and an UPDATE that changes no counted column writes nothing.
-- Counters are written in key order, so concurrent changes lock them in the same order.
CREATE FUNCTION image_counts_after_insert() RETURNS trigger AS $$
BEGIN
    INSERT INTO image_counts (account_id, dimension, value, n)
    SELECT account_id, dimension, value, COUNT(*) FROM (
        SELECT account_id, 'all' AS dimension, '' AS value FROM new_rows
        UNION ALL SELECT account_id, 'status', status FROM new_rows
        UNION ALL SELECT account_id, 'os_type', os_type FROM new_rows
        UNION ALL SELECT account_id, 'visibility', visibility FROM new_rows
    ) added GROUP BY account_id, dimension, value ORDER BY account_id, dimension, value
    ON CONFLICT (account_id, dimension, value) DO UPDATE SET n = image_counts.n + EXCLUDED.n;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE FUNCTION image_counts_after_delete() RETURNS trigger AS $$
BEGIN
    UPDATE image_counts c SET n = c.n - removed.n FROM (
        SELECT account_id, dimension, value, COUNT(*) AS n FROM (
            SELECT account_id, 'all' AS dimension, '' AS value FROM old_rows
            UNION ALL SELECT account_id, 'status', status FROM old_rows
            UNION ALL SELECT account_id, 'os_type', os_type FROM old_rows
            UNION ALL SELECT account_id, 'visibility', visibility FROM old_rows
        ) gone GROUP BY account_id, dimension, value
    ) removed
    WHERE c.account_id = removed.account_id AND c.dimension = removed.dimension AND c.value = removed.value;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE FUNCTION image_counts_after_update() RETURNS trigger AS $$
BEGIN
    INSERT INTO image_counts (account_id, dimension, value, n)
    SELECT account_id, dimension, value, SUM(delta) FROM (
        SELECT o.account_id, 'status' AS dimension, o.status AS value, -1 AS delta FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE o.status <> n.status
        UNION ALL SELECT n.account_id, 'status', n.status, 1 FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE o.status <> n.status
        UNION ALL SELECT o.account_id, 'os_type', o.os_type, -1 FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE o.os_type <> n.os_type
        UNION ALL SELECT n.account_id, 'os_type', n.os_type, 1 FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE o.os_type <> n.os_type
        UNION ALL SELECT o.account_id, 'visibility', o.visibility, -1 FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE o.visibility <> n.visibility
        UNION ALL SELECT n.account_id, 'visibility', n.visibility, 1 FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE o.visibility <> n.visibility
    ) changed GROUP BY account_id, dimension, value HAVING SUM(delta) <> 0
    ORDER BY account_id, dimension, value
    ON CONFLICT (account_id, dimension, value) DO UPDATE SET n = image_counts.n + EXCLUDED.n;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER image_counts_after_insert AFTER INSERT ON images
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION image_counts_after_insert();
CREATE TRIGGER image_counts_after_delete AFTER DELETE ON images
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION image_counts_after_delete();
CREATE TRIGGER image_counts_after_update AFTER UPDATE ON images
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION image_counts_after_update();

-- Tags are only ever inserted and deleted (an edit replaces the image's tags).
CREATE FUNCTION image_tag_counts_after_insert() RETURNS trigger AS $$
BEGIN
    INSERT INTO image_counts (account_id, dimension, value, n)
    SELECT account_id, dimension, value, COUNT(*) FROM (
        SELECT account_id, 'tag_key' AS dimension, tag_key AS value FROM new_rows
        UNION ALL SELECT account_id, 'tag', tag_key || chr(31) || tag_value FROM new_rows
    ) added GROUP BY account_id, dimension, value ORDER BY account_id, dimension, value
    ON CONFLICT (account_id, dimension, value) DO UPDATE SET n = image_counts.n + EXCLUDED.n;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE FUNCTION image_tag_counts_after_delete() RETURNS trigger AS $$
BEGIN
    UPDATE image_counts c SET n = c.n - removed.n FROM (
        SELECT account_id, dimension, value, COUNT(*) AS n FROM (
            SELECT account_id, 'tag_key' AS dimension, tag_key AS value FROM old_rows
            UNION ALL SELECT account_id, 'tag', tag_key || chr(31) || tag_value FROM old_rows
        ) gone GROUP BY account_id, dimension, value
    ) removed
    WHERE c.account_id = removed.account_id AND c.dimension = removed.dimension AND c.value = removed.value;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER image_tag_counts_after_insert AFTER INSERT ON image_tags
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION image_tag_counts_after_insert();
CREATE TRIGGER image_tag_counts_after_delete AFTER DELETE ON image_tags
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION image_tag_counts_after_delete();
