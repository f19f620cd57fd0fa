-- +goose Up
-- The assistant's knowledge base: the owner's Q&A entries and articles.
-- slug is the entry's stable id (import matches on it; answer records cite
-- it). questions and tags are JSON arrays of strings.
CREATE TABLE kb_entries (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    slug       TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL DEFAULT 'qa', -- qa | article
    title      TEXT NOT NULL,
    questions  TEXT NOT NULL DEFAULT '[]',
    answer     TEXT NOT NULL,
    tags       TEXT NOT NULL DEFAULT '[]',
    enabled    BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- kb_answers: one row per turn of the assistant (an answer, or a handoff),
-- so the owner sees the share it could not resolve. question and answer are
-- the customer's words and the reply: sealed with the data key, bound to
-- the conversation. outcome leaves 'pending' once (customer feedback, a
-- person stepping in, or the handoff itself).
CREATE TABLE kb_answers (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation TEXT NOT NULL,
    question     BLOB NOT NULL,
    answer       BLOB NOT NULL,
    kind         TEXT NOT NULL,               -- kb | catalog | vision | none
    sources      TEXT NOT NULL DEFAULT '[]',  -- JSON array of entry/item ids, best first
    confidence   REAL NOT NULL DEFAULT 0,
    phrased      BOOLEAN NOT NULL DEFAULT FALSE,
    model_error  TEXT NOT NULL DEFAULT '',
    handoff      TEXT NOT NULL DEFAULT '',    -- asked | dispute | low_confidence | unhelpful | image
    outcome      TEXT NOT NULL DEFAULT 'pending', -- pending | resolved | unresolved
    outcome_by   TEXT NOT NULL DEFAULT '',    -- customer | person | handoff
    created_at   TIMESTAMP NOT NULL,
    decided_at   TIMESTAMP
);
CREATE INDEX kb_answers_created ON kb_answers (created_at);
CREATE INDEX kb_answers_conversation ON kb_answers (conversation, id);

-- +goose Down
DROP TABLE kb_answers;
DROP TABLE kb_entries;
