-- +goose Up
-- Orders, their lines (one per unit), the reservations that hold units, the
-- state history, and the WeChat Pay payment and refund attempts.
--
-- member_id has no foreign key on purpose: members can be merged by the
-- identity flows, and an order must outlive the account it was placed from.
CREATE TABLE orders (
    id                      BIGSERIAL PRIMARY KEY,
    order_no                TEXT NOT NULL UNIQUE,
    member_id               BIGINT NOT NULL,
    tier                    TEXT NOT NULL,
    state                   TEXT NOT NULL,
    period_from             DATE NOT NULL, -- first rented day, Asia/Shanghai
    period_to               DATE NOT NULL, -- day after the last one
    deposit_waived          BOOLEAN NOT NULL,
    cleaning_buffer_seconds INTEGER NOT NULL,
    late_fee_per_day        BIGINT NOT NULL, -- fen; terms copied when ordered
    grace_period_seconds    INTEGER NOT NULL,
    rent                    BIGINT NOT NULL, -- fen; sums of the lines, for reports
    deposit                 BIGINT NOT NULL,
    total                   BIGINT NOT NULL,
    days_late               INTEGER NOT NULL DEFAULT 0,
    late_fee                BIGINT NOT NULL DEFAULT 0,
    damage_fee              BIGINT NOT NULL DEFAULT 0,
    created_at              TIMESTAMPTZ NOT NULL,
    expires_at              TIMESTAMPTZ NOT NULL,
    updated_at              TIMESTAMPTZ NOT NULL,
    paid_at                 TIMESTAMPTZ,
    picked_up_at            TIMESTAMPTZ,
    returned_at             TIMESTAMPTZ,
    closed_at               TIMESTAMPTZ,
    version                 BIGINT NOT NULL DEFAULT 1, -- optimistic lock for SaveOrder
    CHECK (period_from < period_to)
);
CREATE INDEX orders_member ON orders (member_id, id);
CREATE INDEX orders_unpaid ON orders (expires_at) WHERE state IN ('created', 'awaiting_payment');

CREATE TABLE order_lines (
    id            BIGSERIAL PRIMARY KEY,
    order_id      BIGINT NOT NULL REFERENCES orders (id),
    line_no       INTEGER NOT NULL,
    item_id       BIGINT NOT NULL REFERENCES items (id),
    item_name     TEXT NOT NULL,
    unit_id       BIGINT NOT NULL REFERENCES units (id),
    days          INTEGER NOT NULL CHECK (days > 0),
    price_per_day BIGINT NOT NULL, -- fen
    rent          BIGINT NOT NULL,
    deposit       BIGINT NOT NULL,
    UNIQUE (order_id, line_no)
);

-- No double booking, enforced by the database: the exclusion constraint
-- refuses two active reservations of one unit whose [starts_at, ends_at)
-- overlap, whatever the application does. The "=" on a bigint inside a GiST
-- index needs btree_gist. An extension belongs to the whole database, so it
-- is created once in public (where it stays when a schema is dropped) and
-- found from any schema: operator classes are not looked up by search_path.
CREATE EXTENSION IF NOT EXISTS btree_gist SCHEMA public;

-- A reservation holds a unit over [starts_at, ends_at): the rented days
-- plus the cleaning buffer. Released ones (cancelled or expired orders) hold
-- nothing.
CREATE TABLE reservations (
    id          BIGSERIAL PRIMARY KEY,
    order_id    BIGINT NOT NULL REFERENCES orders (id),
    unit_id     BIGINT NOT NULL REFERENCES units (id),
    starts_at   TIMESTAMPTZ NOT NULL,
    ends_at     TIMESTAMPTZ NOT NULL,
    released_at TIMESTAMPTZ,
    CHECK (starts_at < ends_at),
    CONSTRAINT reservations_no_overlap EXCLUDE USING gist (
        unit_id WITH =,
        tstzrange(starts_at, ends_at, '[)') WITH &&
    ) WHERE (released_at IS NULL)
);
CREATE INDEX reservations_unit ON reservations (unit_id, starts_at) WHERE released_at IS NULL;
CREATE INDEX reservations_order ON reservations (order_id);

CREATE TABLE order_transitions (
    order_id    BIGINT NOT NULL REFERENCES orders (id),
    seq         INTEGER NOT NULL,
    from_state  TEXT NOT NULL, -- '' for the move into created
    to_state    TEXT NOT NULL,
    actor       TEXT NOT NULL,
    happened_at TIMESTAMPTZ NOT NULL,
    note        TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (order_id, seq)
);

CREATE TABLE payments (
    id             BIGSERIAL PRIMARY KEY,
    order_id       BIGINT NOT NULL REFERENCES orders (id),
    attempt        INTEGER NOT NULL,
    out_trade_no   TEXT NOT NULL UNIQUE,
    amount         BIGINT NOT NULL CHECK (amount > 0), -- fen
    state          TEXT NOT NULL,
    transaction_id TEXT NOT NULL DEFAULT '',
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    paid_at        TIMESTAMPTZ,
    UNIQUE (order_id, attempt)
);

CREATE TABLE refunds (
    id             BIGSERIAL PRIMARY KEY,
    order_id       BIGINT NOT NULL REFERENCES orders (id),
    attempt        INTEGER NOT NULL,
    out_refund_no  TEXT NOT NULL UNIQUE,
    out_trade_no   TEXT NOT NULL REFERENCES payments (out_trade_no),
    payment_amount BIGINT NOT NULL,
    amount         BIGINT NOT NULL CHECK (amount > 0), -- fen
    reason         TEXT NOT NULL DEFAULT '',
    state          TEXT NOT NULL,
    refund_id      TEXT NOT NULL DEFAULT '',
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    succeeded_at   TIMESTAMPTZ,
    UNIQUE (order_id, attempt)
);

-- +goose Down
-- btree_gist stays: other schemas in the database may use it.
DROP TABLE refunds;
DROP TABLE payments;
DROP TABLE order_transitions;
DROP TABLE reservations;
DROP TABLE order_lines;
DROP TABLE orders;
