-- Signed images. An account's signing certificates (X.509, stored as PEM), and on each image
-- Glance's four signature properties as set (each may be missing until the bytes arrive) and,
-- once its bytes verified, what the verification used: the certificate's subject and
-- SHA-256 fingerprint (kept when the certificate is deleted) and the time.
CREATE TABLE signing_certificates (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    issuer TEXT NOT NULL,
    fingerprint_sha256 TEXT NOT NULL,
    key_kind TEXT NOT NULL,
    key_bits BIGINT NOT NULL,
    not_before_ms BIGINT NOT NULL,
    not_after_ms BIGINT NOT NULL,
    pem TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX signing_certificates_by_fingerprint ON signing_certificates (account_id, fingerprint_sha256);

ALTER TABLE images ADD COLUMN signature TEXT;
ALTER TABLE images ADD COLUMN signature_hash_method TEXT;
ALTER TABLE images ADD COLUMN signature_key_type TEXT;
ALTER TABLE images ADD COLUMN signature_certificate_id TEXT;
ALTER TABLE images ADD COLUMN signature_verified_at BIGINT;
ALTER TABLE images ADD COLUMN signature_subject TEXT;
ALTER TABLE images ADD COLUMN signature_fingerprint TEXT;
-- The Signed filter reads the rows (the counters and search index do not know it).
CREATE INDEX images_signed_by_account ON images (account_id, seq) WHERE signature_verified_at IS NOT NULL;
-- A certificate is in use while an image waiting for its bytes names it.
CREATE INDEX images_by_signature_certificate ON images (signature_certificate_id) WHERE signature_certificate_id IS NOT NULL;
