package store

import (
	"context"
	"slices"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tacklegate/tacklegate/rental"
)

var _ rental.OrderStore = (*DB)(nil)

type orderRow struct {
	ID                    int64 `gorm:"primaryKey"`
	OrderNo               string
	MemberID              int64
	Tier                  string
	State                 string
	PeriodFrom            sqlDate
	PeriodTo              sqlDate
	DepositWaived         bool
	CleaningBufferSeconds int64
	LateFeePerDay         int64
	GracePeriodSeconds    int64
	Rent                  int64
	Deposit               int64
	Total                 int64
	DaysLate              int
	LateFee               int64
	DamageFee             int64
	CreatedAt             time.Time
	ExpiresAt             time.Time
	UpdatedAt             time.Time
	PaidAt                *time.Time
	PickedUpAt            *time.Time
	ReturnedAt            *time.Time
	ClosedAt              *time.Time
	Version               int64
}

func (orderRow) TableName() string { return "orders" }

type orderLineRow struct {
	ID          int64 `gorm:"primaryKey"`
	OrderID     int64
	LineNo      int
	ItemID      int64
	ItemName    string
	UnitID      int64
	Days        int
	PricePerDay int64
	Rent        int64
	Deposit     int64
}

func (orderLineRow) TableName() string { return "order_lines" }

type reservationRow struct {
	ID         int64 `gorm:"primaryKey"`
	OrderID    int64
	UnitID     int64
	StartsAt   time.Time
	EndsAt     time.Time
	ReleasedAt *time.Time
}

func (reservationRow) TableName() string { return "reservations" }

type transitionRow struct {
	OrderID    int64 `gorm:"primaryKey"`
	Seq        int   `gorm:"primaryKey"`
	FromState  string
	ToState    string
	Actor      string
	HappenedAt time.Time
	Note       string
}

func (transitionRow) TableName() string { return "order_transitions" }

type paymentRow struct {
	ID            int64 `gorm:"primaryKey"`
	OrderID       int64
	Attempt       int
	OutTradeNo    string
	Amount        int64
	State         string
	TransactionID string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	PaidAt        *time.Time
}

func (paymentRow) TableName() string { return "payments" }

type refundRow struct {
	ID            int64 `gorm:"primaryKey"`
	OrderID       int64
	Attempt       int
	OutRefundNo   string
	OutTradeNo    string
	PaymentAmount int64
	Amount        int64
	Reason        string
	State         string
	RefundID      string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	SucceededAt   *time.Time
}

func (refundRow) TableName() string { return "refunds" }

// Availability loads an item's units and the active reservations that
// touch the period (with its buffer) and works out what is free.
func (db *DB) Availability(ctx context.Context, item rental.ItemID, p rental.Period, buffer time.Duration) (rental.Availability, error) {
	const op = "store.Availability"
	units, err := db.Units(ctx, item)
	if err != nil {
		return rental.Availability{}, err
	}
	start, end := p.Block(buffer)
	var rows []reservationRow
	err = db.Gorm.WithContext(ctx).Table("reservations r").Select("r.*").
		Joins("JOIN units u ON u.id = r.unit_id").
		Where("u.item_id = ? AND r.released_at IS NULL AND r.starts_at < ? AND r.ends_at > ?", item, end.UTC(), start.UTC()).
		Find(&rows).Error
	if err != nil {
		return rental.Availability{}, rentalErr(op, err)
	}
	held := make([]rental.Reservation, len(rows))
	for i, r := range rows {
		held[i] = rental.Reservation{UnitID: rental.UnitID(r.UnitID), OrderID: rental.OrderID(r.OrderID), Start: r.StartsAt.UTC(), End: r.EndsAt.UTC()}
	}
	return rental.ComputeAvailability(item, units, held, p, buffer), nil
}

