package gateway

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/rental"
)

// Orders: the customer's basket, list and cancellation; the counter's
// pickup and return with inspections; the owner's refund retry.

// retrySave marks a save that lost to a concurrent change: the whole
// read-decide-save is tried again from a fresh read.
type retrySave struct{ err error }

func (e *retrySave) Error() string { return e.err.Error() }
func (e *retrySave) Unwrap() error { return e.err }

// orderChange decides what to do to an order inside a transaction. It may
// also write through tx (evidence, outbox rows, anomalies). changed=false
// commits what fn wrote without saving the order.
type orderChange func(tx *store.DB, o *rental.Order) (changed bool, err error)

// updateInTx locks, reads, changes and saves one order inside tx.
func (r *Rental) updateInTx(ctx context.Context, tx *store.DB, id rental.OrderID, fn orderChange) (*rental.Order, error) {
	if err := tx.LockOrder(ctx, id); err != nil {
		return nil, err
	}
	o, err := tx.Order(ctx, id)
	if err != nil {
		return nil, err
	}
	changed, err := fn(tx, o)
	if err != nil || !changed {
		return o, err
	}
	if err := tx.SaveOrder(ctx, o); err != nil {
		if rental.ErrorKind(err) == rental.KindConflict {
			return nil, &retrySave{err}
		}
		return nil, err
	}
	return o, nil
}

// update is updateInTx in a transaction of its own, tried again when a
// concurrent change wins the race.
func (r *Rental) update(ctx context.Context, id rental.OrderID, fn orderChange) (*rental.Order, error) {
	for attempt := 0; ; attempt++ {
		var out *rental.Order
		err := r.DB.InTx(ctx, func(tx *store.DB) error {
			o, err := r.updateInTx(ctx, tx, id, fn)
			out = o
			return err
		})
		var rs *retrySave
		if errors.As(err, &rs) && attempt < 3 {
			continue
		}
		if rs != nil {
			return nil, rs.err
		}
		return out, err
	}
}

// orderOut answers with an order, its units' serials and its inspections.
func (h *rentalHandlers) orderOut(c *fiber.Ctx, status int, o *rental.Order, extra fiber.Map) error {
	v, err := h.r.fullView(c.UserContext(), o)
	if err != nil {
		return err
	}
	out := fiber.Map{"order": v}
	for k, x := range extra {
		out[k] = x
	}
	return c.Status(status).JSON(out)
}

func (r *Rental) fullView(ctx context.Context, o *rental.Order) (orderView, error) {
	serials, err := r.DB.UnitSerials(ctx, o.UnitIDs())
	if err != nil {
		return orderView{}, err
	}
	v := viewOrder(o, serials)
	ins, err := r.DB.Inspections(ctx, o.ID)
	if err != nil {
		return v, err
	}
	for _, in := range ins {
		v.Inspections = append(v.Inspections, viewInspection(in))
	}
	return v, nil
}

// basketInput is what a customer orders: {lines:[{item_id, qty}], from, to}.
type basketInput struct {
	Lines []struct {
		ItemID rental.ItemID `json:"item_id"`
		Qty    int           `json:"qty"`
	} `json:"lines"`
	From string `json:"from"`
	To   string `json:"to"` // the day the gear comes back
}

func (in basketInput) parse() ([]rental.ItemQuantity, rental.Period, error) {
	p, err := rental.ParsePeriod(in.From, in.To)
	if err != nil {
		return nil, p, err
	}
	if len(in.Lines) == 0 {
		return nil, p, rental.Errorf("orders.basket", rental.KindInvalid, "请选择要租的装备 (choose something to rent)")
	}
	basket := make([]rental.ItemQuantity, len(in.Lines))
	for i, l := range in.Lines {
		basket[i] = rental.ItemQuantity{Item: l.ItemID, Quantity: l.Qty}
	}
	return basket, p, nil
}

