package rental

import (
	"crypto/rand"
	"fmt"
	"strconv"
	"time"
)

// OrderID identifies an order in the store.
type OrderID int64

// OrderState is where an order is in its life.
//
//	created → awaiting_payment → paid → picked_up → returned → settled
//	created, awaiting_payment → expired   (unpaid after the payment timeout)
//	created, awaiting_payment, paid → cancelled
//
// Cancelled and expired orders release their units.
type OrderState string

const (
	StateCreated         OrderState = "created"
	StateAwaitingPayment OrderState = "awaiting_payment"
	StatePaid            OrderState = "paid"
	StatePickedUp        OrderState = "picked_up"
	StateReturned        OrderState = "returned"
	StateSettled         OrderState = "settled"
	StateCancelled       OrderState = "cancelled"
	StateExpired         OrderState = "expired"
)

var stateLabels = map[OrderState]string{
	StateCreated: "已创建", StateAwaitingPayment: "待支付", StatePaid: "已支付", StatePickedUp: "已取货",
	StateReturned: "已归还", StateSettled: "已结算", StateCancelled: "已取消", StateExpired: "已过期",
}

// Label is the Chinese name shown to customers and staff.
func (s OrderState) Label() string { return stateLabels[s] }

// Valid reports whether s is a known state.
func (s OrderState) Valid() bool { _, ok := stateLabels[s]; return ok }

// Final reports whether nothing can happen to the order any more.
func (s OrderState) Final() bool {
	return s == StateSettled || s == StateCancelled || s == StateExpired
}

// HoldsUnits reports whether the order's reservations still hold its units.
// Settled orders keep theirs: the days were used, and the record stays.
func (s OrderState) HoldsUnits() bool {
	return s.Valid() && s != StateCancelled && s != StateExpired
}

// Unpaid reports whether the order waits for its first payment, and so
// expires when the payment timeout passes.
func (s OrderState) Unpaid() bool { return s == StateCreated || s == StateAwaitingPayment }

// nextStates is the state machine: every legal move, and nothing else.
var nextStates = map[OrderState][]OrderState{
	StateCreated:         {StateAwaitingPayment, StatePaid, StateCancelled, StateExpired},
	StateAwaitingPayment: {StatePaid, StateCancelled, StateExpired},
	StatePaid:            {StatePickedUp, StateCancelled},
	StatePickedUp:        {StateReturned},
	StateReturned:        {StateSettled},
}

