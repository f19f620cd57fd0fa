package store

import (
	"context"
	"time"

	"gorm.io/gorm/clause"

	"github.com/tacklegate/tacklegate/rental"
)

// PayAnomaly is something the payment flow met and did not simply apply:
// the record reconciliation and the owner work from.
type PayAnomaly struct {
	ID          int64          `json:"id"`
	Kind        string         `json:"kind"` // see the Anomaly* constants
	Key         string         `json:"-"`    // dedupe: one record per cause
	Source      string         `json:"source"`
	OrderID     rental.OrderID `json:"order_id,omitempty"`
	OutTradeNo  string         `json:"out_trade_no,omitempty"`
	OutRefundNo string         `json:"out_refund_no,omitempty"`
	Amount      rental.Fen     `json:"amount"`   // as WeChat Pay reported it
	Expected    rental.Fen     `json:"expected"` // as we expected it
	Detail      string         `json:"detail,omitempty"`
	CreatedAt   time.Time      `json:"created_at"`
}

// Kinds of PayAnomaly.
const (
	AnomalyUnknownTrade    = "unknown_trade"     // paid at WeChat Pay, no such payment here
	AnomalyAmountMismatch  = "amount_mismatch"   // paid amount is not the attempt's
	AnomalyForeignApp      = "foreign_app"       // appid is not our mini-program
	AnomalyForeignMerchant = "foreign_merchant"  // mchid is not ours
	AnomalyNotSuccess      = "not_success"       // a success notification without trade_state SUCCESS
	AnomalyOrphanedPayment = "orphaned_payment"  // money for an order that no longer wanted it; refunded
	AnomalyUnknownRefund   = "unknown_refund"    // a refund notification for no refund of ours
	AnomalyRefundMismatch  = "refund_mismatch"   // refunded amount is not the one asked for
	AnomalyRefundFailed    = "refund_failed"     // CLOSED or ABNORMAL: the owner must act
	AnomalyProcessing      = "processing_failed" // a notification that could not be processed
)

type payAnomalyRow struct {
	ID          int64 `gorm:"primaryKey"`
	Kind        string
	DedupeKey   string
	Source      string
	OrderID     *int64
	OutTradeNo  string
	OutRefundNo string
	Amount      int64
	Expected    int64
	Detail      string
	CreatedAt   time.Time
}

func (payAnomalyRow) TableName() string { return "pay_anomalies" }

// RecordPayAnomaly stores a once per Key (a repeated cause is a no-op).
func (db *DB) RecordPayAnomaly(ctx context.Context, a PayAnomaly) error {
	if a.Key == "" {
		return rental.Errorf("store.RecordPayAnomaly", rental.KindInternal, "anomaly without a key")
	}
	row := payAnomalyRow{Kind: a.Kind, DedupeKey: a.Key, Source: a.Source, OutTradeNo: a.OutTradeNo, OutRefundNo: a.OutRefundNo,
		Amount: int64(a.Amount), Expected: int64(a.Expected), Detail: truncate(a.Detail, 1000), CreatedAt: time.Now().UTC()}
	if a.OrderID > 0 {
		id := int64(a.OrderID)
		row.OrderID = &id
	}
	err := db.Gorm.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error
	return rentalErr("store.RecordPayAnomaly", err)
}

// PayAnomalies lists anomalies recorded in [from, to), by id after the
// cursor. A zero to means up to now.
func (db *DB) PayAnomalies(ctx context.Context, from, to time.Time, after int64, limit int) ([]PayAnomaly, error) {
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	q := db.Gorm.WithContext(ctx).Where("id > ? AND created_at >= ?", after, from.UTC()).Order("id").Limit(limit)
	if !to.IsZero() {
		q = q.Where("created_at < ?", to.UTC())
	}
	var rows []payAnomalyRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, rentalErr("store.PayAnomalies", err)
	}
	out := make([]PayAnomaly, len(rows))
	for i, r := range rows {
		out[i] = PayAnomaly{ID: r.ID, Kind: r.Kind, Key: r.DedupeKey, Source: r.Source, OutTradeNo: r.OutTradeNo, OutRefundNo: r.OutRefundNo,
			Amount: rental.Fen(r.Amount), Expected: rental.Fen(r.Expected), Detail: r.Detail, CreatedAt: r.CreatedAt.UTC()}
		if r.OrderID != nil {
			out[i].OrderID = rental.OrderID(*r.OrderID)
		}
	}
	return out, nil
}
