package store

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tacklegate/tacklegate/rental"
)

type outboxRow struct {
	ID            int64 `gorm:"primaryKey"`
	Kind          string
	DedupeKey     string
	Payload       []byte
	Attempts      int
	NextAttemptAt time.Time
	LockedUntil   *time.Time
	LastError     string
	DeliveredAt   *time.Time
	DeadAt        *time.Time
	CreatedAt     time.Time
}

func (outboxRow) TableName() string { return "outbox" }

func outboxAD(kind, key string) []byte { return []byte("outbox\x00" + kind + "\x00" + key) }

// enqueue writes an outbox row inside tx, so the message exists exactly
// when the change that causes it commits. A second enqueue with the same
// key is a no-op.
func (db *DB) enqueue(tx *gorm.DB, kind, key string, payload []byte) error {
	s, err := db.sealerFor("store.enqueue")
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	row := outboxRow{Kind: kind, DedupeKey: key, Payload: s.seal(payload, outboxAD(kind, key)), NextAttemptAt: now, CreatedAt: now}
	return tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error
}

// Enqueue adds a message to the outbox on its own.
func (db *DB) Enqueue(ctx context.Context, kind, key string, payload []byte) error {
	return classify("store.Enqueue", db.enqueue(db.Gorm.WithContext(ctx), kind, key, payload))
}

