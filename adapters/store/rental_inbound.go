package store

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/tacklegate/tacklegate/rental"
)

// Processing stored WeChat Pay notifications: each is claimed and carried
// out in one transaction, so it takes effect exactly once.

// PendingPayNotifications lists the ids of stored WeChat Pay notifications
// not processed yet, oldest first.
func (db *DB) PendingPayNotifications(ctx context.Context, limit int) ([]int64, error) {
	if limit <= 0 {
		limit = 50
	}
	var ids []int64
	err := db.Gorm.WithContext(ctx).Model(&inboundRow{}).
		Where("channel = ? AND processed_at IS NULL", string(rental.ChannelWeChatPay)).
		Order("id").Limit(limit).Pluck("id", &ids).Error
	return ids, classify("store.PendingPayNotifications", err)
}

// ProcessInbound claims a stored callback and runs fn with it in the same
// transaction: the row is marked processed exactly when fn's effects
// commit. done is false when the callback was processed already (by an
// earlier run or another instance); fn then does not run. An error from fn
// rolls everything back and leaves the callback to be tried again.
func (db *DB) ProcessInbound(ctx context.Context, id int64, fn func(tx *DB, in *rental.Inbound) error) (done bool, err error) {
	const op = "store.ProcessInbound"
	s, err := db.sealerFor(op)
	if err != nil {
		return false, err
	}
	err = db.InTx(ctx, func(tx *DB) error {
		g := tx.Gorm.WithContext(ctx)
		// Claiming first takes the row lock on PostgreSQL: a concurrent
		// claim waits for this transaction and then finds nothing to do.
		res := g.Model(&inboundRow{}).Where("id = ? AND processed_at IS NULL", id).
			Updates(map[string]any{"processed_at": time.Now().UTC(), "last_error": ""})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return nil
		}
		var row inboundRow
		if err := g.Where("id = ?", id).Take(&row).Error; err != nil {
			return err
		}
		payload, err := s.open(row.Payload, inboundAD(rental.Channel(row.Channel), row.DedupeKey))
		if err != nil {
			return rental.Wrap(op, rental.KindInternal, "", err)
		}
		in := &rental.Inbound{
			ID: row.ID, Channel: rental.Channel(row.Channel), DedupeKey: row.DedupeKey, Kind: row.Kind,
			From: row.FromUser, To: row.ToUser, Payload: payload, ReceivedAt: row.ReceivedAt.UTC(),
		}
		if row.SentAt != nil {
			in.SentAt = row.SentAt.UTC()
		}
		if err := fn(tx, in); err != nil {
			return err
		}
		done = true
		return nil
	})
	if err != nil {
		return false, rentalErr(op, err)
	}
	return done, nil
}

// InboundAttempts returns how often processing a callback has failed.
func (db *DB) InboundAttempts(ctx context.Context, id int64) (int, error) {
	var row inboundRow
	err := db.Gorm.WithContext(ctx).Select("id", "attempts").Where("id = ?", id).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return 0, rental.Errorf("store.InboundAttempts", rental.KindNotFound, "no inbound callback %d", id)
	}
	return row.Attempts, classify("store.InboundAttempts", err)
}

// InboundAttemptFailed records a failed attempt at processing a callback.
// With giveUp the callback is marked processed, the error kept with it, so
// that it is not tried forever; the payment jobs and reconciliation still
// find what it was about.
func (db *DB) InboundAttemptFailed(ctx context.Context, id int64, cause string, giveUp bool) error {
	upd := map[string]any{"attempts": gorm.Expr("attempts + 1"), "last_error": truncate(cause, 500)}
	if giveUp {
		upd["processed_at"] = time.Now().UTC()
	}
	err := db.Gorm.WithContext(ctx).Model(&inboundRow{}).Where("id = ? AND processed_at IS NULL", id).Updates(upd).Error
	return classify("store.InboundAttemptFailed", err)
}