// CanTransition reports whether from → to is a legal move of the state
// machine (the guards in Order.Transition may still refuse it).
func CanTransition(from, to OrderState) bool {
	for _, s := range nextStates[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Actor says who made a change: "member:12", "staff:zhangsan", "owner:boss",
// "system" (timers), "wechatpay" (notifications).
type Actor string

const (
	ActorSystem    Actor = "system"
	ActorWeChatPay Actor = "wechatpay"
)

// MemberActor is the customer with this member id.
func MemberActor(id MemberID) Actor { return Actor("member:" + strconv.FormatInt(int64(id), 10)) }

// StaffActor is a staff member by WeCom userid.
func StaffActor(userID string) Actor { return Actor("staff:" + userID) }

// OwnerActor is the owner by console username.
func OwnerActor(name string) Actor { return Actor("owner:" + name) }

// Transition is one recorded change of state.
type Transition struct {
	Seq   int // 1 for the move into created
	From  OrderState
	To    OrderState
	Actor Actor
	At    time.Time
	Note  string
}

// OrderLine is one unit of one item for the whole period.
type OrderLine struct {
	ID          int64
	ItemID      ItemID
	ItemName    string // as it was when ordered
	UnitID      UnitID // assigned by OrderStore.Reserve
	Days        int
	PricePerDay Fen
	Rent        Fen // Days × PricePerDay
	Deposit     Fen // the item's deposit, or 0 when the member's tier waives it
}

// Order is a customer's rental: the units it holds, its money, and its
// history. It is changed only through its methods, which keep the state
// machine and the sums consistent, and saved whole by OrderStore.SaveOrder.
type Order struct {
	ID            OrderID
	No            string // shown to people and the base of out_trade_no; unique
	MemberID      MemberID
	Tier          Tier // the member's tier when ordering
	State         OrderState
	Period        Period
	Lines         []OrderLine
	DepositWaived bool

	// Terms copied from the shop settings when the order was placed.
	CleaningBuffer time.Duration
	LateFeePerDay  Fen
	GracePeriod    time.Duration

	DaysLate  int // set on return
	LateFee   Fen // set on return
	DamageFee Fen // set after the return inspection

	CreatedAt  time.Time
	ExpiresAt  time.Time // unpaid after this, the order expires
	UpdatedAt  time.Time
	PaidAt     time.Time
	PickedUpAt time.Time
	ReturnedAt time.Time
	ClosedAt   time.Time // settled, cancelled or expired

	Transitions []Transition
	Payments    []Payment
	Refunds     []Refund

	// Version is the store's optimistic lock: SaveOrder refuses to write
	// over a change it has not seen.
	Version int64
}

// Rent is the rent of all lines.
func (o *Order) Rent() Fen {
	var s Fen
	for _, l := range o.Lines {
		s += l.Rent
	}
	return s
}

// Deposit is the deposit of all lines (0 when waived).
func (o *Order) Deposit() Fen {
	var s Fen
	for _, l := range o.Lines {
		s += l.Deposit
	}
	return s
}

// Total is what the customer pays: rent plus deposit.
func (o *Order) Total() Fen { return o.Rent() + o.Deposit() }

// UnitIDs lists the units the order holds, line by line.
func (o *Order) UnitIDs() []UnitID {
	ids := make([]UnitID, 0, len(o.Lines))
	for _, l := range o.Lines {
		ids = append(ids, l.UnitID)
	}
	return ids
}

// Due is when the gear is due back: the first instant after the last rented
// day. Lateness is counted from here, after the grace period.
func (o *Order) Due() time.Time { return o.Period.End() }

// Transition moves the order to state to, or returns a conflict error naming
// the current state. Every move is recorded with its actor and time.
func (o *Order) Transition(to OrderState, actor Actor, at time.Time) error {
	return o.TransitionNote(to, actor, at, "")
}

// TransitionNote is Transition with a note kept in the history, such as a
// cancellation reason.
func (o *Order) TransitionNote(to OrderState, actor Actor, at time.Time, note string) error {
	const op = "rental.Order.Transition"
	at = at.UTC()
	if actor == "" {
		return Errorf(op, KindInternal, "transition without an actor")
	}
	if !CanTransition(o.State, to) {
		return Errorf(op, KindConflict, "订单状态为 %s，不能变为 %s (order is %s; it cannot become %s)", o.State, to, o.State, to)
	}
	switch to {
	case StatePaid:
		if o.PaidTotal() < o.Total() {
			return Errorf(op, KindConflict, "订单状态为 %s，尚未付款，不能变为 paid (order is %s and not paid)", o.State, o.State)
		}
	case StateExpired:
		if at.Before(o.ExpiresAt) {
			return Errorf(op, KindConflict, "订单状态为 %s，支付时间未到期，不能变为 expired (order is %s; payment time has not run out)", o.State, o.State)
		}
	case StateSettled:
		if o.RefundDue() > 0 || o.refundsPending() {
			return Errorf(op, KindConflict, "订单状态为 %s，押金尚未退完，不能变为 settled (order is %s; the refund is not complete)", o.State, o.State)
		}
	}
	o.Transitions = append(o.Transitions, Transition{
		Seq: len(o.Transitions) + 1, From: o.State, To: to, Actor: actor, At: at, Note: note,
	})
	o.State = to
	o.UpdatedAt = at
	switch to {
	case StatePaid:
		o.PaidAt = at
	case StatePickedUp:
		o.PickedUpAt = at
	case StateReturned:
		o.ReturnedAt = at
		o.DaysLate = LateDays(o.Due(), at, o.GracePeriod)
		o.LateFee = Fen(o.DaysLate) * o.LateFeePerDay
	case StateSettled, StateCancelled, StateExpired:
		o.ClosedAt = at
	}
	return nil
}

// SetDamageFee records what the return inspection found the damage costs.
// It can change until the order is settled.
func (o *Order) SetDamageFee(fee Fen, at time.Time) error {
	const op = "rental.Order.SetDamageFee"
	if o.State != StateReturned {
		return Errorf(op, KindConflict, "订单状态为 %s，只有已归还的订单可以定损 (order is %s; damage is set on returned orders)", o.State, o.State)
	}
	if fee < 0 {
		return Errorf(op, KindInvalid, "损坏费不能为负 (damage fee cannot be negative)")
	}
	if o.refundsPending() || o.RefundedTotal() > 0 {
		return Errorf(op, KindConflict, "退款已发起，不能再修改损坏费 (a refund has started; the damage fee is fixed)")
	}
	o.DamageFee = fee
	o.UpdatedAt = at.UTC()
	return nil
}

// Settlement is what happens to the deposit when the gear is back.
func (o *Order) Settlement() Settlement {
	s := Settle(o.Deposit(), o.LateFee, o.DamageFee)
	s.DaysLate = o.DaysLate
	return s
}

// NewOrderNo makes an order number: the Shanghai date and ten random
// characters, "20260501K7Q2M9XAB3". The random part keeps numbers unique
// across databases sharing one WeChat Pay merchant account, where a reused
// out_trade_no would be refused.
func NewOrderNo(at time.Time) string {
	d := DateOf(at)
	return fmt.Sprintf("%04d%02d%02d", d.Year, d.Month, d.Day) + rand.Text()[:10]
}
