-- Lineage: every ancestor of an image made from another (Create shared Image, Replicate),
-- nearest first (depth 1 is its source), with the account that held each one. Written when
-- the image is made, copied from its source's own lineage, so the chain is still known after
-- an ancestor is destroyed.
CREATE TABLE image_lineage (
    image_id TEXT NOT NULL,
    depth BIGINT NOT NULL,
    ancestor_id TEXT NOT NULL,
    ancestor_account_id TEXT NOT NULL,
    PRIMARY KEY (image_id, depth)
);

-- Images made from another before lineage was kept: their source is known.
INSERT INTO image_lineage (image_id, depth, ancestor_id, ancestor_account_id)
SELECT id, 1, source_image_id, account_id FROM images WHERE source_image_id IS NOT NULL;