// Reserve stores a new order and gives each line a free unit, atomically.
//
// Two mechanisms keep a unit from being given twice. Reservations of the
// same item are serialized — on PostgreSQL by locking the item rows (in id
// order, so two orders for the same items cannot deadlock) before looking
// for free units; on SQLite by the single writer, since the transaction
// starts with BEGIN IMMEDIATE — so the free units found are still free when
// the reservation rows are inserted. Underneath, the database itself refuses
// any overlapping active reservation of a unit (an exclusion constraint on
// PostgreSQL, triggers on SQLite): should a path ever skip the locking, the
// insert fails as a conflict instead of double booking.
func (db *DB) Reserve(ctx context.Context, o *rental.Order) error {
	const op = "store.Reserve"
	switch {
	case o.ID != 0:
		return rental.Errorf(op, rental.KindInternal, "order %d is already stored", o.ID)
	case o.State != rental.StateCreated || len(o.Transitions) == 0:
		return rental.Errorf(op, rental.KindInternal, "only a new order (state created) can be reserved")
	case len(o.Lines) == 0:
		return rental.Errorf(op, rental.KindInvalid, "订单为空 (empty order)")
	}
	start, end := o.Period.Block(o.CleaningBuffer)
	start, end = start.UTC(), end.UTC()
	// How many units of each item, in the order the lines name them.
	want := map[rental.ItemID]int{}
	var itemIDs []int64
	for _, l := range o.Lines {
		if want[l.ItemID] == 0 {
			itemIDs = append(itemIDs, int64(l.ItemID))
		}
		want[l.ItemID]++
	}
	slices.Sort(itemIDs)
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var items []itemRow
		if err := db.lockForUpdate(tx.Select("id", "name", "active").Where("id IN ?", itemIDs).Order("id")).Find(&items).Error; err != nil {
			return err
		}
		if len(items) != len(itemIDs) {
			return rental.Errorf(op, rental.KindNotFound, "商品不存在 (no such item)")
		}
		assigned := map[rental.ItemID][]int64{}
		for _, it := range items {
			if !it.Active {
				return rental.Errorf(op, rental.KindConflict, "%s 已下架 (%s is not for rent now)", it.Name, it.Name)
			}
			n := want[rental.ItemID(it.ID)]
			var free []int64
			err := tx.Model(&unitRow{}).Where("item_id = ? AND status = ?", it.ID, string(rental.UnitAvailable)).
				Where("NOT EXISTS (SELECT 1 FROM reservations r WHERE r.unit_id = units.id AND r.released_at IS NULL AND r.starts_at < ? AND r.ends_at > ?)", end, start).
				Order("id").Limit(n).Pluck("id", &free).Error
			if err != nil {
				return err
			}
			if len(free) < n {
				return rental.Errorf(op, rental.KindConflict, "%s 在所选日期只剩 %d 件，不够 %d 件 (only %d of %s free for these dates, %d wanted)",
					it.Name, len(free), n, len(free), it.Name, n)
			}
			assigned[rental.ItemID(it.ID)] = free
		}
		row := orderToRow(o)
		row.ID, row.Version = 0, 1
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		lines := make([]orderLineRow, len(o.Lines))
		holds := make([]reservationRow, len(o.Lines))
		for i, l := range o.Lines {
			next := assigned[l.ItemID]
			unit := next[0]
			assigned[l.ItemID] = next[1:]
			lines[i] = orderLineRow{OrderID: row.ID, LineNo: i + 1, ItemID: int64(l.ItemID), ItemName: l.ItemName, UnitID: unit,
				Days: l.Days, PricePerDay: int64(l.PricePerDay), Rent: int64(l.Rent), Deposit: int64(l.Deposit)}
			holds[i] = reservationRow{OrderID: row.ID, UnitID: unit, StartsAt: start, EndsAt: end}
		}
		if err := tx.Create(&lines).Error; err != nil {
			return err
		}
		if err := tx.Create(&holds).Error; err != nil {
			return err
		}
		if err := insertTransitions(tx, row.ID, o.Transitions); err != nil {
			return err
		}
		o.ID, o.Version = rental.OrderID(row.ID), row.Version
		for i := range o.Lines {
			o.Lines[i].ID, o.Lines[i].UnitID = lines[i].ID, rental.UnitID(lines[i].UnitID)
		}
		return db.enqueueOrderEvents(tx, o, o.Transitions)
	})
	if err != nil {
		o.ID, o.Version = 0, 0
		for i := range o.Lines {
			o.Lines[i].ID, o.Lines[i].UnitID = 0, 0
		}
		return rentalErr(op, err)
	}
	return nil
}

