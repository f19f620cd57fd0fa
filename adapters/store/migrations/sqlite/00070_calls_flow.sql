-- +goose Up
-- The call flow: who was rung (WeCom userids or the customer), when the
-- customer rated the call, and the ringing calls the timeout job scans.
ALTER TABLE calls ADD COLUMN rung TEXT NOT NULL DEFAULT '';
ALTER TABLE calls ADD COLUMN rated_at TIMESTAMP;
CREATE INDEX calls_ringing ON calls (started_at) WHERE state = 'ringing';

-- +goose Down
DROP INDEX calls_ringing;
ALTER TABLE calls DROP COLUMN rated_at;
ALTER TABLE calls DROP COLUMN rung;
