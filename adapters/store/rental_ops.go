package store

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/tacklegate/tacklegate/rental"
)

// Queries and transactions the gateway's order routes and payment jobs
// need beyond the rental ports.

// InTx runs fn with a DB bound to one transaction: everything fn does
// through tx — SaveOrder, SaveInspection, Enqueue, RecordPayAnomaly … —
// commits together or not at all. Methods that open their own transaction
// nest inside it as savepoints.
//
// fn must use only tx: on SQLite the transaction holds the one write lock,
// so a write through the outer DB would wait for it. Values saved in a
// transaction that then rolls back keep what the store set on them (an
// order's version, new ids): read them again before deciding anew.
func (db *DB) InTx(ctx context.Context, fn func(tx *DB) error) error {
	return db.Gorm.WithContext(ctx).Transaction(func(g *gorm.DB) error {
		tx := *db
		tx.Gorm = g
		return fn(&tx)
	})
}

// LockOrder takes the order's row lock until the transaction ends, so that
// a read-modify-save inside InTx cannot lose to a concurrent one. Only
// PostgreSQL needs it: a SQLite write transaction excludes other writers
// from its start.
func (db *DB) LockOrder(ctx context.Context, id rental.OrderID) error {
	if db.Dialect != Postgres {
		return nil
	}
	var ids []int64
	err := db.lockForUpdate(db.Gorm.WithContext(ctx).Model(&orderRow{}).Select("id").Where("id = ?", id)).Find(&ids).Error
	if err != nil {
		return rentalErr("store.LockOrder", err)
	}
	if len(ids) == 0 {
		return rental.Errorf("store.LockOrder", rental.KindNotFound, "订单不存在 (no such order)")
	}
	return nil
}

// Unit reads one unit.
func (db *DB) Unit(ctx context.Context, id rental.UnitID) (rental.Unit, error) {
	var r unitRow
	if err := db.Gorm.WithContext(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return rental.Unit{}, rental.Errorf("store.Unit", rental.KindNotFound, "装备不存在 (no such unit): %d", id)
		}
		return rental.Unit{}, rentalErr("store.Unit", err)
	}
	return r.unit(), nil
}

// UnitSerials returns the serial of each unit asked for.
func (db *DB) UnitSerials(ctx context.Context, ids []rental.UnitID) (map[rental.UnitID]string, error) {
	out := map[rental.UnitID]string{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []unitRow
	if err := db.Gorm.WithContext(ctx).Select("id", "serial").Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, rentalErr("store.UnitSerials", err)
	}
	for _, r := range rows {
		out[rental.UnitID(r.ID)] = r.Serial
	}
	return out, nil
}

// PayerOpenID returns the openid, under the mini-program appID, that member
// pays with: the identity the customer is signed in with when it belongs to
// them, otherwise their most recently linked WeChat identity. A member who
// has only ever signed in by SMS has none.
func (db *DB) PayerOpenID(ctx context.Context, member rental.MemberID, appID string, preferred rental.IdentityID) (string, error) {
	const op = "store.PayerOpenID"
	g := db.Gorm.WithContext(ctx)
	var ir identityRow
	if preferred > 0 {
		err := g.Where("id = ? AND member_id = ? AND app_id = ?", preferred, member, appID).Take(&ir).Error
		if err == nil {
			return ir.OpenID, nil
		}
		if !errors.Is(err, gorm.ErrRecordNotFound) {
			return "", classify(op, err)
		}
	}
	err := g.Where("member_id = ? AND app_id = ?", member, appID).Order("id DESC").Take(&ir).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return "", rental.Errorf(op, rental.KindInvalid, "请用微信登录小程序后再付款 (log in with WeChat in the mini-program to pay)")
	}
	if err != nil {
		return "", classify(op, err)
	}
	return ir.OpenID, nil
}

// OrderFilter selects orders for the staff console, newest first.
type OrderFilter struct {
	States []rental.OrderState // empty: all
	Before rental.OrderID      // cursor: the last id of the previous page
	Limit  int                 // 1–100; 0 means 20
}

// ListOrders lists orders for staff, newest first.
func (db *DB) ListOrders(ctx context.Context, f OrderFilter) ([]*rental.Order, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 20
	}
	g := db.Gorm.WithContext(ctx)
	q := g.Order("id DESC").Limit(min(limit, 100))
	if f.Before > 0 {
		q = q.Where("id < ?", f.Before)
	}
	if len(f.States) > 0 {
		states := make([]string, len(f.States))
		for i, s := range f.States {
			states[i] = string(s)
		}
		q = q.Where("state IN ?", states)
	}
	orders, err := loadOrders(g, q)
	return orders, rentalErr("store.ListOrders", err)
}

// OrdersWithPayments lists, by id, the orders with a payment attempt made
// in [from, to), after the cursor: what reconciliation compares with
// WeChat Pay.
func (db *DB) OrdersWithPayments(ctx context.Context, from, to time.Time, after rental.OrderID, limit int) ([]*rental.Order, error) {
	if limit <= 0 {
		limit = 50
	}
	g := db.Gorm.WithContext(ctx)
	q := g.Where("id > ? AND id IN (SELECT order_id FROM payments WHERE created_at >= ? AND created_at < ?)", after, from.UTC(), to.UTC()).
		Order("id").Limit(min(limit, 500))
	orders, err := loadOrders(g, q)
	return orders, rentalErr("store.OrdersWithPayments", err)
}

// PaymentRef names one payment or refund attempt of an order.
type PaymentRef struct {
	OrderID rental.OrderID
	No      string // out_trade_no or out_refund_no
}

// PaymentsToCheck lists pending payment attempts to ask WeChat Pay about:
// those older than before (the notification is late), and any on an order
// that no longer waits for payment (expired or cancelled: close them; paid
// by another attempt: see whether this one was paid too).
func (db *DB) PaymentsToCheck(ctx context.Context, before time.Time, limit int) ([]PaymentRef, error) {
	if limit <= 0 {
		limit = 50
	}
	var rows []struct {
		OrderID    int64
		OutTradeNo string
	}
	err := db.Gorm.WithContext(ctx).Table("payments p").Select("p.order_id, p.out_trade_no").
		Joins("JOIN orders o ON o.id = p.order_id").
		Where("p.state = ? AND (p.created_at < ? OR o.state NOT IN ?)", string(rental.PaymentPending), before.UTC(),
			[]string{string(rental.StateCreated), string(rental.StateAwaitingPayment)}).
		Order("p.created_at, p.id").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, rentalErr("store.PaymentsToCheck", err)
	}
	out := make([]PaymentRef, len(rows))
	for i, r := range rows {
		out[i] = PaymentRef{OrderID: rental.OrderID(r.OrderID), No: r.OutTradeNo}
	}
	return out, nil
}

// RefundsToCheck lists refunds still pending that were asked for before
// before: their notification is late, or the request never reached WeChat
// Pay.
func (db *DB) RefundsToCheck(ctx context.Context, before time.Time, limit int) ([]PaymentRef, error) {
	if limit <= 0 {
		limit = 50
	}
	var rows []struct {
		OrderID     int64
		OutRefundNo string
	}
	err := db.Gorm.WithContext(ctx).Model(&refundRow{}).Select("order_id, out_refund_no").
		Where("state = ? AND created_at < ?", string(rental.RefundPending), before.UTC()).
		Order("created_at, id").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, rentalErr("store.RefundsToCheck", err)
	}
	out := make([]PaymentRef, len(rows))
	for i, r := range rows {
		out[i] = PaymentRef{OrderID: rental.OrderID(r.OrderID), No: r.OutRefundNo}
	}
	return out, nil
}
