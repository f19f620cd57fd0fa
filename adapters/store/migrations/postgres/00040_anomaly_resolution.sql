-- +goose Up
-- The owner marks a payment anomaly resolved with a note: who, when and why
-- are kept with it. The anomaly is the record reconciliation works from, so
-- the database keeps it honest: its facts never change, it is resolved at
-- most once and only with who and why, and it is never deleted.
ALTER TABLE pay_anomalies ADD COLUMN resolved_at TIMESTAMPTZ;
ALTER TABLE pay_anomalies ADD COLUMN resolved_by TEXT NOT NULL DEFAULT '';
ALTER TABLE pay_anomalies ADD COLUMN resolution TEXT NOT NULL DEFAULT '';
CREATE INDEX pay_anomalies_open ON pay_anomalies (id) WHERE resolved_at IS NULL;

-- +goose StatementBegin
CREATE FUNCTION pay_anomalies_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'pay_anomalies are never deleted';
    END IF;
    IF OLD.resolved_at IS NOT NULL
       OR NEW.resolved_at IS NULL OR NEW.resolved_by = '' OR NEW.resolution = ''
       OR (NEW.id, NEW.kind, NEW.dedupe_key, NEW.source, NEW.order_id, NEW.out_trade_no, NEW.out_refund_no,
           NEW.amount, NEW.expected, NEW.detail, NEW.created_at)
          IS DISTINCT FROM
          (OLD.id, OLD.kind, OLD.dedupe_key, OLD.source, OLD.order_id, OLD.out_trade_no, OLD.out_refund_no,
           OLD.amount, OLD.expected, OLD.detail, OLD.created_at) THEN
        RAISE EXCEPTION 'pay_anomalies: an open anomaly is resolved once, with who and why; nothing else changes';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
CREATE TRIGGER pay_anomalies_guard BEFORE UPDATE OR DELETE ON pay_anomalies
    FOR EACH ROW EXECUTE FUNCTION pay_anomalies_guard();

-- +goose Down
DROP TRIGGER pay_anomalies_guard ON pay_anomalies;
DROP FUNCTION pay_anomalies_guard();
DROP INDEX pay_anomalies_open;
ALTER TABLE pay_anomalies DROP COLUMN resolution;
ALTER TABLE pay_anomalies DROP COLUMN resolved_by;
ALTER TABLE pay_anomalies DROP COLUMN resolved_at;
