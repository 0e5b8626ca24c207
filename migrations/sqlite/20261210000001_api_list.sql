-- The image API's list runs in SQL: its default order (newest first, then id) has an index,
-- and a property filter finds the account's images with that property from an index, so
-- image_properties now names the image's account. SQLite cannot add a NOT NULL column
-- without a default, so the table is made again with its rows.
CREATE INDEX images_by_created_at ON images (account_id, created_at, id);

CREATE TABLE image_properties_by_account (
    image_id    TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    account_id  TEXT NOT NULL,
    prop_key    TEXT NOT NULL,
    prop_value  TEXT NOT NULL,
    PRIMARY KEY (image_id, prop_key)
);
INSERT INTO image_properties_by_account (image_id, account_id, prop_key, prop_value)
    SELECT p.image_id, i.account_id, p.prop_key, p.prop_value
    FROM image_properties p JOIN images i ON i.id = p.image_id;
DROP TABLE image_properties;
ALTER TABLE image_properties_by_account RENAME TO image_properties;
CREATE INDEX image_properties_by_value ON image_properties (account_id, prop_key, prop_value);
