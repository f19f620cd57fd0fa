package store

import (
	"context"
	"time"

	"github.com/tacklegate/tacklegate/rental"
)

// Reads for comparing our payments and refunds with WeChat Pay's daily
// trade bill.

// PaymentRecord is one payment attempt as recorded here.
type PaymentRecord struct {
	OrderID       rental.OrderID
	OrderNo       string
	OutTradeNo    string
	Amount        rental.Fen
	State         rental.PaymentState
	TransactionID string
	CreatedAt     time.Time
	PaidAt        time.Time // zero unless paid
}

// RefundRecord is one refund attempt as recorded here.
type RefundRecord struct {
	OrderID     rental.OrderID
	OrderNo     string
	OutRefundNo string
	OutTradeNo  string
	Amount      rental.Fen
	State       rental.RefundState
	RefundID    string
	CreatedAt   time.Time
	SucceededAt time.Time
}

// The rows of the joins below, with their columns spelled out so that each
// selected column maps to exactly one field.
type paymentRecordRow struct {
	OrderID       int64
	OrderNo       string
	OutTradeNo    string
	Amount        int64
	State         string
	TransactionID string
	CreatedAt     time.Time
	PaidAt        *time.Time
}

type refundRecordRow struct {
	OrderID     int64
	OrderNo     string
	OutRefundNo string
	OutTradeNo  string
	Amount      int64
	State       string
	RefundID    string
	CreatedAt   time.Time
	SucceededAt *time.Time
}

const (
	paymentRecordCols = "p.order_id, o.order_no, p.out_trade_no, p.amount, p.state, p.transaction_id, p.created_at, p.paid_at"
	refundRecordCols  = "r.order_id, o.order_no, r.out_refund_no, r.out_trade_no, r.amount, r.state, r.refund_id, r.created_at, r.succeeded_at"
)

func (r paymentRecordRow) record() PaymentRecord {
	p := PaymentRecord{OrderID: rental.OrderID(r.OrderID), OrderNo: r.OrderNo, OutTradeNo: r.OutTradeNo, Amount: rental.Fen(r.Amount),
		State: rental.PaymentState(r.State), TransactionID: r.TransactionID, CreatedAt: r.CreatedAt.UTC()}
	if r.PaidAt != nil {
		p.PaidAt = r.PaidAt.UTC()
	}
	return p
}

func (r refundRecordRow) record() RefundRecord {
	f := RefundRecord{OrderID: rental.OrderID(r.OrderID), OrderNo: r.OrderNo, OutRefundNo: r.OutRefundNo, OutTradeNo: r.OutTradeNo,
		Amount: rental.Fen(r.Amount), State: rental.RefundState(r.State), RefundID: r.RefundID, CreatedAt: r.CreatedAt.UTC()}
	if r.SucceededAt != nil {
		f.SucceededAt = r.SucceededAt.UTC()
	}
	return f
}

// PaymentsPaidBetween lists the payment attempts paid in [from, to), by
// when they were paid.
func (db *DB) PaymentsPaidBetween(ctx context.Context, from, to time.Time) ([]PaymentRecord, error) {
	var rows []paymentRecordRow
	err := db.Gorm.WithContext(ctx).Table("payments p").Select(paymentRecordCols).Joins("JOIN orders o ON o.id = p.order_id").
		Where("p.state = ? AND p.paid_at >= ? AND p.paid_at < ?", string(rental.PaymentSucceeded), from.UTC(), to.UTC()).
		Order("p.paid_at, p.id").Find(&rows).Error
	if err != nil {
		return nil, rentalErr("store.PaymentsPaidBetween", err)
	}
	out := make([]PaymentRecord, len(rows))
	for i, r := range rows {
		out[i] = r.record()
	}
	return out, nil
}

// RefundsCreatedBetween lists the refund attempts started in [from, to)
// that were not refused outright (failed ones were never on a bill as
// refunded money, but are listed too: WeChat Pay shows them with their
// status).
func (db *DB) RefundsCreatedBetween(ctx context.Context, from, to time.Time) ([]RefundRecord, error) {
	var rows []refundRecordRow
	err := db.Gorm.WithContext(ctx).Table("refunds r").Select(refundRecordCols).Joins("JOIN orders o ON o.id = r.order_id").
		Where("r.created_at >= ? AND r.created_at < ?", from.UTC(), to.UTC()).
		Order("r.created_at, r.id").Find(&rows).Error
	if err != nil {
		return nil, rentalErr("store.RefundsCreatedBetween", err)
	}
	out := make([]RefundRecord, len(rows))
	for i, r := range rows {
		out[i] = r.record()
	}
	return out, nil
}

// PaymentsByOutTradeNo finds payment attempts by number; unknown numbers
// are absent from the map.
func (db *DB) PaymentsByOutTradeNo(ctx context.Context, nos []string) (map[string]PaymentRecord, error) {
	out := map[string]PaymentRecord{}
	for len(nos) > 0 {
		chunk := nos[:min(len(nos), 500)]
		nos = nos[len(chunk):]
		var rows []paymentRecordRow
		err := db.Gorm.WithContext(ctx).Table("payments p").Select(paymentRecordCols).Joins("JOIN orders o ON o.id = p.order_id").
			Where("p.out_trade_no IN ?", chunk).Find(&rows).Error
		if err != nil {
			return nil, rentalErr("store.PaymentsByOutTradeNo", err)
		}
		for _, r := range rows {
			out[r.OutTradeNo] = r.record()
		}
	}
	return out, nil
}

// RefundsByOutRefundNo finds refund attempts by number; unknown numbers
// are absent from the map.
func (db *DB) RefundsByOutRefundNo(ctx context.Context, nos []string) (map[string]RefundRecord, error) {
	out := map[string]RefundRecord{}
	for len(nos) > 0 {
		chunk := nos[:min(len(nos), 500)]
		nos = nos[len(chunk):]
		var rows []refundRecordRow
		err := db.Gorm.WithContext(ctx).Table("refunds r").Select(refundRecordCols).Joins("JOIN orders o ON o.id = r.order_id").
			Where("r.out_refund_no IN ?", chunk).Find(&rows).Error
		if err != nil {
			return nil, rentalErr("store.RefundsByOutRefundNo", err)
		}
		for _, r := range rows {
			out[r.OutRefundNo] = r.record()
		}
	}
	return out, nil
}
