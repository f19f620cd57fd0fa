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
    id                BIGSERIAL PRIMARY KEY,
    member_id         BIGINT NOT NULL REFERENCES members (id),
    openid            TEXT NOT NULL,
    state             TEXT NOT NULL, -- open | assigned | resolved
    assignee          TEXT NOT NULL DEFAULT '', -- WeCom userid
    prev_id           BIGINT REFERENCES conversations (id),
    tags              TEXT NOT NULL DEFAULT '',
    opened_at         TIMESTAMPTZ NOT NULL,
    assigned_at       TIMESTAMPTZ,
    resolved_at       TIMESTAMPTZ,
    resolved_by       TEXT NOT NULL DEFAULT '',
    last_customer_at  TIMESTAMPTZ,
    last_staff_at     TIMESTAMPTZ,
    away_reply_at     TIMESTAMPTZ,
    queued_notice_at  TIMESTAMPTZ,
    rating_asked_at   TIMESTAMPTZ,
    rating            INTEGER NOT NULL DEFAULT 0,
    rated_at          TIMESTAMPTZ,
    msg_count         INTEGER NOT NULL DEFAULT 0,
    last_link         TEXT NOT NULL,
    customer_lease    TIMESTAMPTZ,
    staff_lease       TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX conversations_one_live ON conversations (member_id) WHERE state <> 'resolved';
CREATE INDEX conversations_member ON conversations (member_id, id);
CREATE INDEX conversations_assignee ON conversations (assignee, state);
CREATE INDEX conversations_state ON conversations (state, id);

-- chat_messages are evidence and append-only (trigger below): body is the
-- sealed text; the media bytes live in chat_media; link chains each message
-- to the one before it in its conversation. upstream is the callback a
-- message came from, unique, so a reprocessed callback cannot append twice.
CREATE TABLE chat_messages (
    id              BIGSERIAL PRIMARY KEY,
    conversation_id BIGINT NOT NULL REFERENCES conversations (id),
    seq             INTEGER NOT NULL,
    direction       TEXT NOT NULL, -- in | out | note
    kind            TEXT NOT NULL, -- text | image | voice | page
    author          TEXT NOT NULL,
    upstream        TEXT,
    body            BYTEA, -- sealed text; NULL when empty
    media_type      TEXT NOT NULL DEFAULT '',
    media_size      BIGINT NOT NULL DEFAULT 0,
    media_hash      TEXT NOT NULL DEFAULT '',
    voice_format    TEXT NOT NULL DEFAULT '',
    duration_ms     BIGINT NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL,
    content_hash    TEXT NOT NULL,
    prev_link       TEXT NOT NULL,
    link            TEXT NOT NULL,
    UNIQUE (conversation_id, seq)
);
CREATE UNIQUE INDEX chat_messages_upstream ON chat_messages (upstream) WHERE upstream IS NOT NULL;

CREATE TABLE chat_media (
    message_id BIGINT PRIMARY KEY REFERENCES chat_messages (id),
    data       BYTEA NOT NULL -- sealed
);

-- chat_deliveries: how far each message got on each side (customer =
-- WeChat, staff = WeCom). Operational, so mutable, and not in the chain.
CREATE TABLE chat_deliveries (
    message_id BIGINT NOT NULL REFERENCES chat_messages (id),
    side       TEXT NOT NULL, -- customer | staff
    status     TEXT NOT NULL, -- stored | sent | held | notified | failed
    reason     TEXT NOT NULL DEFAULT '',
    recipient  TEXT NOT NULL DEFAULT '',
    tries      INTEGER NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (message_id, side)
);
CREATE INDEX chat_deliveries_status ON chat_deliveries (side, status);

-- staff_duty: /on and /off (no row: on duty), and the conversation plain
-- text from the WeCom app goes to.
CREATE TABLE staff_duty (
    userid               TEXT PRIMARY KEY,
    on_duty              BOOLEAN NOT NULL DEFAULT TRUE,
    current_conversation BIGINT REFERENCES conversations (id),
    updated_at           TIMESTAMPTZ NOT NULL
);

-- bridge_sent remembers notices sent to staff by their outbox key, so that
-- a notice whose delivery was not recorded in the outbox is not sent twice.
CREATE TABLE bridge_sent (
    key     TEXT PRIMARY KEY,
    sent_at TIMESTAMPTZ NOT NULL
);

-- +goose StatementBegin
CREATE FUNCTION chat_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
CREATE TRIGGER chat_messages_no_change BEFORE UPDATE OR DELETE ON chat_messages
    FOR EACH ROW EXECUTE FUNCTION chat_append_only();
CREATE TRIGGER chat_media_no_change BEFORE UPDATE OR DELETE ON chat_media
    FOR EACH ROW EXECUTE FUNCTION chat_append_only();

-- +goose Down
DROP TRIGGER chat_media_no_change ON chat_media;
DROP TRIGGER chat_messages_no_change ON chat_messages;
DROP FUNCTION chat_append_only();
DROP TABLE bridge_sent;
DROP TABLE staff_duty;
DROP TABLE chat_deliveries;
DROP TABLE chat_media;
DROP TABLE chat_messages;
DROP TABLE conversations;
