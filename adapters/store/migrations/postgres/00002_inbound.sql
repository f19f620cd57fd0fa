-- +goose Up
-- inbound holds every verified callback before it is acknowledged
-- (persist-before-ack); (channel, dedupe_key) makes redeliveries idempotent.
CREATE TABLE inbound (
    id           BIGSERIAL PRIMARY KEY,
    channel      TEXT NOT NULL,
    dedupe_key   TEXT NOT NULL,
    kind         TEXT NOT NULL,
    from_user    TEXT NOT NULL DEFAULT '',
    to_user      TEXT NOT NULL DEFAULT '',
    sent_at      TIMESTAMPTZ,
    payload      BYTEA NOT NULL, -- sealed with the data key
    received_at  TIMESTAMPTZ NOT NULL,
    processed_at TIMESTAMPTZ,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT NOT NULL DEFAULT '',
    UNIQUE (channel, dedupe_key)
);
CREATE INDEX inbound_pending ON inbound (received_at) WHERE processed_at IS NULL;

-- +goose Down
DROP TABLE inbound;