// quote prices a basket for the calling customer (deposit waived by tier
// included) and says how many of each item are free, without holding
// anything.
func (h *rentalHandlers) quote(c *fiber.Ctx) error {
	ctx := c.UserContext()
	m, err := h.srv.CustomerMember(c)
	if err != nil {
		return err
	}
	var in basketInput
	if err := body(c, &in); err != nil {
		return err
	}
	basket, p, err := in.parse()
	if err != nil {
		return err
	}
	set, err := h.r.DB.ShopSettings(ctx)
	if err != nil {
		return err
	}
	req := make([]rental.LineRequest, len(basket))
	free := map[rental.ItemID]int{}
	for i, b := range basket {
		it, err := h.r.DB.Item(ctx, b.Item)
		if err != nil {
			return err
		}
		req[i] = rental.LineRequest{Item: it, Quantity: b.Quantity}
		if _, seen := free[it.ID]; !seen && it.Active {
			a, err := h.r.DB.Availability(ctx, it.ID, p, set.CleaningBuffer)
			if err != nil {
				return err
			}
			free[it.ID] = a.Free
		}
	}
	o, err := rental.NewOrder(m, req, p, set, h.r.now())
	if err != nil {
		return err
	}
	v := viewOrder(o, nil)
	v.History = nil
	want := map[rental.ItemID]int{}
	for _, l := range o.Lines {
		want[l.ItemID]++
	}
	available := true
	for id, n := range want {
		available = available && free[id] >= n
	}
	return c.JSON(fiber.Map{"quote": v, "free": free, "available": available})
}

// placeOrder reserves units for the basket and prices it; the order then
// waits for payment until expires_at.
func (h *rentalHandlers) placeOrder(c *fiber.Ctx) error {
	ctx := c.UserContext()
	m, err := h.srv.CustomerMember(c)
	if err != nil {
		return err
	}
	var in basketInput
	if err := body(c, &in); err != nil {
		return err
	}
	basket, p, err := in.parse()
	if err != nil {
		return err
	}
	o, err := h.r.shop.PlaceOrder(ctx, m, basket, p)
	if err != nil {
		return err
	}
	// Nothing to pay (free gear and a waived deposit) is paid already.
	next := rental.StateAwaitingPayment
	if o.Total() == 0 {
		next = rental.StatePaid
	}
	o, err = h.r.update(ctx, o.ID, func(_ *store.DB, o *rental.Order) (bool, error) {
		return true, o.Transition(next, rental.MemberActor(m.ID), h.r.now())
	})
	if err != nil {
		return err
	}
	Logger(c).Info("order placed", "order", o.ID, "member", m.ID, "total", int64(o.Total()))
	return h.orderOut(c, fiber.StatusCreated, o, nil)
}

func (h *rentalHandlers) myOrders(c *fiber.Ctx) error {
	m, err := h.srv.CustomerMember(c)
	if err != nil {
		return err
	}
	before, err := cursorParam(c)
	if err != nil {
		return err
	}
	limit := limitParam(c, 20, 100)
	orders, err := h.r.DB.MemberOrders(c.UserContext(), m.ID, rental.OrderID(before), limit)
	if err != nil {
		return err
	}
	return h.orderPage(c, orders, limit)
}

func (h *rentalHandlers) orderPage(c *fiber.Ctx, orders []*rental.Order, limit int) error {
	var ids []rental.UnitID
	for _, o := range orders {
		ids = append(ids, o.UnitIDs()...)
	}
	serials, err := h.r.DB.UnitSerials(c.UserContext(), ids)
	if err != nil {
		return err
	}
	out := make([]orderView, len(orders))
	for i, o := range orders {
		out[i] = viewOrder(o, serials)
		out[i].History = nil
	}
	next := ""
	if len(orders) == limit {
		next = strconv.FormatInt(int64(orders[len(orders)-1].ID), 10)
	}
	return c.JSON(fiber.Map{"orders": out, "next_cursor": next})
}

