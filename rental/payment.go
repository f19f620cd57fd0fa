package rental

import (
	"strconv"
	"time"
)

// PaymentState is the state of one WeChat Pay attempt.
type PaymentState string

const (
	PaymentPending   PaymentState = "pending"   // prepay made, not paid yet
	PaymentSucceeded PaymentState = "succeeded" // WeChat Pay reported SUCCESS
	PaymentFailed    PaymentState = "failed"    // PAYERROR, or refused
	PaymentClosed    PaymentState = "closed"    // closed by us (expiry) or by time_expire
)

// Payment is one attempt to pay an order. Each attempt has its own
// out_trade_no: WeChat Pay does not accept a closed or failed out_trade_no
// again, so a new attempt after one gets a new number.
type Payment struct {
	ID            int64
	OrderID       OrderID
	Attempt       int    // 1, 2, …
	OutTradeNo    string // order number + "P" + attempt
	Amount        Fen
	State         PaymentState
	TransactionID string // WeChat Pay's transaction_id once paid
	CreatedAt     time.Time
	UpdatedAt     time.Time
	PaidAt        time.Time
}

// RefundState is the state of one refund attempt.
type RefundState string

const (
	RefundPending   RefundState = "pending"   // asked WeChat Pay, waiting for the outcome
	RefundSucceeded RefundState = "succeeded" // REFUND.SUCCESS
	RefundFailed    RefundState = "failed"    // CLOSED or ABNORMAL; a new attempt gets a new number
)

// Refund is one refund attempt against one payment.
type Refund struct {
	ID            int64
	OrderID       OrderID
	Attempt       int
	OutRefundNo   string // order number + "R" + attempt
	OutTradeNo    string // the payment refunded
	PaymentAmount Fen    // that payment's total, which WeChat Pay's refund API wants
	Amount        Fen
	Reason        string
	State         RefundState
	RefundID      string // WeChat Pay's refund_id
	CreatedAt     time.Time
	UpdatedAt     time.Time
	SucceededAt   time.Time
}

// PaymentOutcome says what a success notification did to the order.
type PaymentOutcome string

const (
	// PaymentApplied: the order is now paid.
	PaymentApplied PaymentOutcome = "applied"
	// PaymentDuplicate: this payment was already recorded; nothing changed.
	PaymentDuplicate PaymentOutcome = "duplicate"
	// PaymentOrphaned: money arrived for an order that no longer wants it
	// (expired, cancelled, or already paid by another attempt). It is
	// recorded and RefundDue includes it: refund it.
	PaymentOrphaned PaymentOutcome = "orphaned"
)

// StartPayment returns the attempt the customer should pay: the pending
// one if there is one, or a new attempt with a new out_trade_no. An order
// in state created moves to awaiting_payment.
func (o *Order) StartPayment(actor Actor, at time.Time) (Payment, error) {
	const op = "rental.Order.StartPayment"
	at = at.UTC()
	if !o.State.Unpaid() {
		return Payment{}, Errorf(op, KindConflict, "订单状态为 %s，不能付款 (order is %s; it cannot be paid)", o.State, o.State)
	}
	if !at.Before(o.ExpiresAt) {
		return Payment{}, Errorf(op, KindConflict, "订单已超时，请重新下单 (the order has expired; please order again)")
	}
	if o.Total() <= 0 {
		return Payment{}, Errorf(op, KindConflict, "订单无需付款 (nothing to pay)")
	}
	for _, p := range o.Payments {
		if p.State == PaymentPending && p.Amount == o.Total() {
			return p, nil
		}
	}
	n := len(o.Payments) + 1
	p := Payment{
		OrderID: o.ID, Attempt: n, OutTradeNo: o.No + "P" + strconv.Itoa(n), Amount: o.Total(),
		State: PaymentPending, CreatedAt: at, UpdatedAt: at,
	}
	if o.State == StateCreated {
		if err := o.Transition(StateAwaitingPayment, actor, at); err != nil {
			return Payment{}, err
		}
	}
	o.Payments = append(o.Payments, p)
	return p, nil
}

func (o *Order) payment(op, outTradeNo string) (*Payment, error) {
	for i := range o.Payments {
		if o.Payments[i].OutTradeNo == outTradeNo {
			return &o.Payments[i], nil
		}
	}
	return nil, Errorf(op, KindNotFound, "订单 %s 没有支付单 %s (no such payment on the order)", o.No, outTradeNo)
}

// PaymentEnded records that an attempt failed or was closed, so that the
// next StartPayment makes a new out_trade_no. Recording it twice is fine; an
// attempt that succeeded cannot end otherwise.
func (o *Order) PaymentEnded(outTradeNo string, state PaymentState, at time.Time) error {
	const op = "rental.Order.PaymentEnded"
	if state != PaymentFailed && state != PaymentClosed {
		return Errorf(op, KindInternal, "payment cannot end as %q", state)
	}
	p, err := o.payment(op, outTradeNo)
	if err != nil {
		return err
	}
	switch p.State {
	case PaymentSucceeded:
		return Errorf(op, KindConflict, "支付单 %s 已支付 (payment already succeeded)", outTradeNo)
	case PaymentPending:
		p.State, p.UpdatedAt = state, at.UTC()
		o.UpdatedAt = p.UpdatedAt
	}
	return nil
}

