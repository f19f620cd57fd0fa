-- +goose Up
-- Retention by crypto-shredding (see adapters/store/chatkeys.go): each
-- conversation's messages and media are sealed with a key of its own,
-- kept here wrapped (sealed) with the data key. chat_messages and
-- chat_media stay append-only; retention destroys the wrapped key
-- (wrapped = NULL), after which the conversation's content cannot be read
-- by anyone, while its chain (content hashes and links) still verifies.
CREATE TABLE chat_keys (
    conversation_id INTEGER PRIMARY KEY REFERENCES conversations (id),
    wrapped         BLOB,
    created_at      TIMESTAMP NOT NULL,
    shredded_at     TIMESTAMP,
    reason          TEXT NOT NULL DEFAULT ''
);

-- +goose Down
DROP TABLE chat_keys;
