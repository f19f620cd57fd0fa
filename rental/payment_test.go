package rental

import (
	"testing"
	"time"
)

func TestPaymentAttempts(t *testing.T) {
	o := newOrder(t)
	p1, err := o.StartPayment(MemberActor(7), t0)
	if err != nil {
		t.Fatal(err)
	}
	if o.State != StateAwaitingPayment || p1.OutTradeNo != o.No+"P1" || p1.Amount != o.Total() || p1.State != PaymentPending {
		t.Fatalf("first attempt %+v, order %s", p1, o.State)
	}
	again, err := o.StartPayment(MemberActor(7), t0.Add(time.Minute))
	if err != nil || again.OutTradeNo != p1.OutTradeNo || len(o.Payments) != 1 {
		t.Fatalf("pending attempt not reused: %+v %v", again, err)
	}
	// The customer's payment failed: the next attempt needs a new number.
	if err := o.PaymentEnded(p1.OutTradeNo, PaymentFailed, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	p2, err := o.StartPayment(MemberActor(7), t0.Add(3*time.Minute))
	if err != nil || p2.OutTradeNo != o.No+"P2" || p2.Attempt != 2 {
		t.Fatalf("second attempt %+v %v", p2, err)
	}
	if err := o.PaymentEnded(p2.OutTradeNo, PaymentClosed, t0.Add(4*time.Minute)); err != nil {
		t.Fatal(err)
	}
	p3, _ := o.StartPayment(MemberActor(7), t0.Add(5*time.Minute))
	if p3.OutTradeNo != o.No+"P3" {
		t.Fatalf("attempt after close %+v", p3)
	}
	if _, err := o.PaymentSucceeded(p3.OutTradeNo, "wx-tx", o.Total()-1, t0.Add(6*time.Minute)); ErrorKind(err) != KindConflict {
		t.Errorf("wrong amount accepted: %v", err)
	}
	if _, err := o.PaymentSucceeded("nope", "wx-tx", o.Total(), t0); ErrorKind(err) != KindNotFound {
		t.Errorf("unknown out_trade_no: %v", err)
	}
	out, err := o.PaymentSucceeded(p3.OutTradeNo, "wx-tx", o.Total(), t0.Add(6*time.Minute))
	if err != nil || out != PaymentApplied || o.State != StatePaid || !o.PaidAt.Equal(t0.Add(6*time.Minute)) {
		t.Fatalf("success: %s %v, order %s", out, err, o.State)
	}
	last := o.Transitions[len(o.Transitions)-1]
	if last.From != StateAwaitingPayment || last.To != StatePaid || last.Actor != ActorWeChatPay {
		t.Errorf("transition %+v", last)
	}
	n := len(o.Transitions)
	out, err = o.PaymentSucceeded(p3.OutTradeNo, "wx-tx", o.Total(), t0.Add(7*time.Minute))
	if err != nil || out != PaymentDuplicate || len(o.Transitions) != n {
		t.Errorf("duplicate notification: %s %v, %d transitions", out, err, len(o.Transitions))
	}
	if err := o.PaymentEnded(p3.OutTradeNo, PaymentClosed, t0); ErrorKind(err) != KindConflict {
		t.Errorf("closing a paid attempt: %v", err)
	}
	if _, err := o.StartPayment(MemberActor(7), t0); ErrorKind(err) != KindConflict {
		t.Errorf("paying a paid order: %v", err)
	}
	if o.RefundDue() != 0 {
		t.Errorf("refund due on a paid order: %s", o.RefundDue())
	}
}

func TestStartPaymentRefusedAfterExpiry(t *testing.T) {
	o := newOrder(t)
	if _, err := o.StartPayment(MemberActor(7), o.ExpiresAt); ErrorKind(err) != KindConflict {
		t.Errorf("payment started at expiry: %v", err)
	}
}

func TestPaymentAfterExpiryIsOrphanedAndRefunded(t *testing.T) {
	o := newOrder(t)
	p, _ := o.StartPayment(MemberActor(7), t0)
	if err := o.Transition(StateExpired, ActorSystem, o.ExpiresAt); err != nil {
		t.Fatal(err)
	}
	out, err := o.PaymentSucceeded(p.OutTradeNo, "wx-late", p.Amount, o.ExpiresAt.Add(time.Second))
	if err != nil || out != PaymentOrphaned || o.State != StateExpired {
		t.Fatalf("late payment: %s %v, state %s", out, err, o.State)
	}
	if o.RefundDue() != o.Total() {
		t.Fatalf("refund due %s, want the whole %s", o.RefundDue(), o.Total())
	}
	rs, err := o.StartRefunds("订单已过期", o.ExpiresAt.Add(time.Minute))
	if err != nil || len(rs) != 1 || rs[0].Amount != o.Total() || rs[0].OutTradeNo != p.OutTradeNo || rs[0].PaymentAmount != p.Amount {
		t.Fatalf("refunds %+v %v", rs, err)
	}
	if o.RefundDue() != 0 {
		t.Errorf("pending refund not counted: due %s", o.RefundDue())
	}
}

func TestSecondPaymentIsOrphaned(t *testing.T) {
	o := newOrder(t)
	p1, _ := o.StartPayment(MemberActor(7), t0)
	o.PaymentEnded(p1.OutTradeNo, PaymentClosed, t0)
	p2, _ := o.StartPayment(MemberActor(7), t0)
	if out, _ := o.PaymentSucceeded(p2.OutTradeNo, "tx2", p2.Amount, t0); out != PaymentApplied {
		t.Fatal(out)
	}
	// The closed attempt had been paid after all.
	out, err := o.PaymentSucceeded(p1.OutTradeNo, "tx1", p1.Amount, t0)
	if err != nil || out != PaymentOrphaned || o.RefundDue() != p1.Amount {
		t.Fatalf("%s %v due %s", out, err, o.RefundDue())
	}
	rs, _ := o.StartRefunds("重复支付", t0)
	if len(rs) != 1 || rs[0].OutTradeNo != p1.OutTradeNo {
		t.Errorf("refund of the duplicate went to %+v", rs)
	}
}

func TestRefundFlowSettlesReturnedOrder(t *testing.T) {
	o := newOrder(t)
	p, _ := o.StartPayment(MemberActor(7), t0)
	if _, err := o.PaymentSucceeded(p.OutTradeNo, "tx", p.Amount, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := o.StartRefunds("", t0); ErrorKind(err) != KindConflict {
		t.Errorf("refund of a paid order before return: %v", err)
	}
	if err := o.Transition(StatePickedUp, StaffActor("li"), o.Period.Start().Add(8*time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Back 20 hours after due: 8 hours past the 12-hour grace, one day late.
	if err := o.Transition(StateReturned, StaffActor("li"), o.Due().Add(20*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if o.LateFee != Yuan(20) {
		t.Fatalf("late fee %s", o.LateFee)
	}
	if o.RefundDue() != Yuan(230) {
		t.Fatalf("refund due %s, want ¥230 (¥250 deposit − ¥20 late)", o.RefundDue())
	}
	r1, err := o.StartRefunds("押金退还", o.Due().Add(21*time.Hour))
	if err != nil || len(r1) != 1 || r1[0].OutRefundNo != o.No+"R1" || r1[0].Amount != Yuan(230) {
		t.Fatalf("refund %+v %v", r1, err)
	}
	if err := o.SetDamageFee(Yuan(10), t0); ErrorKind(err) != KindConflict {
		t.Errorf("damage changed after the refund started: %v", err)
	}
	if err := o.Transition(StateSettled, ActorSystem, t0); ErrorKind(err) != KindConflict {
		t.Errorf("settled with a refund pending: %v", err)
	}
	// WeChat Pay closed the refund: its amount is due again, with a new number.
	if err := o.RefundFailed(r1[0].OutRefundNo, t0); err != nil {
		t.Fatal(err)
	}
	r2, err := o.StartRefunds("押金退还", t0)
	if err != nil || len(r2) != 1 || r2[0].OutRefundNo != o.No+"R2" || r2[0].Amount != Yuan(230) {
		t.Fatalf("second refund %+v %v", r2, err)
	}
	changed, err := o.RefundSucceeded(r2[0].OutRefundNo, "wx-refund", o.Due().Add(30*time.Hour))
	if err != nil || !changed || o.State != StateSettled {
		t.Fatalf("refund success: %v %v, state %s", changed, err, o.State)
	}
	if changed, err := o.RefundSucceeded(r2[0].OutRefundNo, "wx-refund", t0); changed || err != nil {
		t.Errorf("repeated refund notification: %v %v", changed, err)
	}
	if err := o.RefundFailed(r2[0].OutRefundNo, t0); ErrorKind(err) != KindConflict {
		t.Errorf("failing a succeeded refund: %v", err)
	}
	if o.RefundedTotal() != Yuan(230) || o.Kept() != Yuan(40+20) {
		t.Errorf("refunded %s kept %s", o.RefundedTotal(), o.Kept())
	}
	if _, err := o.RefundSucceeded("nope", "", t0); ErrorKind(err) != KindNotFound {
		t.Errorf("unknown refund: %v", err)
	}
}

func TestCancelAfterPaymentRefundsEverything(t *testing.T) {
	o := newOrder(t)
	p, _ := o.StartPayment(MemberActor(7), t0)
	o.PaymentSucceeded(p.OutTradeNo, "tx", p.Amount, t0)
	if err := o.TransitionNote(StateCancelled, MemberActor(7), t0.Add(time.Hour), "行程取消"); err != nil {
		t.Fatal(err)
	}
	if o.Transitions[len(o.Transitions)-1].Note != "行程取消" {
		t.Error("note not recorded")
	}
	if o.RefundDue() != o.Total() {
		t.Errorf("refund due %s, want %s", o.RefundDue(), o.Total())
	}
}

func TestWaivedDepositOrderSettlesWithoutRefund(t *testing.T) {
	s := DefaultShopSettings()
	s.DepositWaived = map[Tier]bool{"gold": true}
	o, err := NewOrder(Member{ID: 9, Tier: "gold"}, []LineRequest{{Item: rod, Quantity: 1}}, mustPeriod(t, "2026-05-01", "2026-05-02"), s, t0)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := o.StartPayment(MemberActor(9), t0)
	if p.Amount != Yuan(15) {
		t.Fatalf("amount %s, want rent only", p.Amount)
	}
	o.PaymentSucceeded(p.OutTradeNo, "tx", p.Amount, t0)
	o.Transition(StatePickedUp, StaffActor("li"), t0)
	o.Transition(StateReturned, StaffActor("li"), o.Due())
	if o.RefundDue() != 0 {
		t.Fatalf("refund due %s", o.RefundDue())
	}
	if err := o.Transition(StateSettled, StaffActor("li"), o.Due()); err != nil {
		t.Fatal(err)
	}
}