func (h *rentalHandlers) myOrder(c *fiber.Ctx) error {
	o, _, err := h.myOrderOf(c)
	if err != nil {
		return err
	}
	return h.orderOut(c, fiber.StatusOK, o, nil)
}

func reasonInput(c *fiber.Ctx) (string, error) {
	var in struct {
		Reason string `json:"reason"`
	}
	if len(c.Body()) == 0 {
		return "", nil
	}
	if err := body(c, &in); err != nil {
		return "", err
	}
	return strings.TrimSpace(in.Reason), nil
}

// cancelMine: a customer may cancel before paying, or after paying until
// the rental starts; paid money goes back in full.
func (h *rentalHandlers) cancelMine(c *fiber.Ctx) error {
	o, m, err := h.myOrderOf(c)
	if err != nil {
		return err
	}
	reason, err := reasonInput(c)
	if err != nil {
		return err
	}
	if o.State == rental.StatePaid && !h.r.now().Before(o.Period.Start()) {
		return rental.Errorf("orders.cancel", rental.KindConflict, "租期已开始，请联系店员取消 (the rental has started; ask the shop to cancel)")
	}
	o, err = h.r.cancel(c.UserContext(), o.ID, rental.MemberActor(m.ID), reason)
	if err != nil {
		return err
	}
	return h.orderOut(c, fiber.StatusOK, o, nil)
}

func (h *rentalHandlers) cancelByStaff(c *fiber.Ctx) error {
	id, err := orderParam(c)
	if err != nil {
		return err
	}
	reason, err := reasonInput(c)
	if err != nil {
		return err
	}
	o, err := h.r.cancel(c.UserContext(), id, actor(caller(c)), reason)
	if err != nil {
		return err
	}
	return h.orderOut(c, fiber.StatusOK, o, nil)
}

