-- +goose Up
-- quick_help: the buttons the customer page shows ("教我装鱼线"), in the
-- owner's order (position). action: video | voice | chat | article; text is
-- the preset chat text, article_slug a knowledge-base entry, purpose the
-- call's purpose (calls.purpose). uses counts taps (POST .../use).
CREATE TABLE quick_help (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    title        TEXT NOT NULL,
    icon         TEXT NOT NULL DEFAULT '',
    action       TEXT NOT NULL,
    text         TEXT NOT NULL DEFAULT '',
    article_slug TEXT NOT NULL DEFAULT '',
    purpose      TEXT NOT NULL DEFAULT '',
    position     INTEGER NOT NULL,
    enabled      BOOLEAN NOT NULL DEFAULT TRUE,
    uses         INTEGER NOT NULL DEFAULT 0,
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL
);
CREATE INDEX quick_help_position ON quick_help (position, id);

-- quick_help_uses: one row per tap, for uses over a period beside the KPIs.
CREATE TABLE quick_help_uses (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_id  INTEGER NOT NULL REFERENCES quick_help (id) ON DELETE CASCADE,
    member_id INTEGER,
    used_at   TIMESTAMP NOT NULL
);
CREATE INDEX quick_help_uses_at ON quick_help_uses (used_at);

-- The shop's first buttons; the owner edits, reorders or removes them.
INSERT INTO quick_help (title, icon, action, text, purpose, position, created_at, updated_at) VALUES
    ('教我装鱼线', '🎣', 'video', '', 'guidance', 1, '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00'),
    ('视频验货', '📹', 'video', '', 'inspection', 2, '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00'),
    ('其他问题', '💬', 'chat', '你好，我想咨询一下', '', 3, '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00');

-- +goose Down
DROP TABLE quick_help_uses;
DROP TABLE quick_help;
