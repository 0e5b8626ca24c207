-- Sharing images between accounts, Create shared Image, and each account's Work History.

-- One row per image and account it is shared with. member_known records whether an account
-- with that ID existed when the image was shared: a share to an unknown ID is stored and
-- answered exactly like any other (so sharing never tells whether an account exists), but it
-- is never delivered, not even to an account created later with that ID. Accounts are never
-- deleted, so a known ID always names the account it named then.
CREATE TABLE image_shares (
    image_id           TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    owner_account_id   TEXT NOT NULL,
    member_account_id  TEXT NOT NULL,
    member_known       BIGINT NOT NULL,
    status             TEXT NOT NULL,       -- pending, accepted, rejected, stopped
    requested_by       TEXT NOT NULL,
    requested_at       BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    PRIMARY KEY (image_id, member_account_id)
);
CREATE INDEX image_shares_by_member ON image_shares (member_account_id, member_known, status, requested_at);

-- How many images point at each stored file. Create shared Image makes a second image of the
-- same bytes; the file goes only when the last of them is deleted.
CREATE TABLE image_blobs (
    blob_key  TEXT PRIMARY KEY,
    refs      BIGINT NOT NULL
);
INSERT INTO image_blobs (blob_key, refs)
SELECT blob_key, COUNT(*) FROM images WHERE blob_key IS NOT NULL GROUP BY blob_key;

-- The image whose bytes a shared image reuses.
ALTER TABLE images ADD COLUMN source_image_id TEXT;
CREATE INDEX images_by_blob ON images (blob_key) WHERE blob_key IS NOT NULL;

-- The account's Work History page, newest first.
CREATE INDEX image_events_by_account ON image_events (account_id, id);