func orderToRow(o *rental.Order) orderRow {
	return orderRow{
		ID: int64(o.ID), OrderNo: o.No, MemberID: int64(o.MemberID), Tier: string(o.Tier), State: string(o.State),
		PeriodFrom: sqlDate(o.Period.From), PeriodTo: sqlDate(o.Period.To), DepositWaived: o.DepositWaived,
		CleaningBufferSeconds: int64(o.CleaningBuffer / time.Second), LateFeePerDay: int64(o.LateFeePerDay),
		GracePeriodSeconds: int64(o.GracePeriod / time.Second),
		Rent:               int64(o.Rent()), Deposit: int64(o.Deposit()), Total: int64(o.Total()),
		DaysLate: o.DaysLate, LateFee: int64(o.LateFee), DamageFee: int64(o.DamageFee),
		CreatedAt: o.CreatedAt.UTC(), ExpiresAt: o.ExpiresAt.UTC(), UpdatedAt: o.UpdatedAt.UTC(),
		PaidAt: timePtr(o.PaidAt), PickedUpAt: timePtr(o.PickedUpAt), ReturnedAt: timePtr(o.ReturnedAt), ClosedAt: timePtr(o.ClosedAt),
		Version: o.Version,
	}
}

func (r orderRow) order() *rental.Order {
	return &rental.Order{
		ID: rental.OrderID(r.ID), No: r.OrderNo, MemberID: rental.MemberID(r.MemberID), Tier: rental.Tier(r.Tier),
		State: rental.OrderState(r.State), Period: rental.Period{From: rental.Date(r.PeriodFrom), To: rental.Date(r.PeriodTo)},
		DepositWaived: r.DepositWaived, CleaningBuffer: time.Duration(r.CleaningBufferSeconds) * time.Second,
		LateFeePerDay: rental.Fen(r.LateFeePerDay), GracePeriod: time.Duration(r.GracePeriodSeconds) * time.Second,
		DaysLate: r.DaysLate, LateFee: rental.Fen(r.LateFee), DamageFee: rental.Fen(r.DamageFee),
		CreatedAt: r.CreatedAt.UTC(), ExpiresAt: r.ExpiresAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
		PaidAt: timeVal(r.PaidAt), PickedUpAt: timeVal(r.PickedUpAt), ReturnedAt: timeVal(r.ReturnedAt), ClosedAt: timeVal(r.ClosedAt),
		Version: r.Version,
	}
}

func insertTransitions(tx *gorm.DB, orderID int64, ts []rental.Transition) error {
	if len(ts) == 0 {
		return nil
	}
	rows := make([]transitionRow, len(ts))
	for i, t := range ts {
		rows[i] = transitionRow{OrderID: orderID, Seq: t.Seq, FromState: string(t.From), ToState: string(t.To),
			Actor: string(t.Actor), HappenedAt: t.At.UTC(), Note: t.Note}
	}
	return tx.Create(&rows).Error
}

// Order reads one order whole.
func (db *DB) Order(ctx context.Context, id rental.OrderID) (*rental.Order, error) {
	return db.oneOrder(ctx, "store.Order", db.Gorm.WithContext(ctx).Where("id = ?", id))
}

// OrderByNo reads the order with this order number.
func (db *DB) OrderByNo(ctx context.Context, no string) (*rental.Order, error) {
	return db.oneOrder(ctx, "store.OrderByNo", db.Gorm.WithContext(ctx).Where("order_no = ?", no))
}

// OrderByOutTradeNo finds the order a WeChat Pay notification is about.
func (db *DB) OrderByOutTradeNo(ctx context.Context, outTradeNo string) (*rental.Order, error) {
	return db.oneOrder(ctx, "store.OrderByOutTradeNo", db.Gorm.WithContext(ctx).
		Where("id = (SELECT order_id FROM payments WHERE out_trade_no = ?)", outTradeNo))
}

// OrderByOutRefundNo finds the order a refund notification is about.
func (db *DB) OrderByOutRefundNo(ctx context.Context, outRefundNo string) (*rental.Order, error) {
	return db.oneOrder(ctx, "store.OrderByOutRefundNo", db.Gorm.WithContext(ctx).
		Where("id = (SELECT order_id FROM refunds WHERE out_refund_no = ?)", outRefundNo))
}

// MemberOrders lists a member's orders, newest first.
func (db *DB) MemberOrders(ctx context.Context, m rental.MemberID, before rental.OrderID, limit int) ([]*rental.Order, error) {
	if limit <= 0 {
		limit = 20
	}
	q := db.Gorm.WithContext(ctx).Where("member_id = ?", m).Order("id DESC").Limit(min(limit, 100))
	if before > 0 {
		q = q.Where("id < ?", before)
	}
	orders, err := loadOrders(db.Gorm.WithContext(ctx), q)
	return orders, rentalErr("store.MemberOrders", err)
}

