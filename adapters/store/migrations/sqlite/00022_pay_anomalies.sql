-- +goose Up
-- pay_anomalies records what the payment flow met and did not apply: a
-- verified WeChat Pay notification for an order we do not know, an amount,
-- appid or mchid that does not match, money for an order that no longer
-- wanted it (refunded automatically), a refund that failed. Reconciliation
-- and the owner console read it. dedupe_key makes recording idempotent (a
-- redelivered notification is recorded once).
CREATE TABLE pay_anomalies (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT NOT NULL,
    dedupe_key    TEXT NOT NULL UNIQUE,
    source        TEXT NOT NULL DEFAULT '', -- "inbound:12", "query", "refund"
    order_id      INTEGER,                  -- no foreign key: an unknown order has none
    out_trade_no  TEXT NOT NULL DEFAULT '',
    out_refund_no TEXT NOT NULL DEFAULT '',
    amount        INTEGER NOT NULL DEFAULT 0, -- fen, as WeChat Pay reported it
    expected      INTEGER NOT NULL DEFAULT 0, -- fen, as we expected it
    detail        TEXT NOT NULL DEFAULT '',
    created_at    TIMESTAMP NOT NULL
);
CREATE INDEX pay_anomalies_created ON pay_anomalies (created_at, id);

-- The payment jobs look for attempts and refunds still pending.
CREATE INDEX payments_pending ON payments (created_at) WHERE state = 'pending';
CREATE INDEX refunds_pending ON refunds (created_at) WHERE state = 'pending';
-- Reconciliation walks payments by creation time; staff list orders by state.
CREATE INDEX payments_created ON payments (created_at, order_id);
CREATE INDEX orders_state ON orders (state, id);

-- +goose Down
DROP INDEX orders_state;
DROP INDEX payments_created;
DROP INDEX refunds_pending;
DROP INDEX payments_pending;
DROP TABLE pay_anomalies;
