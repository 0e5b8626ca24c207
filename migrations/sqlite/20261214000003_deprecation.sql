-- Deprecation and hidden images. From `deprecate_at` (ms; NULL: never) an image is
-- Deprecated: it still works, but default lists leave it out. `os_hidden` (Glance's) leaves
-- it out of default lists from the start. The lists count and page what they leave out with
-- these partial indexes, which hold only such images.
ALTER TABLE images ADD COLUMN deprecate_at INTEGER;
ALTER TABLE images ADD COLUMN os_hidden INTEGER NOT NULL DEFAULT 0;
CREATE INDEX images_hidden_by_account ON images (account_id, seq) WHERE os_hidden = 1;
CREATE INDEX images_deprecating_by_account ON images (account_id, deprecate_at) WHERE deprecate_at IS NOT NULL;
