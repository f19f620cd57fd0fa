-- +goose Up
-- The catalog: items (kinds of gear, priced per unit in fen), their tags
-- (target fish and uses, searched exactly), the physical units, and the
-- owner's shop settings.
CREATE TABLE items (
    id            BIGSERIAL PRIMARY KEY,
    category      TEXT NOT NULL,
    name          TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    price_per_day BIGINT NOT NULL CHECK (price_per_day >= 0), -- fen
    deposit       BIGINT NOT NULL CHECK (deposit >= 0),       -- fen
    photos        TEXT NOT NULL DEFAULT '[]',                  -- JSON array of URLs or media keys
    active        BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX items_category ON items (category, id);

CREATE TABLE item_tags (
    item_id  BIGINT NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    tag      TEXT NOT NULL,
    position INTEGER NOT NULL, -- keeps the owner's order of tags
    PRIMARY KEY (item_id, tag)
);
CREATE INDEX item_tags_tag ON item_tags (tag, item_id);

CREATE TABLE units (
    id         BIGSERIAL PRIMARY KEY,
    item_id    BIGINT NOT NULL REFERENCES items (id),
    serial     TEXT NOT NULL UNIQUE,
    condition  TEXT NOT NULL,
    status     TEXT NOT NULL, -- available | maintenance | retired
    notes      TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX units_item ON units (item_id, id);

-- One row: the owner's rules. Absent until first saved (defaults apply).
CREATE TABLE shop_settings (
    id                      SMALLINT PRIMARY KEY CHECK (id = 1),
    cleaning_buffer_seconds INTEGER NOT NULL,
    payment_timeout_seconds INTEGER NOT NULL,
    late_fee_per_day        BIGINT NOT NULL, -- fen
    grace_period_seconds    INTEGER NOT NULL,
    deposit_waived          TEXT NOT NULL DEFAULT '[]', -- JSON array of tiers
    opening_hours           TEXT NOT NULL,              -- JSON, 7 days from Sunday
    updated_at              TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE shop_settings;
DROP TABLE units;
DROP TABLE item_tags;
DROP TABLE items;
