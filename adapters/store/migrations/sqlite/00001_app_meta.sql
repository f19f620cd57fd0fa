-- +goose Up
-- app_meta holds facts about this installation, e.g. the fingerprint of the
-- data key its evidence is encrypted with.
CREATE TABLE app_meta (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- +goose Down
DROP TABLE app_meta;