// UnpaidExpired lists unpaid orders whose payment time has run out, oldest
// first.
func (db *DB) UnpaidExpired(ctx context.Context, now time.Time, limit int) ([]rental.OrderID, error) {
	if limit <= 0 {
		limit = 100
	}
	var ids []rental.OrderID
	err := db.Gorm.WithContext(ctx).Model(&orderRow{}).
		Where("state IN ? AND expires_at <= ?", []string{string(rental.StateCreated), string(rental.StateAwaitingPayment)}, now.UTC()).
		Order("expires_at, id").Limit(limit).Pluck("id", &ids).Error
	return ids, rentalErr("store.UnpaidExpired", err)
}

func (db *DB) oneOrder(ctx context.Context, op string, q *gorm.DB) (*rental.Order, error) {
	orders, err := loadOrders(db.Gorm.WithContext(ctx), q.Limit(1))
	if err != nil {
		return nil, rentalErr(op, err)
	}
	if len(orders) == 0 {
		return nil, rental.Errorf(op, rental.KindNotFound, "订单不存在 (no such order)")
	}
	return orders[0], nil
}

// loadOrders reads the orders q selects with their lines, history,
// payments and refunds: five queries whatever the number of orders.
//
// g is the session (the database or a transaction) and q a query built on
// it.
func loadOrders(g, q *gorm.DB) ([]*rental.Order, error) {
	var rows []orderRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, nil
	}
	ids := make([]int64, len(rows))
	byID := make(map[int64]*rental.Order, len(rows))
	out := make([]*rental.Order, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
		out[i] = r.order()
		byID[r.ID] = out[i]
	}
	var lines []orderLineRow
	if err := g.Where("order_id IN ?", ids).Order("order_id, line_no").Find(&lines).Error; err != nil {
		return nil, err
	}
	for _, l := range lines {
		o := byID[l.OrderID]
		o.Lines = append(o.Lines, rental.OrderLine{
			ID: l.ID, ItemID: rental.ItemID(l.ItemID), ItemName: l.ItemName, UnitID: rental.UnitID(l.UnitID), Days: l.Days,
			PricePerDay: rental.Fen(l.PricePerDay), Rent: rental.Fen(l.Rent), Deposit: rental.Fen(l.Deposit),
		})
	}
	var ts []transitionRow
	if err := g.Where("order_id IN ?", ids).Order("order_id, seq").Find(&ts).Error; err != nil {
		return nil, err
	}
	for _, t := range ts {
		o := byID[t.OrderID]
		o.Transitions = append(o.Transitions, rental.Transition{
			Seq: t.Seq, From: rental.OrderState(t.FromState), To: rental.OrderState(t.ToState),
			Actor: rental.Actor(t.Actor), At: t.HappenedAt.UTC(), Note: t.Note,
		})
	}
	var ps []paymentRow
	if err := g.Where("order_id IN ?", ids).Order("order_id, attempt").Find(&ps).Error; err != nil {
		return nil, err
	}
	for _, p := range ps {
		o := byID[p.OrderID]
		o.Payments = append(o.Payments, rental.Payment{
			ID: p.ID, OrderID: o.ID, Attempt: p.Attempt, OutTradeNo: p.OutTradeNo, Amount: rental.Fen(p.Amount),
			State: rental.PaymentState(p.State), TransactionID: p.TransactionID,
			CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC(), PaidAt: timeVal(p.PaidAt),
		})
	}
	var rs []refundRow
	if err := g.Where("order_id IN ?", ids).Order("order_id, attempt").Find(&rs).Error; err != nil {
		return nil, err
	}
	for _, r := range rs {
		o := byID[r.OrderID]
		o.Refunds = append(o.Refunds, rental.Refund{
			ID: r.ID, OrderID: o.ID, Attempt: r.Attempt, OutRefundNo: r.OutRefundNo, OutTradeNo: r.OutTradeNo,
			PaymentAmount: rental.Fen(r.PaymentAmount), Amount: rental.Fen(r.Amount), Reason: r.Reason,
			State: rental.RefundState(r.State), RefundID: r.RefundID,
			CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), SucceededAt: timeVal(r.SucceededAt),
		})
	}
	return out, nil
}

