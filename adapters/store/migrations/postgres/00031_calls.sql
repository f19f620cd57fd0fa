-- +goose Up
-- calls: one row per video or voice call, for the call flow and the owner's
-- KPIs (connect rate = answered / started, duration, missed by hour).
-- state: ringing → answered → ended, or ringing → missed | declined |
-- cancelled (the caller hung up first). Times are UTC; duration is
-- ended_at − answered_at and only means something for answered calls.
-- source says what started it: a quick-help entry (entry_id), a staff
-- member's /video command, or the staff console.
CREATE TABLE calls (
    id            BIGSERIAL PRIMARY KEY,
    room_id       TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL,              -- video | voice
    purpose       TEXT NOT NULL DEFAULT '',   -- guidance | inspection_pickup | inspection_return | other
    source        TEXT NOT NULL,              -- quick_help | staff_command | console
    entry_id      TEXT NOT NULL DEFAULT '',
    member_id     BIGINT REFERENCES members (id),
    conversation  BIGINT REFERENCES conversations (id),
    order_id      TEXT NOT NULL DEFAULT '',
    staff         TEXT NOT NULL DEFAULT '',   -- WeCom userid who answered (or was rung)
    state         TEXT NOT NULL,              -- ringing | answered | missed | declined | cancelled | ended
    started_at    TIMESTAMPTZ NOT NULL,
    answered_at   TIMESTAMPTZ,
    ended_at      TIMESTAMPTZ,
    ended_reason  TEXT NOT NULL DEFAULT '',
    rating        INTEGER NOT NULL DEFAULT 0, -- 1..5 from the customer, 0 = none
    recorded      BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX calls_started ON calls (started_at);
CREATE INDEX calls_member ON calls (member_id, id);
CREATE INDEX calls_order ON calls (order_id) WHERE order_id <> '';

-- +goose Down
DROP TABLE calls;
