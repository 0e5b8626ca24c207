-- Free-form image properties set through the image API (Glance's additional properties,
-- such as owner_specified.openstack.sha256), kept with the image and removed with it.
CREATE TABLE image_properties (
    image_id    TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    prop_key    TEXT NOT NULL,
    prop_value  TEXT NOT NULL,
    PRIMARY KEY (image_id, prop_key)
);
