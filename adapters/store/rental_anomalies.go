package store

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

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
	// The owner's resolution: when, who and why; nil while open.
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
	ResolvedBy string     `json:"resolved_by,omitempty"`
	Resolution string     `json:"resolution,omitempty"`
}

// Resolved reports whether the owner has dealt with the anomaly.
func (a PayAnomaly) Resolved() bool { return a.ResolvedAt != nil }

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
	ResolvedAt  *time.Time
	ResolvedBy  string
	Resolution  string
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

// PayAnomalies lists every anomaly, open or resolved, recorded in
// [from, to), by id after the cursor. A zero to means up to now.
func (db *DB) PayAnomalies(ctx context.Context, from, to time.Time, after int64, limit int) ([]PayAnomaly, error) {
	return db.ListPayAnomalies(ctx, AnomalyFilter{From: from, To: to, After: after, Limit: limit, Status: AnomaliesAll})
}

// Which anomalies AnomalyFilter.Status selects.
const (
	AnomaliesOpen     = "open"     // not resolved yet (the default)
	AnomaliesResolved = "resolved" // resolved by the owner
	AnomaliesAll      = "all"
)

// AnomalyFilter selects anomalies: recorded in [From, To) (a zero To means
// up to now), by id after After, at most Limit (1–200, default 50).
type AnomalyFilter struct {
	From, To time.Time
	After    int64
	Limit    int
	Status   string // AnomaliesOpen when empty
}

// ListPayAnomalies lists the anomalies f selects, by id.
func (db *DB) ListPayAnomalies(ctx context.Context, f AnomalyFilter) ([]PayAnomaly, error) {
	const op = "store.ListPayAnomalies"
	if f.Limit <= 0 || f.Limit > 200 {
		f.Limit = 50
	}
	q := db.Gorm.WithContext(ctx).Where("id > ? AND created_at >= ?", f.After, f.From.UTC()).Order("id").Limit(f.Limit)
	if !f.To.IsZero() {
		q = q.Where("created_at < ?", f.To.UTC())
	}
	switch f.Status {
	case "", AnomaliesOpen:
		q = q.Where("resolved_at IS NULL")
	case AnomaliesResolved:
		q = q.Where("resolved_at IS NOT NULL")
	case AnomaliesAll:
	default:
		return nil, rental.Errorf(op, rental.KindInvalid, "status 应为 open、resolved 或 all (status must be open, resolved or all), not %q", f.Status)
	}
	var rows []payAnomalyRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, rentalErr(op, err)
	}
	out := make([]PayAnomaly, len(rows))
	for i, r := range rows {
		out[i] = r.anomaly()
	}
	return out, nil
}

func (r payAnomalyRow) anomaly() PayAnomaly {
	a := PayAnomaly{ID: r.ID, Kind: r.Kind, Key: r.DedupeKey, Source: r.Source, OutTradeNo: r.OutTradeNo, OutRefundNo: r.OutRefundNo,
		Amount: rental.Fen(r.Amount), Expected: rental.Fen(r.Expected), Detail: r.Detail, CreatedAt: r.CreatedAt.UTC(),
		ResolvedBy: r.ResolvedBy, Resolution: r.Resolution}
	if r.OrderID != nil {
		a.OrderID = rental.OrderID(*r.OrderID)
	}
	if r.ResolvedAt != nil {
		t := r.ResolvedAt.UTC()
		a.ResolvedAt = &t
	}
	return a
}

// maxResolutionRunes bounds the owner's note.
const maxResolutionRunes = 500

// ResolvePayAnomaly marks an open anomaly resolved by by (who) at at, with
// note (why). An anomaly is resolved once: resolving it again is a
// conflict naming who did it (the database refuses any other change, see
// migration 00040).
func (db *DB) ResolvePayAnomaly(ctx context.Context, id int64, by, note string, at time.Time) (PayAnomaly, error) {
	const op = "store.ResolvePayAnomaly"
	note = strings.TrimSpace(note)
	if note == "" {
		return PayAnomaly{}, rental.Errorf(op, rental.KindInvalid, "请写明处理说明 (a note saying how it was resolved is required)")
	}
	if utf8.RuneCountInString(note) > maxResolutionRunes {
		return PayAnomaly{}, rental.Errorf(op, rental.KindInvalid, "处理说明最多 %d 字 (the note has at most %d characters)", maxResolutionRunes, maxResolutionRunes)
	}
	if by == "" {
		return PayAnomaly{}, rental.Errorf(op, rental.KindInternal, "who resolves the anomaly is unknown")
	}
	var out PayAnomaly
	err := db.InTx(ctx, func(tx *DB) error {
		var row payAnomalyRow
		if err := tx.Gorm.WithContext(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
			return rentalErr(op, err)
		}
		if row.ResolvedAt != nil {
			return rental.Errorf(op, rental.KindConflict, "该异常已由 %s 于 %s 处理 (already resolved by %s at %s)",
				row.ResolvedBy, row.ResolvedAt.In(rental.Shanghai()).Format("2006-01-02 15:04"), row.ResolvedBy, row.ResolvedAt.UTC().Format(time.RFC3339))
		}
		when := at.UTC()
		res := tx.Gorm.WithContext(ctx).Model(&payAnomalyRow{}).Where("id = ? AND resolved_at IS NULL", id).
			Updates(map[string]any{"resolved_at": when, "resolved_by": by, "resolution": note})
		if res.Error != nil {
			return rentalErr(op, res.Error)
		}
		if res.RowsAffected != 1 {
			return rental.Errorf(op, rental.KindConflict, "该异常刚被处理 (resolved meanwhile)")
		}
		row.ResolvedAt, row.ResolvedBy, row.Resolution = &when, by, note
		out = row.anomaly()
		return nil
	})
	return out, err
}

// PayAnomaliesFor lists the anomalies recorded about these payment and
// refund numbers, keyed by out_trade_no or out_refund_no (a refund's under
// its refund number), oldest first.
func (db *DB) PayAnomaliesFor(ctx context.Context, tradeNos, refundNos []string) (map[string][]PayAnomaly, error) {
	const op = "store.PayAnomaliesFor"
	out := map[string][]PayAnomaly{}
	add := func(col string, nos []string, key func(PayAnomaly) string) error {
		for len(nos) > 0 {
			chunk := nos[:min(len(nos), 500)]
			nos = nos[len(chunk):]
			var rows []payAnomalyRow
			if err := db.Gorm.WithContext(ctx).Where(col+" IN ?", chunk).Order("id").Find(&rows).Error; err != nil {
				return rentalErr(op, err)
			}
			for _, r := range rows {
				a := r.anomaly()
				out[key(a)] = append(out[key(a)], a)
			}
		}
		return nil
	}
	if err := add("out_trade_no", tradeNos, func(a PayAnomaly) string { return a.OutTradeNo }); err != nil {
		return nil, err
	}
	if err := add("out_refund_no", refundNos, func(a PayAnomaly) string { return a.OutRefundNo }); err != nil {
		return nil, err
	}
	return out, nil
}
