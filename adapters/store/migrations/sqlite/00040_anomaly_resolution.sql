-- +goose Up
-- The owner marks a payment anomaly resolved with a note: who, when and why
-- are kept with it. The anomaly is the record reconciliation works from, so
-- the database keeps it honest: its facts never change, it is resolved at
-- most once and only with who and why, and it is never deleted.
ALTER TABLE pay_anomalies ADD COLUMN resolved_at TIMESTAMP;
ALTER TABLE pay_anomalies ADD COLUMN resolved_by TEXT NOT NULL DEFAULT '';
ALTER TABLE pay_anomalies ADD COLUMN resolution TEXT NOT NULL DEFAULT '';
CREATE INDEX pay_anomalies_open ON pay_anomalies (id) WHERE resolved_at IS NULL;

-- +goose StatementBegin
CREATE TRIGGER pay_anomalies_resolve_once BEFORE UPDATE ON pay_anomalies
WHEN OLD.resolved_at IS NOT NULL
  OR NEW.resolved_at IS NULL OR NEW.resolved_by = '' OR NEW.resolution = ''
  OR NEW.id IS NOT OLD.id OR NEW.kind IS NOT OLD.kind OR NEW.dedupe_key IS NOT OLD.dedupe_key
  OR NEW.source IS NOT OLD.source OR NEW.order_id IS NOT OLD.order_id OR NEW.out_trade_no IS NOT OLD.out_trade_no
  OR NEW.out_refund_no IS NOT OLD.out_refund_no OR NEW.amount IS NOT OLD.amount OR NEW.expected IS NOT OLD.expected
  OR NEW.detail IS NOT OLD.detail OR NEW.created_at IS NOT OLD.created_at
BEGIN
    SELECT RAISE(ABORT, 'pay_anomalies: an open anomaly is resolved once, with who and why; nothing else changes');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER pay_anomalies_no_delete BEFORE DELETE ON pay_anomalies
BEGIN
    SELECT RAISE(ABORT, 'pay_anomalies are never deleted');
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER pay_anomalies_no_delete;
DROP TRIGGER pay_anomalies_resolve_once;
DROP INDEX pay_anomalies_open;
ALTER TABLE pay_anomalies DROP COLUMN resolution;
ALTER TABLE pay_anomalies DROP COLUMN resolved_by;
ALTER TABLE pay_anomalies DROP COLUMN resolved_at;
