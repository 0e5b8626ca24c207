-- The image API's list runs in SQL: its default order (newest first, then id) has an index,
-- and a property filter finds the account's images with that property from an index, so
-- image_properties now names the image's account. Values (up to 1,024 characters) can pass
-- a B-tree entry's size limit, so the index holds their MD5 and queries compare both.
CREATE INDEX images_by_created_at ON images (account_id, created_at, id);

ALTER TABLE image_properties ADD COLUMN account_id TEXT;
UPDATE image_properties p SET account_id = i.account_id FROM images i WHERE i.id = p.image_id;
ALTER TABLE image_properties ALTER COLUMN account_id SET NOT NULL;
CREATE INDEX image_properties_by_value ON image_properties (account_id, prop_key, md5(prop_value));
