-- Sign-in, sign-up and failed API token limits shared by every console process: one row
-- per key ("sign-in:address:10.0.0.7") with its theoretical arrival time (GCRA), in ms since
-- the epoch. A row whose time has passed is as good as none, and the sweep removes it. (On
-- SQLite, which one process holds, the limits stay in that process.)
CREATE TABLE rate_limits (
    key  TEXT PRIMARY KEY,
    tat  BIGINT NOT NULL
);
