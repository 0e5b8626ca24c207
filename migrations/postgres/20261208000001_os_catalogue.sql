-- The OS catalogue: an image's OS type is now a system platform of an operating system
-- (Linux or Windows), with a system version. The platform stays in `os_type`, so each
-- existing image keeps its distribution as a Linux platform; the family follows from the
-- platform; the version is new and unknown for existing images (NULL).
ALTER TABLE images ADD COLUMN os_version TEXT;
