-- +goose Up
-- Orders, their lines (one per unit), the reservations that hold units, the
-- state history, and the WeChat Pay payment and refund attempts.
--
-- member_id has no foreign key on purpose: members can be merged by the
-- identity flows, and an order must outlive the account it was placed from.
CREATE TABLE orders (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    order_no                TEXT NOT NULL UNIQUE,
    member_id               INTEGER NOT NULL,
    tier                    TEXT NOT NULL,
    state                   TEXT NOT NULL,
    period_from             DATE NOT NULL, -- first rented day, Asia/Shanghai
    period_to               DATE NOT NULL, -- day after the last one
    deposit_waived          BOOLEAN NOT NULL,
    cleaning_buffer_seconds INTEGER NOT NULL,
    late_fee_per_day        INTEGER NOT NULL, -- fen; terms copied when ordered
    grace_period_seconds    INTEGER NOT NULL,
    rent                    INTEGER NOT NULL, -- fen; sums of the lines, for reports
    deposit                 INTEGER NOT NULL,
    total                   INTEGER NOT NULL,
    days_late               INTEGER NOT NULL DEFAULT 0,
    late_fee                INTEGER NOT NULL DEFAULT 0,
    damage_fee              INTEGER NOT NULL DEFAULT 0,
    created_at              TIMESTAMP NOT NULL,
    expires_at              TIMESTAMP NOT NULL,
    updated_at              TIMESTAMP NOT NULL,
    paid_at                 TIMESTAMP,
    picked_up_at            TIMESTAMP,
    returned_at             TIMESTAMP,
    closed_at               TIMESTAMP,
    version                 INTEGER NOT NULL DEFAULT 1, -- optimistic lock for SaveOrder
    CHECK (period_from < period_to)
);
CREATE INDEX orders_member ON orders (member_id, id);
CREATE INDEX orders_unpaid ON orders (expires_at) WHERE state IN ('created', 'awaiting_payment');

CREATE TABLE order_lines (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id      INTEGER NOT NULL REFERENCES orders (id),
    line_no       INTEGER NOT NULL,
    item_id       INTEGER NOT NULL REFERENCES items (id),
    item_name     TEXT NOT NULL,
    unit_id       INTEGER NOT NULL REFERENCES units (id),
    days          INTEGER NOT NULL CHECK (days > 0),
    price_per_day INTEGER NOT NULL, -- fen
    rent          INTEGER NOT NULL,
    deposit       INTEGER NOT NULL,
    UNIQUE (order_id, line_no)
);

-- A reservation holds a unit over [starts_at, ends_at): the rented days
-- plus the cleaning buffer. Released ones (cancelled or expired orders) hold
-- nothing. Instants are UTC text in one fixed format, so comparing them as
-- text compares them as times; the CHECKs keep it that way.
CREATE TABLE reservations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id    INTEGER NOT NULL REFERENCES orders (id),
    unit_id     INTEGER NOT NULL REFERENCES units (id),
    starts_at   TIMESTAMP NOT NULL CHECK (starts_at LIKE '____-__-__ __:__:__%+00:00'),
    ends_at     TIMESTAMP NOT NULL CHECK (ends_at LIKE '____-__-__ __:__:__%+00:00'),
    released_at TIMESTAMP,
    CHECK (starts_at < ends_at)
);
CREATE INDEX reservations_unit ON reservations (unit_id, starts_at) WHERE released_at IS NULL;
CREATE INDEX reservations_order ON reservations (order_id);

-- No double booking, enforced by the database: SQLite has no exclusion
-- constraints, so these triggers refuse a reservation that overlaps an
-- active one of the same unit. SQLite runs one writer at a time, so the
-- check and the insert cannot interleave with another writer's.
-- +goose StatementBegin
CREATE TRIGGER reservations_no_overlap_insert
BEFORE INSERT ON reservations
WHEN NEW.released_at IS NULL
BEGIN
    SELECT RAISE(ABORT, 'reservation_overlap: unit already reserved for an overlapping period')
    WHERE EXISTS (
        SELECT 1 FROM reservations r
        WHERE r.unit_id = NEW.unit_id AND r.released_at IS NULL
          AND r.starts_at < NEW.ends_at AND NEW.starts_at < r.ends_at
    );
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER reservations_no_overlap_update
BEFORE UPDATE OF unit_id, starts_at, ends_at, released_at ON reservations
WHEN NEW.released_at IS NULL
BEGIN
    SELECT RAISE(ABORT, 'reservation_overlap: unit already reserved for an overlapping period')
    WHERE EXISTS (
        SELECT 1 FROM reservations r
        WHERE r.unit_id = NEW.unit_id AND r.released_at IS NULL AND r.id <> NEW.id
          AND r.starts_at < NEW.ends_at AND NEW.starts_at < r.ends_at
    );
END;
-- +goose StatementEnd

CREATE TABLE order_transitions (
    order_id    INTEGER NOT NULL REFERENCES orders (id),
    seq         INTEGER NOT NULL,
    from_state  TEXT NOT NULL, -- '' for the move into created
    to_state    TEXT NOT NULL,
    actor       TEXT NOT NULL,
    happened_at TIMESTAMP NOT NULL,
    note        TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (order_id, seq)
);

CREATE TABLE payments (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id       INTEGER NOT NULL REFERENCES orders (id),
    attempt        INTEGER NOT NULL,
    out_trade_no   TEXT NOT NULL UNIQUE,
    amount         INTEGER NOT NULL CHECK (amount > 0), -- fen
    state          TEXT NOT NULL,
    transaction_id TEXT NOT NULL DEFAULT '',
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL,
    paid_at        TIMESTAMP,
    UNIQUE (order_id, attempt)
);

CREATE TABLE refunds (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id       INTEGER NOT NULL REFERENCES orders (id),
    attempt        INTEGER NOT NULL,
    out_refund_no  TEXT NOT NULL UNIQUE,
    out_trade_no   TEXT NOT NULL REFERENCES payments (out_trade_no),
    payment_amount INTEGER NOT NULL,
    amount         INTEGER NOT NULL CHECK (amount > 0), -- fen
    reason         TEXT NOT NULL DEFAULT '',
    state          TEXT NOT NULL,
    refund_id      TEXT NOT NULL DEFAULT '',
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL,
    succeeded_at   TIMESTAMP,
    UNIQUE (order_id, attempt)
);

-- +goose Down
DROP TABLE refunds;
DROP TABLE payments;
DROP TABLE order_transitions;
DROP TRIGGER reservations_no_overlap_update;
DROP TRIGGER reservations_no_overlap_insert;
DROP TABLE reservations;
DROP TABLE order_lines;
DROP TABLE orders;
