-- +goose Up
-- Evidence chains per order, and the pickup and return inspections.
--
-- evidence.content is sealed with the data key (AES-GCM, bound to order and
-- seq); NULL for External items (call recordings kept on disk). Each row's
-- link = SHA-256(prev_link ‖ content_hash ‖ metadata); evidence_heads keeps
-- where each chain ends, so deleting the last items shows too.
CREATE TABLE evidence_heads (
    order_id   BIGINT PRIMARY KEY REFERENCES orders (id),
    item_count INTEGER NOT NULL,
    link       TEXT NOT NULL
);

CREATE TABLE evidence (
    id           BIGSERIAL PRIMARY KEY,
    order_id     BIGINT NOT NULL REFERENCES orders (id),
    seq          INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    media_type   TEXT NOT NULL DEFAULT '',
    name         TEXT NOT NULL DEFAULT '',
    ref          TEXT NOT NULL DEFAULT '',
    actor        TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    size_bytes   BIGINT NOT NULL,
    is_external  BOOLEAN NOT NULL DEFAULT FALSE,
    content      BYTEA, -- sealed
    content_hash TEXT NOT NULL,
    prev_link    TEXT NOT NULL,
    link         TEXT NOT NULL,
    UNIQUE (order_id, seq)
);

CREATE TABLE inspections (
    id                  BIGSERIAL PRIMARY KEY,
    order_id            BIGINT NOT NULL REFERENCES orders (id),
    kind                TEXT NOT NULL, -- pickup | return
    staff               TEXT NOT NULL,
    inspected_at        TIMESTAMPTZ NOT NULL,
    notes               TEXT NOT NULL DEFAULT '',
    evidence_id         BIGINT NOT NULL REFERENCES evidence (id),
    confirmed_at        TIMESTAMPTZ,
    confirmed_by        BIGINT,
    confirm_evidence_id BIGINT REFERENCES evidence (id),
    UNIQUE (order_id, kind)
);

CREATE TABLE inspection_units (
    inspection_id BIGINT NOT NULL REFERENCES inspections (id),
    unit_id       BIGINT NOT NULL REFERENCES units (id),
    condition     TEXT NOT NULL,
    notes         TEXT NOT NULL DEFAULT '',
    photos        TEXT NOT NULL DEFAULT '[]', -- JSON array of evidence ids
    PRIMARY KEY (inspection_id, unit_id)
);

-- +goose Down
DROP TABLE inspection_units;
DROP TABLE inspections;
DROP TABLE evidence;
DROP TABLE evidence_heads;
