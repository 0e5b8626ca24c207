-- Conversion on import. `convert_to` is the format an image's bytes become once received and
-- inspected ('qcow2' or 'raw'; NULL keeps them as they arrived). While the image is
-- Converting its row names the file as received (format, size, hashes, blob); once Active,
-- the converted bytes are the image's and the file as received is kept in `source_*`.
ALTER TABLE images ADD COLUMN convert_to TEXT;
ALTER TABLE images ADD COLUMN source_disk_format TEXT;
ALTER TABLE images ADD COLUMN source_size_bytes BIGINT;
ALTER TABLE images ADD COLUMN source_sha512 TEXT;
ALTER TABLE images ADD COLUMN source_md5 TEXT;
