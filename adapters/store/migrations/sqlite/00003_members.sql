-- +goose Up
-- members are the shop's customer accounts: imported ones carry the shop's
-- card number; guests are made at a first WeChat or SMS login. A merged
-- member points at the member it was merged into and is otherwise ignored.
CREATE TABLE members (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    member_no   TEXT,
    name        TEXT NOT NULL DEFAULT '',
    phone       TEXT,
    tier        TEXT NOT NULL,
    points      INTEGER NOT NULL DEFAULT 0,
    joined_at   TIMESTAMP NOT NULL,
    merged_into INTEGER REFERENCES members (id),
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX members_member_no ON members (member_no) WHERE member_no IS NOT NULL;
-- A phone belongs to one live member: this is what makes "land in the
-- account that already exists" safe under concurrent logins.
CREATE UNIQUE INDEX members_phone ON members (phone) WHERE phone IS NOT NULL AND merged_into IS NULL;
CREATE INDEX members_name ON members (name);

-- identities are WeChat accounts (an openid under our AppID) and the member
-- each is linked to.
CREATE TABLE identities (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id     TEXT NOT NULL,
    openid     TEXT NOT NULL,
    unionid    TEXT NOT NULL DEFAULT '',
    member_id  INTEGER NOT NULL REFERENCES members (id),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (app_id, openid)
);
CREATE INDEX identities_member ON identities (member_id);

-- link_reviews queue a proven phone whose member is already someone else's,
-- for the owner to link, reject or merge.
CREATE TABLE link_reviews (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    identity_id INTEGER NOT NULL REFERENCES identities (id),
    member_id   INTEGER NOT NULL REFERENCES members (id), -- the member who has the phone
    phone       TEXT NOT NULL,
    status      TEXT NOT NULL, -- pending, linked, rejected, merged
    reason      TEXT NOT NULL DEFAULT '',
    decided_by  TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMP NOT NULL,
    decided_at  TIMESTAMP
);
CREATE INDEX link_reviews_status ON link_reviews (status, id);

-- link_audit is append-only: every change of who is linked to what, with
-- the actor and the reason. Nothing updates or deletes it.
CREATE TABLE link_audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TIMESTAMP NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    member_id   INTEGER,
    identity_id INTEGER,
    other_id    INTEGER,
    reason      TEXT NOT NULL DEFAULT '',
    detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX link_audit_member ON link_audit (member_id, id);

-- +goose Down
DROP TABLE link_audit;
DROP TABLE link_reviews;
DROP TABLE identities;
DROP TABLE members;
