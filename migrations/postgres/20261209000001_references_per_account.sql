-- In-use references belong to the account that added them: each account sees, adds and
-- removes only its own, so one account's reference can neither hide nor remove another's.
ALTER TABLE image_references DROP CONSTRAINT image_references_pkey;
ALTER TABLE image_references ADD PRIMARY KEY (image_id, account_id, kind, reference_id);
