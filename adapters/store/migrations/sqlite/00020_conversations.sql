-- +goose Up
-- The message bridge: conversations between a customer (WeChat) and the
-- shop's staff (WeCom), their messages as evidence, and delivery per side.
--
-- conversations: one live (not resolved) conversation per member; a
-- customer who writes after it was resolved starts a new one that points at
-- the previous one (prev_id). msg_count/last_link are the head of the
-- conversation's SHA-256 chain. The two *_lease columns keep two outbox
-- workers from flushing one conversation to the same side at once.
CREATE TABLE conversations (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    member_id         INTEGER NOT NULL REFERENCES members (id),
    openid            TEXT NOT NULL,
    state             TEXT NOT NULL, -- open | assigned | resolved
    assignee          TEXT NOT NULL DEFAULT '', -- WeCom userid
    prev_id           INTEGER REFERENCES conversations (id),
    tags              TEXT NOT NULL DEFAULT '',
    opened_at         TIMESTAMP NOT NULL,
    assigned_at       TIMESTAMP,
    resolved_at       TIMESTAMP,
    resolved_by       TEXT NOT NULL DEFAULT '',
    last_customer_at  TIMESTAMP,
    last_staff_at     TIMESTAMP,
    away_reply_at     TIMESTAMP,
    queued_notice_at  TIMESTAMP,
    rating_asked_at   TIMESTAMP,
    rating            INTEGER NOT NULL DEFAULT 0,
    rated_at          TIMESTAMP,
    msg_count         INTEGER NOT NULL DEFAULT 0,
    last_link         TEXT NOT NULL,
    customer_lease    TIMESTAMP,
    staff_lease       TIMESTAMP,
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX conversations_one_live ON conversations (member_id) WHERE state <> 'resolved';
CREATE INDEX conversations_member ON conversations (member_id, id);
CREATE INDEX conversations_assignee ON conversations (assignee, state);
CREATE INDEX conversations_state ON conversations (state, id);

-- chat_messages are evidence and append-only (triggers below): body is the
-- sealed text; the media bytes live in chat_media; link chains each message
-- to the one before it in its conversation. upstream is the callback a
-- message came from, unique, so a reprocessed callback cannot append twice.
CREATE TABLE chat_messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    seq             INTEGER NOT NULL,
    direction       TEXT NOT NULL, -- in | out | note
    kind            TEXT NOT NULL, -- text | image | voice | page
    author          TEXT NOT NULL,
    upstream        TEXT,
    body            BLOB, -- sealed text; NULL when empty
    media_type      TEXT NOT NULL DEFAULT '',
    media_size      INTEGER NOT NULL DEFAULT 0,
    media_hash      TEXT NOT NULL DEFAULT '',
    voice_format    TEXT NOT NULL DEFAULT '',
    duration_ms     INTEGER NOT NULL DEFAULT 0,
    created_at      TIMESTAMP NOT NULL,
    content_hash    TEXT NOT NULL,
    prev_link       TEXT NOT NULL,
    link            TEXT NOT NULL,
    UNIQUE (conversation_id, seq)
);
CREATE UNIQUE INDEX chat_messages_upstream ON chat_messages (upstream) WHERE upstream IS NOT NULL;

CREATE TABLE chat_media (
    message_id INTEGER PRIMARY KEY REFERENCES chat_messages (id),
    data       BLOB NOT NULL -- sealed
);

-- chat_deliveries: how far each message got on each side (customer =
-- WeChat, staff = WeCom). Operational, so mutable, and not in the chain.
CREATE TABLE chat_deliveries (
    message_id INTEGER NOT NULL REFERENCES chat_messages (id),
    side       TEXT NOT NULL, -- customer | staff
    status     TEXT NOT NULL, -- stored | sent | held | notified | failed
    reason     TEXT NOT NULL DEFAULT '',
    recipient  TEXT NOT NULL DEFAULT '',
    tries      INTEGER NOT NULL DEFAULT 0,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (message_id, side)
);
CREATE INDEX chat_deliveries_status ON chat_deliveries (side, status);

-- staff_duty: /on and /off (no row: on duty), and the conversation plain
-- text from the WeCom app goes to.
CREATE TABLE staff_duty (
    userid               TEXT PRIMARY KEY,
    on_duty              BOOLEAN NOT NULL DEFAULT TRUE,
    current_conversation INTEGER REFERENCES conversations (id),
    updated_at           TIMESTAMP NOT NULL
);

-- bridge_sent remembers notices sent to staff by their outbox key, so that
-- a notice whose delivery was not recorded in the outbox is not sent twice.
CREATE TABLE bridge_sent (
    key     TEXT PRIMARY KEY,
    sent_at TIMESTAMP NOT NULL
);

-- +goose StatementBegin
CREATE TRIGGER chat_messages_no_update BEFORE UPDATE ON chat_messages
BEGIN
    SELECT RAISE(ABORT, 'chat_messages is append-only');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER chat_messages_no_delete BEFORE DELETE ON chat_messages
BEGIN
    SELECT RAISE(ABORT, 'chat_messages is append-only');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER chat_media_no_update BEFORE UPDATE ON chat_media
BEGIN
    SELECT RAISE(ABORT, 'chat_media is append-only');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER chat_media_no_delete BEFORE DELETE ON chat_media
BEGIN
    SELECT RAISE(ABORT, 'chat_media is append-only');
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER chat_media_no_delete;
DROP TRIGGER chat_media_no_update;
DROP TRIGGER chat_messages_no_delete;
DROP TRIGGER chat_messages_no_update;
DROP TABLE bridge_sent;
DROP TABLE staff_duty;
DROP TABLE chat_deliveries;
DROP TABLE chat_media;
DROP TABLE chat_messages;
DROP TABLE conversations;
