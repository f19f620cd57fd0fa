package store

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"gorm.io/gorm"

	"github.com/tacklegate/tacklegate/rental"
)

// KindRentalWebhook is the outbox kind of order events for the shop's
// other rental system (adapters/rentalhook delivers them).
const KindRentalWebhook = "rental_webhook"

// orderEventTypes says which transitions are events, and their names.
// awaiting_payment is not one: it only says a payment attempt started.
var orderEventTypes = map[rental.OrderState]string{
	rental.StateCreated:   "order.created",
	rental.StatePaid:      "order.paid",
	rental.StatePickedUp:  "order.picked_up",
	rental.StateReturned:  "order.returned",
	rental.StateSettled:   "order.settled",
	rental.StateCancelled: "order.cancelled",
	rental.StateExpired:   "order.expired",
}

// OrderEvent is the body of one order webhook: what happened, and the order
// as it stood right after. Money is in fen; dates are Asia/Shanghai days.
type OrderEvent struct {
	ID         string          `json:"id"` // idempotency key: the same on every retry
	Type       string          `json:"type"`
	At         time.Time       `json:"at"`
	Transition EventTransition `json:"transition"`
	Order      EventOrder      `json:"order"`
}

// EventTransition is the state change an event reports.
type EventTransition struct {
	Seq   int    `json:"seq"`
	From  string `json:"from"`
	To    string `json:"to"`
	Actor string `json:"actor"`
	Note  string `json:"note,omitempty"`
}

// EventOrder is the order in an event.
type EventOrder struct {
	ID            int64       `json:"id"`
	No            string      `json:"no"`
	MemberID      int64       `json:"member_id"`
	State         string      `json:"state"`
	From          rental.Date `json:"from"`
	To            rental.Date `json:"to"`
	Days          int         `json:"days"`
	Lines         []EventLine `json:"lines"`
	Rent          int64       `json:"rent"`
	Deposit       int64       `json:"deposit"`
	Total         int64       `json:"total"`
	DepositWaived bool        `json:"deposit_waived"`
	Paid          int64       `json:"paid"`
	Refunded      int64       `json:"refunded"`
	DaysLate      int         `json:"days_late"`
	LateFee       int64       `json:"late_fee"`
	DamageFee     int64       `json:"damage_fee"`
}

// EventLine is one unit of an order in an event.
type EventLine struct {
	ItemID   int64  `json:"item_id"`
	ItemName string `json:"item_name"`
	UnitID   int64  `json:"unit_id"`
	Serial   string `json:"serial"`
	Rent     int64  `json:"rent"`
	Deposit  int64  `json:"deposit"`
}

// EmitOrderEvents makes order transitions also enqueue webhook events for
// the shop's other rental system (when one is configured).
func (db *DB) EmitOrderEvents(on bool) { db.orderEvents = on }

// enqueueOrderEvents writes one outbox row per eventful transition, inside
// the transaction that stores the transitions: the events exist exactly
// when the changes commit. Keyed by order and sequence, so an event is
// enqueued once.
func (db *DB) enqueueOrderEvents(tx *gorm.DB, o *rental.Order, fresh []rental.Transition) error {
	if !db.orderEvents {
		return nil
	}
	var eventful []rental.Transition
	for _, t := range fresh {
		if _, ok := orderEventTypes[t.To]; ok {
			eventful = append(eventful, t)
		}
	}
	if len(eventful) == 0 {
		return nil
	}
	ids := make([]int64, len(o.Lines))
	for i, l := range o.Lines {
		ids[i] = int64(l.UnitID)
	}
	var units []unitRow
	if err := tx.Select("id", "serial").Where("id IN ?", ids).Find(&units).Error; err != nil {
		return err
	}
	serial := map[int64]string{}
	for _, u := range units {
		serial[u.ID] = u.Serial
	}
	snap := EventOrder{
		ID: int64(o.ID), No: o.No, MemberID: int64(o.MemberID), State: string(o.State), From: o.Period.From, To: o.Period.To,
		Days: o.Period.Days(), Rent: int64(o.Rent()), Deposit: int64(o.Deposit()), Total: int64(o.Total()),
		DepositWaived: o.DepositWaived, Paid: int64(o.PaidTotal()), Refunded: int64(o.RefundedTotal()),
		DaysLate: o.DaysLate, LateFee: int64(o.LateFee), DamageFee: int64(o.DamageFee),
	}
	for _, l := range o.Lines {
		snap.Lines = append(snap.Lines, EventLine{ItemID: int64(l.ItemID), ItemName: l.ItemName, UnitID: int64(l.UnitID),
			Serial: serial[int64(l.UnitID)], Rent: int64(l.Rent), Deposit: int64(l.Deposit)})
	}
	for _, t := range eventful {
		ev := OrderEvent{
			ID: "order-" + strconv.FormatInt(int64(o.ID), 10) + "-" + strconv.Itoa(t.Seq), Type: orderEventTypes[t.To], At: t.At.UTC(),
			Transition: EventTransition{Seq: t.Seq, From: string(t.From), To: string(t.To), Actor: string(t.Actor), Note: t.Note},
			Order:      snap,
		}
		payload, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		if err := db.enqueue(tx, KindRentalWebhook, ev.ID, payload); err != nil {
			return err
		}
	}
	return nil
}

// DeadOutboxPage lists dead messages (the dead-letter list) by id after the
// cursor, optionally of one kind.
func (db *DB) DeadOutboxPage(ctx context.Context, kind string, after int64, limit int) ([]OutboxItem, error) {
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	q := db.Gorm.WithContext(ctx).Where("dead_at IS NOT NULL AND id > ?", after)
	if kind != "" {
		q = q.Where("kind = ?", kind)
	}
	var rows []outboxRow
	if err := q.Order("id").Limit(limit).Find(&rows).Error; err != nil {
		return nil, classify("store.DeadOutboxPage", err)
	}
	out := make([]OutboxItem, len(rows))
	for i, r := range rows {
		out[i] = OutboxItem{ID: r.ID, Kind: r.Kind, Key: r.DedupeKey, Attempts: r.Attempts, LastError: r.LastError, CreatedAt: r.CreatedAt, DeadAt: r.DeadAt}
	}
	return out, nil
}
