-- Incoming bytes on object storage: the multipart upload each import or upload writes to
-- (its id, its parts and its tail, as JSON), so that any console process can go on with it
-- and a sweep can abort those no longer needed. No foreign key: a deleted image's record
-- stays until its bytes are removed. Files need no record; nothing is written for them.
CREATE TABLE incoming_blobs (
    image_id    TEXT NOT NULL,
    kind        TEXT NOT NULL,              -- upload, import
    state       TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (image_id, kind)
);
