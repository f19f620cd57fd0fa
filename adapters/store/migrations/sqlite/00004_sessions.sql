-- +goose Up
-- sessions back the access tokens: a token names its session, and a revoked
-- session (logout) refuses its tokens at once. The refresh token is kept
-- only as a hash and rotates on every use.
CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    role         TEXT NOT NULL,
    subject      TEXT NOT NULL, -- member id, staff userid or "owner"
    refresh_hash TEXT NOT NULL UNIQUE,
    expires_at   TIMESTAMP NOT NULL,
    revoked_at   TIMESTAMP,
    created_at   TIMESTAMP NOT NULL,
    used_at      TIMESTAMP NOT NULL
);
CREATE INDEX sessions_subject ON sessions (role, subject);

-- sms_codes are one-time login codes, stored as keyed hashes.
CREATE TABLE sms_codes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    phone      TEXT NOT NULL,
    ip         TEXT NOT NULL,
    code_hash  TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX sms_codes_phone ON sms_codes (phone, created_at);
CREATE INDEX sms_codes_ip ON sms_codes (ip, created_at);

-- staff are WeCom members the owner registered; they log in through WeCom
-- OAuth.
CREATE TABLE staff (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    wecom_userid TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    active       BOOLEAN NOT NULL DEFAULT TRUE,
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL
);

-- owner_credentials holds the owner's login; the first start seeds it from
-- TACKLEGATE_OWNER_PASSWORD, and the owner can change it.
CREATE TABLE owner_credentials (
    username      TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    updated_at    TIMESTAMP NOT NULL
);

-- +goose Down
DROP TABLE owner_credentials;
DROP TABLE staff;
DROP TABLE sms_codes;
DROP TABLE sessions;
