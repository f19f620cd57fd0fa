-- +goose Up
-- The bridge processes stored callbacks; a failed attempt is retried from
-- retry_at with backoff (attempts and last_error record what happened).
ALTER TABLE inbound ADD COLUMN retry_at TIMESTAMP;

-- +goose Down
ALTER TABLE inbound DROP COLUMN retry_at;
