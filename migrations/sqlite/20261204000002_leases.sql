-- Who works on what, when several console processes share the database: a lease per upload
-- being written ("upload:<image id>") and per import queued or running ("import:<image id>"),
-- held by one process and renewed by its heartbeat. A lease past its expiry is free: the
-- process that held it stopped, and another takes the work over.
CREATE TABLE leases (
    resource    TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,              -- the console process, random per start
    token       TEXT NOT NULL,              -- this claim: a late release never ends a newer one
    expires_at  INTEGER NOT NULL
);
CREATE INDEX leases_by_holder ON leases (holder, token);
