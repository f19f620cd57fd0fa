-- +goose Up
-- outbox: every call out (WeChat/WeCom sends, webhooks) is a row first,
-- written in the same transaction as the change that causes it, then
-- delivered by a worker with retries and backoff. dedupe_key makes
-- enqueueing idempotent and is the receiver's idempotency key.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL,
    dedupe_key      TEXT NOT NULL UNIQUE,
    payload         BLOB NOT NULL, -- sealed with the data key
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    locked_until    TIMESTAMP,
    last_error      TEXT NOT NULL DEFAULT '',
    delivered_at    TIMESTAMP,
    dead_at         TIMESTAMP,
    created_at      TIMESTAMP NOT NULL
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL AND dead_at IS NULL;

-- +goose Down
DROP TABLE outbox;
