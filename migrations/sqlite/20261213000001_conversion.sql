-- Conversion on import. `convert_to` is the format an image's bytes become once received and
-- inspected ('qcow2' or 'raw'; NULL keeps them as they arrived). While the image is
-- Converting its row names the file as received (format, size, hashes, blob); once Active,
-- the converted bytes are the image's and the file as received is kept in `source_*`.
ALTER TABLE images ADD COLUMN convert_to TEXT;
ALTER TABLE images ADD COLUMN source_disk_format TEXT;
ALTER TABLE images ADD COLUMN source_size_bytes INTEGER;
ALTER TABLE images ADD COLUMN source_sha512 TEXT;
ALTER TABLE images ADD COLUMN source_md5 TEXT;

-- The search index's facets gain a letter for Converting (made again as in the OS catalogue
-- migration; the column is virtual, so existing documents keep their letters).
DROP TRIGGER image_search_insert;
DROP TRIGGER image_search_update;
DROP TRIGGER image_search_tag_insert;
DROP TRIGGER image_search_tag_delete;
ALTER TABLE images DROP COLUMN search_facets;
ALTER TABLE images ADD COLUMN search_facets TEXT GENERATED ALWAYS AS (
        char(2) || 's' || CASE status WHEN 'queued' THEN 'q' WHEN 'uploading' THEN 'u' WHEN 'importing' THEN 'i' WHEN 'converting' THEN 'c' WHEN 'active' THEN 'a' WHEN 'failed' THEN 'f' WHEN 'deactivated' THEN 'd' WHEN 'deleted' THEN 'r' WHEN 'deleting' THEN 'e' END
        || char(2) || 'o' || CASE os_type WHEN 'alma' THEN 'a' WHEN 'centos' THEN 'c' WHEN 'oracle' THEN 'o' WHEN 'rhel' THEN 'h' WHEN 'rocky' THEN 'k' WHEN 'ubuntu' THEN 'u' WHEN 'windows-server' THEN 'w' WHEN 'windows' THEN 'n' WHEN '' THEN 'x' END
        || char(2) || 'v' || CASE visibility WHEN 'private' THEN 'p' WHEN 'shared' THEN 's' END
) VIRTUAL;

CREATE TRIGGER image_search_insert AFTER INSERT ON images BEGIN
    INSERT INTO image_search (rowid, name, short, facets, tags) VALUES (
        (SELECT a.seq FROM accounts a WHERE a.id = new.account_id) * 1099511627776 + new.seq,
        lower(new.name), new.search_short, new.search_facets,
        COALESCE((SELECT group_concat(char(4) || t.tag_key || char(5) || t.tag_value || char(4), '') FROM image_tags t WHERE t.image_id = new.id), ''));
END;
CREATE TRIGGER image_search_update AFTER UPDATE OF name, status, os_type, visibility ON images
WHEN old.name IS NOT new.name OR old.status IS NOT new.status OR old.os_type IS NOT new.os_type
    OR old.visibility IS NOT new.visibility
BEGIN
    DELETE FROM image_search WHERE rowid = (SELECT a.seq FROM accounts a WHERE a.id = old.account_id) * 1099511627776 + old.seq;
    INSERT INTO image_search (rowid, name, short, facets, tags) VALUES (
        (SELECT a.seq FROM accounts a WHERE a.id = new.account_id) * 1099511627776 + new.seq,
        lower(new.name), new.search_short, new.search_facets,
        COALESCE((SELECT group_concat(char(4) || t.tag_key || char(5) || t.tag_value || char(4), '') FROM image_tags t WHERE t.image_id = new.id), ''));
END;
CREATE TRIGGER image_search_tag_insert AFTER INSERT ON image_tags BEGIN
    DELETE FROM image_search WHERE rowid = (
        SELECT a.seq * 1099511627776 + i.seq FROM images i JOIN accounts a ON a.id = i.account_id
        WHERE i.id = new.image_id);
    INSERT INTO image_search (rowid, name, short, facets, tags)
    SELECT a.seq * 1099511627776 + i.seq, lower(i.name), i.search_short, i.search_facets,
        COALESCE((SELECT group_concat(char(4) || t.tag_key || char(5) || t.tag_value || char(4), '') FROM image_tags t WHERE t.image_id = i.id), '')
    FROM images i JOIN accounts a ON a.id = i.account_id WHERE i.id = new.image_id;
END;
CREATE TRIGGER image_search_tag_delete AFTER DELETE ON image_tags BEGIN
    DELETE FROM image_search WHERE rowid = (
        SELECT a.seq * 1099511627776 + i.seq FROM images i JOIN accounts a ON a.id = i.account_id
        WHERE i.id = old.image_id);
    INSERT INTO image_search (rowid, name, short, facets, tags)
    SELECT a.seq * 1099511627776 + i.seq, lower(i.name), i.search_short, i.search_facets,
        COALESCE((SELECT group_concat(char(4) || t.tag_key || char(5) || t.tag_value || char(4), '') FROM image_tags t WHERE t.image_id = i.id), '')
    FROM images i JOIN accounts a ON a.id = i.account_id WHERE i.id = old.image_id;
END;