// SaveOrder writes what the order's methods changed, in one transaction,
// if nobody else saved the order since it was read (its version).
func (db *DB) SaveOrder(ctx context.Context, o *rental.Order) error {
	const op = "store.SaveOrder"
	if o.ID == 0 {
		return rental.Errorf(op, rental.KindInternal, "order is not stored yet (use Reserve)")
	}
	row := orderToRow(o)
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&orderRow{}).Where("id = ? AND version = ?", o.ID, o.Version).Updates(map[string]any{
			"state": row.State, "days_late": row.DaysLate, "late_fee": row.LateFee, "damage_fee": row.DamageFee,
			"updated_at": row.UpdatedAt, "paid_at": row.PaidAt, "picked_up_at": row.PickedUpAt,
			"returned_at": row.ReturnedAt, "closed_at": row.ClosedAt, "version": o.Version + 1,
		})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			var n int64
			if err := tx.Model(&orderRow{}).Where("id = ?", o.ID).Count(&n).Error; err != nil {
				return err
			}
			if n == 0 {
				return rental.Errorf(op, rental.KindNotFound, "订单不存在 (no such order)")
			}
			return rental.Errorf(op, rental.KindConflict, "订单已被其他操作修改，请刷新后重试 (the order changed meanwhile; reload and retry)")
		}
		var stored int
		if err := tx.Model(&transitionRow{}).Where("order_id = ?", o.ID).Select("COALESCE(MAX(seq), 0)").Scan(&stored).Error; err != nil {
			return err
		}
		var fresh []rental.Transition
		for _, t := range o.Transitions {
			if t.Seq > stored {
				fresh = append(fresh, t)
			}
		}
		if err := insertTransitions(tx, int64(o.ID), fresh); err != nil {
			return err
		}
		if err := db.enqueueOrderEvents(tx, o, fresh); err != nil {
			return err
		}
		if err := savePayments(tx, o); err != nil {
			return err
		}
		if err := saveRefunds(tx, o); err != nil {
			return err
		}
		if !o.State.HoldsUnits() {
			if err := tx.Model(&reservationRow{}).Where("order_id = ? AND released_at IS NULL", o.ID).
				Update("released_at", o.UpdatedAt.UTC()).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return rentalErr(op, err)
	}
	o.Version++
	return nil
}

// savePayments upserts the attempts by out_trade_no: new ones are inserted,
// known ones get their state. Amount and number never change once stored.
func savePayments(tx *gorm.DB, o *rental.Order) error {
	if len(o.Payments) == 0 {
		return nil
	}
	rows := make([]paymentRow, len(o.Payments))
	for i, p := range o.Payments {
		rows[i] = paymentRow{OrderID: int64(o.ID), Attempt: p.Attempt, OutTradeNo: p.OutTradeNo, Amount: int64(p.Amount),
			State: string(p.State), TransactionID: p.TransactionID, CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC(), PaidAt: timePtr(p.PaidAt)}
	}
	err := tx.Omit("id").Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "out_trade_no"}},
		DoUpdates: clause.AssignmentColumns([]string{"state", "transaction_id", "updated_at", "paid_at"}),
	}).Create(&rows).Error
	if err != nil {
		return err
	}
	var ids []paymentRow
	if err := tx.Select("id", "out_trade_no").Where("order_id = ?", o.ID).Find(&ids).Error; err != nil {
		return err
	}
	for _, r := range ids {
		for i := range o.Payments {
			if o.Payments[i].OutTradeNo == r.OutTradeNo {
				o.Payments[i].ID, o.Payments[i].OrderID = r.ID, o.ID
			}
		}
	}
	return nil
}

func saveRefunds(tx *gorm.DB, o *rental.Order) error {
	if len(o.Refunds) == 0 {
		return nil
	}
	rows := make([]refundRow, len(o.Refunds))
	for i, r := range o.Refunds {
		rows[i] = refundRow{OrderID: int64(o.ID), Attempt: r.Attempt, OutRefundNo: r.OutRefundNo, OutTradeNo: r.OutTradeNo,
			PaymentAmount: int64(r.PaymentAmount), Amount: int64(r.Amount), Reason: r.Reason, State: string(r.State),
			RefundID: r.RefundID, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), SucceededAt: timePtr(r.SucceededAt)}
	}
	err := tx.Omit("id").Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "out_refund_no"}},
		DoUpdates: clause.AssignmentColumns([]string{"state", "refund_id", "updated_at", "succeeded_at"}),
	}).Create(&rows).Error
	if err != nil {
		return err
	}
	var ids []refundRow
	if err := tx.Select("id", "out_refund_no").Where("order_id = ?", o.ID).Find(&ids).Error; err != nil {
		return err
	}
	for _, r := range ids {
		for i := range o.Refunds {
			if o.Refunds[i].OutRefundNo == r.OutRefundNo {
				o.Refunds[i].ID, o.Refunds[i].OrderID = r.ID, o.ID
			}
		}
	}
	return nil
}
