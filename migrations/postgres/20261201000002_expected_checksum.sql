-- The checksum a person gave on the Create form ("sha256:…"), verified when the bytes are in.
ALTER TABLE images ADD COLUMN expected_checksum TEXT;
