-- The end of an image's life: the Recycle Bin (Deleted, then Deleting while the bytes go),
-- Deactivate, and in-use references.

-- A deleted image keeps its row, bytes, tags and history in the Recycle Bin: who deleted it
-- and when, the status Restore brings back, and when the purge destroys it (the retention in
-- force when it was deleted).
ALTER TABLE images ADD COLUMN deleted_at BIGINT;
ALTER TABLE images ADD COLUMN deleted_by TEXT;
ALTER TABLE images ADD COLUMN restore_status TEXT;
ALTER TABLE images ADD COLUMN destroy_at BIGINT;
CREATE INDEX images_to_destroy ON images (destroy_at) WHERE destroy_at IS NOT NULL;

-- Days a deleted image stays in the Recycle Bin (1 to 365).
ALTER TABLE accounts ADD COLUMN retention_days INTEGER NOT NULL DEFAULT 7;

-- What uses an image ("virtual-machine vm-12"); Delete and Destroy are refused while any is
-- left. The account is the one whose user added it: the owner's, or one the image is shared
-- with.
CREATE TABLE image_references (
    image_id      TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    kind          TEXT NOT NULL,
    reference_id  TEXT NOT NULL,
    account_id    TEXT NOT NULL,
    added_by      TEXT NOT NULL,
    added_at      BIGINT NOT NULL,
    PRIMARY KEY (image_id, kind, reference_id)
);
