-- In-use references belong to the account that added them: each account sees, adds and
-- removes only its own, so one account's reference can neither hide nor remove another's.
-- SQLite cannot change a primary key, so the table is made again with its rows.
CREATE TABLE image_references_by_account (
    image_id      TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    account_id    TEXT NOT NULL,
    kind          TEXT NOT NULL,
    reference_id  TEXT NOT NULL,
    added_by      TEXT NOT NULL,
    added_at      INTEGER NOT NULL,
    PRIMARY KEY (image_id, account_id, kind, reference_id)
);
INSERT INTO image_references_by_account (image_id, account_id, kind, reference_id, added_by, added_at)
    SELECT image_id, account_id, kind, reference_id, added_by, added_at FROM image_references;
DROP TABLE image_references;
ALTER TABLE image_references_by_account RENAME TO image_references;
