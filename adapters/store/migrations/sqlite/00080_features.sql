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
    threshold      REAL NOT NULL DEFAULT 0.1,
    window_seconds INTEGER NOT NULL DEFAULT 604800,
    paused_at      TIMESTAMP,
    paused_reason  TEXT NOT NULL DEFAULT '',
    version        INTEGER NOT NULL DEFAULT 1,
    updated_at     TIMESTAMP NOT NULL,
    updated_by     TEXT NOT NULL DEFAULT ''
);

-- feature_audit: every change of a flag, by the owner or the guard rail,
-- with the flag before and after (JSON) and, for a pause, the figures.
-- Append-only (triggers below).
CREATE TABLE feature_audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    flag    TEXT NOT NULL,
    at      TIMESTAMP NOT NULL,
    actor   TEXT NOT NULL,       -- owner:<username> | guard
    action  TEXT NOT NULL,       -- update | pause | resume
    reason  TEXT NOT NULL DEFAULT '',
    state_before TEXT NOT NULL,
    state_after  TEXT NOT NULL,
    figures TEXT NOT NULL DEFAULT ''
);
CREATE INDEX feature_audit_flag ON feature_audit (flag, id);

-- +goose StatementBegin
CREATE TRIGGER feature_audit_no_update BEFORE UPDATE ON feature_audit
BEGIN
    SELECT RAISE(ABORT, 'feature_audit is append-only');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER feature_audit_no_delete BEFORE DELETE ON feature_audit
BEGIN
    SELECT RAISE(ABORT, 'feature_audit is append-only');
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER feature_audit_no_delete;
DROP TRIGGER feature_audit_no_update;
DROP TABLE feature_audit;
DROP TABLE feature_flags;