// cancel cancels an order, releasing its units; money paid is refunded in
// the same transaction (through the outbox), and payment attempts still
// open at WeChat Pay are closed.
func (r *Rental) cancel(ctx context.Context, id rental.OrderID, by rental.Actor, reason string) (*rental.Order, error) {
	o, err := r.update(ctx, id, func(tx *store.DB, o *rental.Order) (bool, error) {
		if err := o.TransitionNote(rental.StateCancelled, by, r.now(), reason); err != nil {
			return false, err
		}
		if o.RefundDue() > 0 {
			return true, r.startRefunds(ctx, tx, o, "订单已取消，全额退款")
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	r.closeOpenAttempts(ctx, o)
	return r.DB.Order(ctx, o.ID)
}

// closeOpenAttempts closes at WeChat Pay the attempts an order no longer
// wants, right away; the payment sync does it later if this fails.
func (r *Rental) closeOpenAttempts(ctx context.Context, o *rental.Order) {
	if r.Pay == nil {
		return
	}
	for _, p := range o.Payments {
		if p.State == rental.PaymentPending {
			if err := r.checkPayment(ctx, store.PaymentRef{OrderID: o.ID, No: p.OutTradeNo}); err != nil {
				r.log.Warn("closing a payment attempt failed; the payment sync retries", "order", o.ID, "out_trade_no", p.OutTradeNo, "error", err)
			}
		}
	}
}

// confirmInspection is the customer confirming what staff recorded.
func (h *rentalHandlers) confirmInspection(c *fiber.Ctx) error {
	o, m, err := h.myOrderOf(c)
	if err != nil {
		return err
	}
	kind := rental.InspectionKind(c.Params("kind"))
	if !kind.Valid() {
		return rental.Errorf("orders.confirm", rental.KindInvalid, "验货类型应为 pickup 或 return (kind must be pickup or return)")
	}
	ins, err := h.r.DB.Inspections(c.UserContext(), o.ID)
	if err != nil {
		return err
	}
	for _, in := range ins {
		if in.Kind == kind {
			done, err := h.r.DB.ConfirmInspection(c.UserContext(), in.ID, m.ID, h.r.now())
			if err != nil {
				return err
			}
			return c.JSON(fiber.Map{"inspection": viewInspection(*done)})
		}
	}
	return rental.Errorf("orders.confirm", rental.KindNotFound, "店员还没有记录%s验货 (no %s inspection yet)", inspectionLabel(kind), kind)
}

func inspectionLabel(k rental.InspectionKind) string {
	if k == rental.InspectionPickup {
		return "取货"
	}
	return "归还"
}

// staffOrders lists orders for the counter: ?state=paid,picked_up
// (comma-separated), ?no= for one order number, cursor paging.
func (h *rentalHandlers) staffOrders(c *fiber.Ctx) error {
	ctx := c.UserContext()
	if no := strings.TrimSpace(c.Query("no")); no != "" {
		o, err := h.r.DB.OrderByNo(ctx, no)
		if rental.ErrorKind(err) == rental.KindNotFound {
			return c.JSON(fiber.Map{"orders": []orderView{}, "next_cursor": ""})
		}
		if err != nil {
			return err
		}
		return h.orderPage(c, []*rental.Order{o}, 0)
	}
	before, err := cursorParam(c)
	if err != nil {
		return err
	}
	f := store.OrderFilter{Before: rental.OrderID(before), Limit: limitParam(c, 20, 100)}
	if s := c.Query("state"); s != "" {
		for _, st := range strings.Split(s, ",") {
			st := rental.OrderState(strings.TrimSpace(st))
			if !st.Valid() {
				return rental.Errorf("staff.orders", rental.KindInvalid, "未知的订单状态 (unknown state) %q", st)
			}
			f.States = append(f.States, st)
		}
	}
	orders, err := h.r.DB.ListOrders(ctx, f)
	if err != nil {
		return err
	}
	return h.orderPage(c, orders, f.Limit)
}

func (h *rentalHandlers) staffOrder(c *fiber.Ctx) error {
	id, err := orderParam(c)
	if err != nil {
		return err
	}
	o, err := h.r.DB.Order(c.UserContext(), id)
	if err != nil {
		return err
	}
	return h.orderOut(c, fiber.StatusOK, o, nil)
}

// inspectionInput is what staff record of every unit.
type inspectionInput struct {
	Notes string                  `json:"notes"`
	Units []rental.UnitInspection `json:"units"`
	// Return only: the damage fee in fen, and whether to hold the deposit
	// for a later assessment (POST …/settle) instead of refunding now.
	DamageFee   rental.Fen `json:"damage_fee"`
	AssessLater bool       `json:"assess_later"`
}

func (h *rentalHandlers) inspection(c *fiber.Ctx, kind rental.InspectionKind) (rental.OrderID, *rental.Inspection, inspectionInput, error) {
	var in inspectionInput
	id, err := orderParam(c)
	if err != nil {
		return 0, nil, in, err
	}
	if err := body(c, &in); err != nil {
		return 0, nil, in, err
	}
	return id, &rental.Inspection{OrderID: id, Kind: kind, Staff: actor(caller(c)), At: h.r.now(), Notes: in.Notes, Units: in.Units}, in, nil
}

// pickup records the pickup inspection and hands the gear over, in one
// transaction.
func (h *rentalHandlers) pickup(c *fiber.Ctx) error {
	ctx := c.UserContext()
	id, ins, _, err := h.inspection(c, rental.InspectionPickup)
	if err != nil {
		return err
	}
	o, err := h.r.update(ctx, id, func(tx *store.DB, o *rental.Order) (bool, error) {
		if o.State != rental.StatePaid {
			return false, rental.Errorf("staff.pickup", rental.KindConflict, "订单状态为 %s，不能取货 (order is %s; only paid orders are picked up)", o.State, o.State)
		}
		in := *ins
		if err := tx.SaveInspection(ctx, &in); err != nil {
			return false, err
		}
		*ins = in
		return true, o.Transition(rental.StatePickedUp, ins.Staff, ins.At)
	})
	if err != nil {
		return err
	}
	Logger(c).Info("gear picked up", "order", o.ID, "inspection", ins.ID)
	return h.orderOut(c, fiber.StatusOK, o, nil)
}

// giveBack records the return inspection, takes the gear back (the late fee
// is worked out from the return time), sets the damage fee and starts the
// deposit refund, all in one transaction. With assess_later the deposit is
// held until POST …/settle.
func (h *rentalHandlers) giveBack(c *fiber.Ctx) error {
	ctx := c.UserContext()
	id, ins, in, err := h.inspection(c, rental.InspectionReturn)
	if err != nil {
		return err
	}
	o, err := h.r.update(ctx, id, func(tx *store.DB, o *rental.Order) (bool, error) {
		if o.State != rental.StatePickedUp {
			return false, rental.Errorf("staff.return", rental.KindConflict, "订单状态为 %s，不能归还 (order is %s; only picked-up gear comes back)", o.State, o.State)
		}
		if err := o.Transition(rental.StateReturned, ins.Staff, ins.At); err != nil {
			return false, err
		}
		// The inspection is validated against the order as returned.
		rec := *ins
		if err := tx.SaveInspection(ctx, &rec); err != nil {
			return false, err
		}
		*ins = rec
		if in.AssessLater {
			return true, nil
		}
		return true, h.r.settleDeposit(ctx, tx, o, in.DamageFee, ins.Staff)
	})
	if err != nil {
		return err
	}
	Logger(c).Info("gear returned", "order", o.ID, "days_late", o.DaysLate, "late_fee", int64(o.LateFee), "damage_fee", int64(o.DamageFee))
	return h.orderOut(c, fiber.StatusOK, o, nil)
}

// settle sets the damage fee of a returned order whose deposit was held
// and refunds the rest.
func (h *rentalHandlers) settle(c *fiber.Ctx) error {
	ctx := c.UserContext()
	id, err := orderParam(c)
	if err != nil {
		return err
	}
	var in struct {
		DamageFee rental.Fen `json:"damage_fee"`
	}
	if err := body(c, &in); err != nil {
		return err
	}
	by := actor(caller(c))
	o, err := h.r.update(ctx, id, func(tx *store.DB, o *rental.Order) (bool, error) {
		return true, h.r.settleDeposit(ctx, tx, o, in.DamageFee, by)
	})
	if err != nil {
		return err
	}
	return h.orderOut(c, fiber.StatusOK, o, nil)
}

// settleDeposit fixes the damage fee and refunds what is left of the
// deposit; with nothing to refund the order is settled at once.
func (r *Rental) settleDeposit(ctx context.Context, tx *store.DB, o *rental.Order, damage rental.Fen, by rental.Actor) error {
	if err := o.SetDamageFee(damage, r.now()); err != nil {
		return err
	}
	if o.RefundDue() == 0 {
		return o.TransitionNote(rental.StateSettled, by, r.now(), "押金无需退还 (nothing to refund)")
	}
	st := o.Settlement()
	reason := "押金退还"
	if st.LateFee > 0 || st.DamageFee > 0 {
		reason = "押金退还（已扣逾期费 " + st.LateFee.String() + "、损坏费 " + st.DamageFee.String() + "）"
	}
	return r.startRefunds(ctx, tx, o, reason)
}

// retryRefund starts refunds again for money still owed after a refund
// failed (CLOSED or ABNORMAL at WeChat Pay).
func (h *rentalHandlers) retryRefund(c *fiber.Ctx) error {
	ctx := c.UserContext()
	id, err := orderParam(c)
	if err != nil {
		return err
	}
	o, err := h.r.update(ctx, id, func(tx *store.DB, o *rental.Order) (bool, error) {
		return true, h.r.startRefunds(ctx, tx, o, "重新退款 (refund retried by the shop)")
	})
	if err != nil {
		return err
	}
	return h.orderOut(c, fiber.StatusOK, o, nil)
}
