-- Encryption keys: each account's key-encryption keys. The key provider holds the key
-- itself (a KMS key, or for the local provider random bytes wrapped under the master key, in
-- encryption_key_versions); the console keeps its name, state and versions, and enforces the
-- state itself, whatever the provider would allow.
CREATE TABLE encryption_keys (
    id               TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL,
    name             TEXT NOT NULL,
    description      TEXT NOT NULL DEFAULT '',
    provider         TEXT NOT NULL,            -- 'local' or 'aws-kms'
    provider_key_id  TEXT,                     -- the KMS key's KeyId; NULL for local keys
    state            TEXT NOT NULL,            -- enabled, disabled, pending_deletion, deleted
    state_before     TEXT,                     -- what Cancel deletion returns to
    is_default       BIGINT NOT NULL DEFAULT 0,
    version          BIGINT NOT NULL DEFAULT 1,    -- the version new data keys are wrapped under
    created_at       BIGINT NOT NULL,
    created_by       TEXT NOT NULL,
    updated_at       BIGINT NOT NULL,
    rotated_at       BIGINT,
    deletion_at      BIGINT                        -- set while pending deletion
);
-- Names are unique among the account's keys that are not deleted; one default per account.
CREATE UNIQUE INDEX encryption_keys_by_name ON encryption_keys (account_id, name) WHERE state <> 'deleted';
CREATE UNIQUE INDEX encryption_keys_default ON encryption_keys (account_id) WHERE is_default = 1;
CREATE INDEX encryption_keys_to_delete ON encryption_keys (deletion_at) WHERE deletion_at IS NOT NULL;

-- A key's versions. For a local key, material is the version's 256-bit key wrapped under a
-- master-key version ('m<n>:' and base64 of nonce, ciphertext and tag); a KMS key keeps its
-- key material inside KMS, and its rows only count the rotations. A deleted local key's
-- material is erased.
CREATE TABLE encryption_key_versions (
    key_id      TEXT NOT NULL REFERENCES encryption_keys (id) ON DELETE CASCADE,
    version     BIGINT NOT NULL,
    material    TEXT,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (key_id, version)
);

-- An encrypted image's data key, wrapped by a version of one of the account's keys; the
-- bytes are sealed with it (see ARCHITECTURE.md, Encrypted images). NULL key: plain bytes.
-- Create shared Image copies these with the blob they describe.
ALTER TABLE images ADD COLUMN encryption_key_id TEXT;
ALTER TABLE images ADD COLUMN data_key_version BIGINT;
ALTER TABLE images ADD COLUMN data_key_wrapped TEXT;
ALTER TABLE images ADD COLUMN data_key_nonce TEXT;
ALTER TABLE images ADD COLUMN data_key_format TEXT;
CREATE INDEX images_by_encryption_key ON images (encryption_key_id, data_key_version) WHERE encryption_key_id IS NOT NULL;
-- The Image List's Encrypted filter: an account's encrypted images, without walking the rest.
CREATE INDEX images_encrypted_by_account ON images (account_id, seq) WHERE encryption_key_id IS NOT NULL;
