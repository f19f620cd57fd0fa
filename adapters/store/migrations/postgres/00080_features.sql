-- +goose Up
-- feature_flags: gradual rollout of customer-facing features. A member gets
-- a flag when it is not denied and is allowed, or when the flag is enabled,
-- not paused, the member's tier is targeted (tiers empty: every tier) and
-- the member's bucket (SHA-256 of flag key and member id, 0–9999) is below
-- percent × 100. allow and deny are JSON arrays of
-- {"entry": what the owner typed, "member_id": n} or {"entry", "staff": userid}.
-- The guard rail compares the cohort with the rest on kpi over
-- window_seconds and, when the cohort is clearly worse (at least min_sample
-- in each group, worse by more than threshold and significant), pauses it.
CREATE TABLE feature_flags (
    key            TEXT PRIMARY KEY,
    description    TEXT NOT NULL DEFAULT '',
    enabled        BOOLEAN NOT NULL DEFAULT FALSE,
    percent        INTEGER NOT NULL DEFAULT 0 CHECK (percent BETWEEN 0 AND 100),
    allow          TEXT NOT NULL DEFAULT '[]',
    deny           TEXT NOT NULL DEFAULT '[]',
    tiers          TEXT NOT NULL DEFAULT '[]',
    kpi            TEXT NOT NULL DEFAULT '',
    min_sample     INTEGER NOT NULL DEFAULT 30,
    threshold      DOUBLE PRECISION NOT NULL DEFAULT 0.1,
    window_seconds INTEGER NOT NULL DEFAULT 604800,
    paused_at      TIMESTAMPTZ,
    paused_reason  TEXT NOT NULL DEFAULT '',
    version        INTEGER NOT NULL DEFAULT 1,
    updated_at     TIMESTAMPTZ NOT NULL,
    updated_by     TEXT NOT NULL DEFAULT ''
);

-- feature_audit: every change of a flag, by the owner or the guard rail,
-- with the flag before and after (JSON) and, for a pause, the figures.
-- Append-only (triggers below).
CREATE TABLE feature_audit (
    id      BIGSERIAL PRIMARY KEY,
    flag    TEXT NOT NULL,
    at      TIMESTAMPTZ NOT NULL,
    actor   TEXT NOT NULL,       -- owner:<username> | guard
    action  TEXT NOT NULL,       -- update | pause | resume
    reason  TEXT NOT NULL DEFAULT '',
    state_before TEXT NOT NULL,
    state_after  TEXT NOT NULL,
    figures TEXT NOT NULL DEFAULT ''
);
CREATE INDEX feature_audit_flag ON feature_audit (flag, id);

-- +goose StatementBegin
CREATE FUNCTION feature_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'feature_audit is append-only';
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
CREATE TRIGGER feature_audit_no_change BEFORE UPDATE OR DELETE ON feature_audit
    FOR EACH ROW EXECUTE FUNCTION feature_audit_append_only();

-- +goose Down
DROP TRIGGER feature_audit_no_change ON feature_audit;
DROP FUNCTION feature_audit_append_only();
DROP TABLE feature_audit;
DROP TABLE feature_flags;