// PaymentSucceeded records a verified success for an attempt and, when the
// order was waiting for it, moves the order to paid. A repeated
// notification changes nothing. The amount must be the attempt's.
func (o *Order) PaymentSucceeded(outTradeNo, transactionID string, amount Fen, at time.Time) (PaymentOutcome, error) {
	const op = "rental.Order.PaymentSucceeded"
	at = at.UTC()
	p, err := o.payment(op, outTradeNo)
	if err != nil {
		return "", err
	}
	if amount != p.Amount {
		return "", Errorf(op, KindConflict, "支付金额 %s 与订单金额 %s 不符 (paid amount does not match)", amount, p.Amount)
	}
	if p.State == PaymentSucceeded {
		return PaymentDuplicate, nil
	}
	// A closed or failed attempt can still turn out paid: the customer may
	// have paid in the instant we closed it. Money that arrived is recorded.
	p.State, p.TransactionID, p.PaidAt, p.UpdatedAt = PaymentSucceeded, transactionID, at, at
	o.UpdatedAt = at
	if o.State.Unpaid() && o.PaidTotal() >= o.Total() {
		if err := o.Transition(StatePaid, ActorWeChatPay, at); err != nil {
			return "", err
		}
		return PaymentApplied, nil
	}
	return PaymentOrphaned, nil
}

// PaidTotal sums the successful payments.
func (o *Order) PaidTotal() Fen {
	var s Fen
	for _, p := range o.Payments {
		if p.State == PaymentSucceeded {
			s += p.Amount
		}
	}
	return s
}

// RefundedTotal sums the successful refunds.
func (o *Order) RefundedTotal() Fen {
	var s Fen
	for _, r := range o.Refunds {
		if r.State == RefundSucceeded {
			s += r.Amount
		}
	}
	return s
}

func (o *Order) refundsPending() bool {
	for _, r := range o.Refunds {
		if r.State == RefundPending {
			return true
		}
	}
	return false
}

// Kept is what the shop keeps of the money paid, given the state: the whole
// total while the gear is out, the rent and the deposit's charges once it is
// back, nothing for an order that was cancelled or expired.
func (o *Order) Kept() Fen {
	switch o.State {
	case StatePaid, StatePickedUp:
		return o.Total()
	case StateReturned, StateSettled:
		return o.Total() - o.Settlement().Refund
	}
	return 0
}

// RefundDue is what still has to go back to the customer: money paid beyond
// what the shop keeps, less refunds done or under way.
func (o *Order) RefundDue() Fen {
	var out Fen
	for _, r := range o.Refunds {
		if r.State != RefundFailed {
			out += r.Amount
		}
	}
	return max(o.PaidTotal()-o.Kept()-out, 0)
}

// StartRefunds creates the refund attempts that bring RefundDue to zero:
// one per successful payment with money left on it (usually just one).
func (o *Order) StartRefunds(reason string, at time.Time) ([]Refund, error) {
	const op = "rental.Order.StartRefunds"
	at = at.UTC()
	due := o.RefundDue()
	if due == 0 {
		return nil, Errorf(op, KindConflict, "订单状态为 %s，没有需要退还的金额 (order is %s; nothing to refund)", o.State, o.State)
	}
	refunded := map[string]Fen{}
	for _, r := range o.Refunds {
		if r.State != RefundFailed {
			refunded[r.OutTradeNo] += r.Amount
		}
	}
	var out []Refund
	for _, p := range o.Payments {
		if due == 0 {
			break
		}
		if p.State != PaymentSucceeded {
			continue
		}
		amount := min(p.Amount-refunded[p.OutTradeNo], due)
		if amount <= 0 {
			continue
		}
		n := len(o.Refunds) + 1
		r := Refund{
			OrderID: o.ID, Attempt: n, OutRefundNo: o.No + "R" + strconv.Itoa(n), OutTradeNo: p.OutTradeNo,
			PaymentAmount: p.Amount, Amount: amount, Reason: reason, State: RefundPending,
			CreatedAt: at, UpdatedAt: at,
		}
		o.Refunds = append(o.Refunds, r)
		out = append(out, r)
		due -= amount
	}
	o.UpdatedAt = at
	return out, nil
}

func (o *Order) refund(op, outRefundNo string) (*Refund, error) {
	for i := range o.Refunds {
		if o.Refunds[i].OutRefundNo == outRefundNo {
			return &o.Refunds[i], nil
		}
	}
	return nil, Errorf(op, KindNotFound, "订单 %s 没有退款单 %s (no such refund on the order)", o.No, outRefundNo)
}

// RefundSucceeded records a verified refund success. When it completes the
// refund of a returned order, the order is settled. changed is false for a
// repeated notification.
func (o *Order) RefundSucceeded(outRefundNo, refundID string, at time.Time) (changed bool, err error) {
	const op = "rental.Order.RefundSucceeded"
	at = at.UTC()
	r, err := o.refund(op, outRefundNo)
	if err != nil {
		return false, err
	}
	if r.State == RefundSucceeded {
		return false, nil
	}
	r.State, r.RefundID, r.SucceededAt, r.UpdatedAt = RefundSucceeded, refundID, at, at
	o.UpdatedAt = at
	if o.State == StateReturned && o.RefundDue() == 0 && !o.refundsPending() {
		if err := o.Transition(StateSettled, ActorWeChatPay, at); err != nil {
			return true, err
		}
	}
	return true, nil
}

// RefundFailed records that a refund attempt was closed or went abnormal;
// its amount is due again and the next StartRefunds makes a new number.
func (o *Order) RefundFailed(outRefundNo string, at time.Time) error {
	const op = "rental.Order.RefundFailed"
	r, err := o.refund(op, outRefundNo)
	if err != nil {
		return err
	}
	switch r.State {
	case RefundSucceeded:
		return Errorf(op, KindConflict, "退款单 %s 已成功 (refund already succeeded)", outRefundNo)
	case RefundPending:
		r.State, r.UpdatedAt = RefundFailed, at.UTC()
		o.UpdatedAt = r.UpdatedAt
	}
	return nil
}
