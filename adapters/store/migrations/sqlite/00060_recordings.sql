-- +goose Up
-- recordings: a room recorded by staff (media's encrypted, hash-chained
-- segments under TACKLEGATE_RECORDINGS_DIR/<folder>). head and segments
-- follow the chain as each segment is sealed, so a recording cut short on
-- disk (files and manifest removed together) still fails verification
-- against this row. state: recording → paused ⇄ recording → stopped, or
-- failed. A stopped recording of an order is chained into the order's
-- evidence (evidence_id) with its manifest hash.
CREATE TABLE recordings (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id         TEXT NOT NULL,
    folder          TEXT NOT NULL UNIQUE,
    order_id        INTEGER REFERENCES orders (id),
    state           TEXT NOT NULL,
    started_by      TEXT NOT NULL,
    started_at      TIMESTAMP NOT NULL,
    stopped_at      TIMESTAMP,
    paused_ms       INTEGER NOT NULL DEFAULT 0,   -- time spent paused
    segments        INTEGER NOT NULL DEFAULT 0,
    head            TEXT NOT NULL DEFAULT '',  -- the last sealed segment's link
    manifest_sha256 TEXT NOT NULL DEFAULT '',
    size_bytes      INTEGER NOT NULL DEFAULT 0,
    tracks          TEXT NOT NULL DEFAULT '[]', -- JSON: id, kind, container, size, sha256 of each file
    evidence_id     INTEGER REFERENCES evidence (id),
    error           TEXT NOT NULL DEFAULT ''
);
-- One recording at a time per room.
CREATE UNIQUE INDEX recordings_live_room ON recordings (room_id) WHERE state IN ('recording', 'paused');
CREATE INDEX recordings_order ON recordings (order_id, id) WHERE order_id IS NOT NULL;

-- +goose Down
DROP TABLE recordings;