// OutboxItem is a message to deliver.
type OutboxItem struct {
	ID        int64      `json:"id"`
	Kind      string     `json:"kind"`
	Key       string     `json:"key"`
	Payload   []byte     `json:"-"`
	Attempts  int        `json:"attempts"`
	LastError string     `json:"last_error,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	DeadAt    *time.Time `json:"dead_at,omitempty"`
}

// ClaimOutbox leases up to limit due messages for lease, so that several
// workers (or instances) never deliver one message at the same time.
func (db *DB) ClaimOutbox(ctx context.Context, limit int, lease time.Duration) ([]OutboxItem, error) {
	const op = "store.ClaimOutbox"
	s, err := db.sealerFor(op)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	var rows []outboxRow
	err = db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		q := tx.Where("delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at <= ? AND (locked_until IS NULL OR locked_until < ?)", now, now).
			Order("next_attempt_at").Limit(limit)
		if db.Dialect == Postgres {
			q = q.Clauses(clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"})
		}
		if err := q.Find(&rows).Error; err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		ids := make([]int64, len(rows))
		for i, r := range rows {
			ids[i] = r.ID
		}
		return tx.Model(&outboxRow{}).Where("id IN ?", ids).Update("locked_until", now.Add(lease)).Error
	})
	if err != nil {
		return nil, classify(op, err)
	}
	items := make([]OutboxItem, 0, len(rows))
	for _, r := range rows {
		p, err := s.open(r.Payload, outboxAD(r.Kind, r.DedupeKey))
		if err != nil {
			return nil, rental.Wrap(op, rental.KindInternal, "", err)
		}
		items = append(items, OutboxItem{ID: r.ID, Kind: r.Kind, Key: r.DedupeKey, Payload: p, Attempts: r.Attempts, LastError: r.LastError, CreatedAt: r.CreatedAt})
	}
	return items, nil
}

// CompleteOutbox marks a message delivered.
func (db *DB) CompleteOutbox(ctx context.Context, id int64) error {
	now := time.Now().UTC()
	err := db.Gorm.WithContext(ctx).Model(&outboxRow{}).Where("id = ?", id).
		Updates(map[string]any{"delivered_at": now, "locked_until": nil, "attempts": gorm.Expr("attempts + 1"), "last_error": ""}).Error
	return classify("store.CompleteOutbox", err)
}

// FailOutbox records a failed attempt: retried at next, or dead (kept for
// the owner to see and replay) when dead is true.
func (db *DB) FailOutbox(ctx context.Context, id int64, cause string, next time.Time, dead bool) error {
	upd := map[string]any{"attempts": gorm.Expr("attempts + 1"), "last_error": truncate(cause, 500), "locked_until": nil, "next_attempt_at": next.UTC()}
	if dead {
		upd["dead_at"] = time.Now().UTC()
	}
	return classify("store.FailOutbox", db.Gorm.WithContext(ctx).Model(&outboxRow{}).Where("id = ?", id).Updates(upd).Error)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// DeadOutbox lists messages that gave up (the dead-letter list).
func (db *DB) DeadOutbox(ctx context.Context, kind string, limit int) ([]OutboxItem, error) {
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	q := db.Gorm.WithContext(ctx).Where("dead_at IS NOT NULL")
	if kind != "" {
		q = q.Where("kind = ?", kind)
	}
	var rows []outboxRow
	if err := q.Order("id").Limit(limit).Find(&rows).Error; err != nil {
		return nil, classify("store.DeadOutbox", err)
	}
	out := make([]OutboxItem, len(rows))
	for i, r := range rows {
		out[i] = OutboxItem{ID: r.ID, Kind: r.Kind, Key: r.DedupeKey, Attempts: r.Attempts, LastError: r.LastError, CreatedAt: r.CreatedAt, DeadAt: r.DeadAt}
	}
	return out, nil
}

// ReplayOutbox brings a dead message back for delivery now.
func (db *DB) ReplayOutbox(ctx context.Context, id int64) error {
	res := db.Gorm.WithContext(ctx).Model(&outboxRow{}).Where("id = ? AND dead_at IS NOT NULL", id).
		Updates(map[string]any{"dead_at": nil, "next_attempt_at": time.Now().UTC(), "locked_until": nil})
	if res.Error != nil {
		return classify("store.ReplayOutbox", res.Error)
	}
	if res.RowsAffected == 0 {
		return rental.Errorf("store.ReplayOutbox", rental.KindNotFound, "没有这条失败消息 (no dead message %d)", id)
	}
	return nil
}

// OutboxStats counts messages by state, for metrics and readiness.
type OutboxStats struct{ Pending, Delivered, Dead int64 }

// OutboxCounts reports how many messages wait, went out, or gave up.
func (db *DB) OutboxCounts(ctx context.Context) (OutboxStats, error) {
	var st OutboxStats
	m := db.Gorm.WithContext(ctx).Model(&outboxRow{})
	if err := m.Where("delivered_at IS NULL AND dead_at IS NULL").Count(&st.Pending).Error; err != nil {
		return st, classify("store.OutboxCounts", err)
	}
	if err := db.Gorm.WithContext(ctx).Model(&outboxRow{}).Where("delivered_at IS NOT NULL").Count(&st.Delivered).Error; err != nil {
		return st, classify("store.OutboxCounts", err)
	}
	err := db.Gorm.WithContext(ctx).Model(&outboxRow{}).Where("dead_at IS NOT NULL").Count(&st.Dead).Error
	return st, classify("store.OutboxCounts", err)
}

// Permanent marks a delivery error that retrying cannot fix (the receiver
// refused the message as such): the message goes to the dead-letter list.
type Permanent struct{ Err error }

func (p *Permanent) Error() string { return "permanent: " + p.Err.Error() }
func (p *Permanent) Unwrap() error { return p.Err }

// Deliver is what a worker calls for one kind of message.
type Deliver func(ctx context.Context, item OutboxItem) error

// OutboxWorker delivers outbox messages with retries and exponential
// backoff: 5 s, 10 s, 20 s … capped at an hour, dead after MaxAttempts.
type OutboxWorker struct {
	DB          *DB
	Handlers    map[string]Deliver
	Logger      *slog.Logger
	Poll        time.Duration // how often to look for due messages (default 1 s)
	Lease       time.Duration // how long a claimed message is ours (default 1 min)
	MaxAttempts int           // default 12 (≈ 5 s … 1 h apart, about 6 hours in all)
	BaseDelay   time.Duration // default 5 s
}

// Run delivers until ctx ends. A restart loses nothing: undelivered rows
// stay due, and a lease that was not completed expires.
func (w *OutboxWorker) Run(ctx context.Context) {
	if w.Poll == 0 {
		w.Poll = time.Second
	}
	if w.Lease == 0 {
		w.Lease = time.Minute
	}
	if w.MaxAttempts == 0 {
		w.MaxAttempts = 12
	}
	if w.BaseDelay == 0 {
		w.BaseDelay = 5 * time.Second
	}
	log := w.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "outbox")
	t := time.NewTicker(w.Poll)
	defer t.Stop()
	for {
		for w.once(ctx, log) > 0 && ctx.Err() == nil {
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// once delivers one batch and returns how many it handled.
func (w *OutboxWorker) once(ctx context.Context, log *slog.Logger) int {
	items, err := w.DB.ClaimOutbox(ctx, 20, w.Lease)
	if err != nil {
		if ctx.Err() == nil {
			log.Error("outbox: cannot claim messages", "error", err)
		}
		return 0
	}
	for _, it := range items {
		h, ok := w.Handlers[it.Kind]
		var derr error
		if !ok {
			derr = &Permanent{Err: errors.New("no handler for kind " + it.Kind)}
		} else {
			dctx, cancel := context.WithTimeout(ctx, w.Lease/2)
			derr = h(dctx, it)
			cancel()
		}
		if derr == nil {
			if err := w.DB.CompleteOutbox(ctx, it.ID); err != nil {
				log.Error("outbox: delivered but not recorded (will be delivered again)", "id", it.ID, "error", err)
			}
			continue
		}
		var perm *Permanent
		dead := errors.As(derr, &perm) || it.Attempts+1 >= w.MaxAttempts
		delay := time.Duration(float64(w.BaseDelay) * math.Pow(2, float64(it.Attempts)))
		if delay > time.Hour {
			delay = time.Hour
		}
		if err := w.DB.FailOutbox(ctx, it.ID, derr.Error(), time.Now().Add(delay), dead); err != nil {
			log.Error("outbox: cannot record a failure", "id", it.ID, "error", err)
		}
		level := slog.LevelWarn
		if dead {
			level = slog.LevelError
		}
		log.Log(ctx, level, "outbox: delivery failed", "id", it.ID, "kind", it.Kind, "attempt", it.Attempts+1, "dead", dead, "retry_in", delay, "error", derr)
	}
	return len(items)
}

// OutboxMessage is a call out to enqueue in the same transaction as the
// change it belongs to (a call's ring, a guard rail's notice to the owner).
type OutboxMessage struct {
	Kind, Key string
	Payload   []byte
}
