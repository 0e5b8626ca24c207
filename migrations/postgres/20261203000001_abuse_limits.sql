-- Sessions end after an idle period and each user holds a bounded number of them.
ALTER TABLE sessions ADD COLUMN last_seen_at BIGINT NOT NULL DEFAULT 0;
UPDATE sessions SET last_seen_at = created_at;
CREATE INDEX sessions_by_user ON sessions (user_id, created_at);
CREATE INDEX sessions_by_last_seen ON sessions (last_seen_at);

-- The storage an import has reserved in its account's quota: its Content-Length once known,
-- or, for a body of unknown length, what it has received plus a step, reserved as it streams.
ALTER TABLE images ADD COLUMN bytes_reserved BIGINT;
