package rental

import (
	"strings"
	"testing"
	"time"
)

var (
	t0        = time.Date(2026, 4, 28, 2, 0, 0, 0, time.UTC) // 10:00 in Shanghai
	rod       = Item{ID: 1, Category: CategoryRod, Name: "台钓竿 4.5m", PricePerDay: Yuan(15), Deposit: Yuan(200), Active: true}
	chair     = Item{ID: 2, Category: CategoryChair, Name: "折叠钓椅", PricePerDay: Yuan(5), Deposit: Yuan(50), Active: true}
	member    = Member{ID: 7, Tier: "silver"}
	allStates = []OrderState{StateCreated, StateAwaitingPayment, StatePaid, StatePickedUp, StateReturned, StateSettled, StateCancelled, StateExpired}
)

// newOrder is a two-day order for a rod and a chair: rent ¥40, deposit ¥250.
func newOrder(t *testing.T) *Order {
	t.Helper()
	o, err := NewOrder(member, []LineRequest{{Item: rod, Quantity: 1}, {Item: chair, Quantity: 1}},
		mustPeriod(t, "2026-05-01", "2026-05-03"), DefaultShopSettings(), t0)
	if err != nil {
		t.Fatal(err)
	}
	o.ID = 42
	for i := range o.Lines {
		o.Lines[i].UnitID = UnitID(100 + i)
	}
	return o
}

// orderIn returns an order in state s whose guards all allow moving on:
// fully paid, past its payment time, deposit refunded if it is back.
func orderIn(t *testing.T, s OrderState) *Order {
	o := newOrder(t)
	o.State = s
	o.ExpiresAt = t0
	o.Payments = []Payment{{OutTradeNo: o.No + "P1", Amount: o.Total(), State: PaymentSucceeded}}
	if s == StateReturned {
		o.Refunds = []Refund{{OutRefundNo: o.No + "R1", OutTradeNo: o.No + "P1", Amount: o.Settlement().Refund, State: RefundSucceeded}}
	}
	return o
}

func TestTransitionMatrix(t *testing.T) {
	legal := map[[2]OrderState]bool{
		{StateCreated, StateAwaitingPayment}: true, {StateCreated, StatePaid}: true,
		{StateCreated, StateCancelled}: true, {StateCreated, StateExpired}: true,
		{StateAwaitingPayment, StatePaid}: true, {StateAwaitingPayment, StateCancelled}: true,
		{StateAwaitingPayment, StateExpired}: true,
		{StatePaid, StatePickedUp}:           true, {StatePaid, StateCancelled}: true,
		{StatePickedUp, StateReturned}: true,
		{StateReturned, StateSettled}:  true,
	}
	at := t0.Add(time.Hour)
	for _, from := range allStates {
		for _, to := range allStates {
			t.Run(string(from)+"→"+string(to), func(t *testing.T) {
				o := orderIn(t, from)
				before := len(o.Transitions)
				err := o.Transition(to, StaffActor("zhang"), at)
				if legal[[2]OrderState{from, to}] {
					if err != nil {
						t.Fatalf("legal move refused: %v", err)
					}
					if o.State != to || len(o.Transitions) != before+1 {
						t.Fatalf("state %s, %d transitions", o.State, len(o.Transitions))
					}
					last := o.Transitions[len(o.Transitions)-1]
					if last.From != from || last.To != to || last.Actor != "staff:zhang" || !last.At.Equal(at) || last.Seq != before+1 {
						t.Errorf("recorded %+v", last)
					}
					return
				}
				if ErrorKind(err) != KindConflict {
					t.Fatalf("illegal move: err = %v, want conflict", err)
				}
				msg := ErrorMessage(err)
				if !strings.Contains(msg, "订单状态为 "+string(from)) || !strings.Contains(msg, "order is "+string(from)) {
					t.Errorf("message %q does not name the current state", msg)
				}
				if o.State != from || len(o.Transitions) != before {
					t.Errorf("illegal move changed the order: %s, %d transitions", o.State, len(o.Transitions))
				}
			})
		}
	}
}

func TestTransitionMessage(t *testing.T) {
	o := orderIn(t, StatePaid)
	err := o.Transition(StateSettled, ActorSystem, t0)
	want := "订单状态为 paid，不能变为 settled (order is paid; it cannot become settled)"
	if ErrorMessage(err) != want {
		t.Errorf("message %q, want %q", ErrorMessage(err), want)
	}
}

func TestTransitionGuards(t *testing.T) {
	t.Run("paid needs the money", func(t *testing.T) {
		o := newOrder(t)
		if err := o.Transition(StatePaid, ActorWeChatPay, t0); ErrorKind(err) != KindConflict {
			t.Errorf("unpaid order became paid: %v", err)
		}
	})
	t.Run("free order can be paid at once", func(t *testing.T) {
		free := Item{ID: 3, Category: CategoryOther, Name: "抄网", Active: true}
		o, err := NewOrder(member, []LineRequest{{Item: free, Quantity: 1}}, mustPeriod(t, "2026-05-01", "2026-05-02"), DefaultShopSettings(), t0)
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Transition(StatePaid, MemberActor(7), t0); err != nil {
			t.Errorf("free order: %v", err)
		}
	})
	t.Run("expired only after the payment time", func(t *testing.T) {
		o := newOrder(t)
		if err := o.Transition(StateExpired, ActorSystem, o.ExpiresAt.Add(-time.Second)); ErrorKind(err) != KindConflict {
			t.Errorf("expired early: %v", err)
		}
		if err := o.Transition(StateExpired, ActorSystem, o.ExpiresAt); err != nil {
			t.Errorf("expired on time: %v", err)
		}
		if !o.ClosedAt.Equal(o.ExpiresAt) || o.State.HoldsUnits() {
			t.Errorf("expired order: closed %v, holds units %v", o.ClosedAt, o.State.HoldsUnits())
		}
	})
	t.Run("settled only when the deposit is back", func(t *testing.T) {
		o := orderIn(t, StateReturned)
		o.Refunds = nil
		if err := o.Transition(StateSettled, ActorSystem, t0); ErrorKind(err) != KindConflict {
			t.Errorf("settled with the deposit kept: %v", err)
		}
	})
	t.Run("an actor is required", func(t *testing.T) {
		o := newOrder(t)
		if err := o.Transition(StateCancelled, "", t0); err == nil {
			t.Error("transition without actor")
		}
	})
}

func TestNewOrderPricing(t *testing.T) {
	gold := DefaultShopSettings()
	gold.DepositWaived = map[Tier]bool{"gold": true}
	tests := []struct {
		name                 string
		m                    Member
		req                  []LineRequest
		from, to             string
		settings             ShopSettings
		lines                int
		rent, deposit, total Fen
		waived               bool
	}{
		{"one rod two days", member, []LineRequest{{rod, 1}}, "2026-05-01", "2026-05-03", DefaultShopSettings(), 1, Yuan(30), Yuan(200), Yuan(230), false},
		{"two rods and a chair three days", member, []LineRequest{{rod, 2}, {chair, 1}}, "2026-05-01", "2026-05-04", DefaultShopSettings(), 3, Yuan(105), Yuan(450), Yuan(555), false},
		{"same item twice is merged", member, []LineRequest{{rod, 1}, {rod, 1}}, "2026-05-01", "2026-05-02", DefaultShopSettings(), 2, Yuan(30), Yuan(400), Yuan(430), false},
		{"gold tier rents without deposit", Member{ID: 8, Tier: "gold"}, []LineRequest{{rod, 1}}, "2026-05-01", "2026-05-03", gold, 1, Yuan(30), 0, Yuan(30), true},
		{"silver tier still pays deposit", member, []LineRequest{{rod, 1}}, "2026-05-01", "2026-05-03", gold, 1, Yuan(30), Yuan(200), Yuan(230), false},
		{"rental starting today", member, []LineRequest{{chair, 1}}, "2026-04-28", "2026-04-29", DefaultShopSettings(), 1, Yuan(5), Yuan(50), Yuan(55), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := NewOrder(tt.m, tt.req, mustPeriod(t, tt.from, tt.to), tt.settings, t0)
			if err != nil {
				t.Fatal(err)
			}
			if len(o.Lines) != tt.lines || o.Rent() != tt.rent || o.Deposit() != tt.deposit || o.Total() != tt.total || o.DepositWaived != tt.waived {
				t.Errorf("lines %d rent %s deposit %s total %s waived %v", len(o.Lines), o.Rent(), o.Deposit(), o.Total(), o.DepositWaived)
			}
			if o.State != StateCreated || len(o.Transitions) != 1 || o.Transitions[0].To != StateCreated {
				t.Errorf("new order state %s transitions %+v", o.State, o.Transitions)
			}
			if !o.ExpiresAt.Equal(t0.Add(15*time.Minute)) || o.GracePeriod != tt.settings.GracePeriod || o.LateFeePerDay != tt.settings.LateFeePerDay {
				t.Errorf("terms: expires %v grace %v fee %s", o.ExpiresAt, o.GracePeriod, o.LateFeePerDay)
			}
			if len(o.No) != 18 || !strings.HasPrefix(o.No, "20260428") {
				t.Errorf("order number %q", o.No)
			}
		})
	}
	bad := map[string]func() (*Order, error){
		"in the past": func() (*Order, error) {
			return NewOrder(member, []LineRequest{{rod, 1}}, mustPeriod(t, "2026-04-27", "2026-04-29"), DefaultShopSettings(), t0)
		},
		"inactive item": func() (*Order, error) {
			off := rod
			off.Active = false
			return NewOrder(member, []LineRequest{{off, 1}}, mustPeriod(t, "2026-05-01", "2026-05-02"), DefaultShopSettings(), t0)
		},
		"zero quantity": func() (*Order, error) {
			return NewOrder(member, []LineRequest{{rod, 0}}, mustPeriod(t, "2026-05-01", "2026-05-02"), DefaultShopSettings(), t0)
		},
		"too many": func() (*Order, error) {
			return NewOrder(member, []LineRequest{{rod, MaxOrderUnits + 1}}, mustPeriod(t, "2026-05-01", "2026-05-02"), DefaultShopSettings(), t0)
		},
		"empty": func() (*Order, error) {
			return NewOrder(member, nil, mustPeriod(t, "2026-05-01", "2026-05-02"), DefaultShopSettings(), t0)
		},
		"no member": func() (*Order, error) {
			return NewOrder(Member{}, []LineRequest{{rod, 1}}, mustPeriod(t, "2026-05-01", "2026-05-02"), DefaultShopSettings(), t0)
		},
	}
	for name, f := range bad {
		if o, err := f(); err == nil {
			t.Errorf("%s: got order %+v", name, o)
		}
	}
}

func TestLateFeeAndSettlement(t *testing.T) {
	due := time.Date(2026, 5, 2, 16, 0, 0, 0, time.UTC) // 3 May 00:00 Shanghai
	grace := 12 * time.Hour
	const perDay = Fen(2000)
	tests := []struct {
		name                string
		returned            time.Time
		deposit, damage     Fen
		daysLate            int
		late, refund, short Fen
	}{
		{"early", due.Add(-5 * time.Hour), Yuan(200), 0, 0, 0, Yuan(200), 0},
		{"on time", due, Yuan(200), 0, 0, 0, Yuan(200), 0},
		{"within grace", due.Add(grace), Yuan(200), 0, 0, 0, Yuan(200), 0},
		{"a minute past grace", due.Add(grace + time.Minute), Yuan(200), 0, 1, Yuan(20), Yuan(180), 0},
		{"a day past grace exactly", due.Add(grace + 24*time.Hour), Yuan(200), 0, 1, Yuan(20), Yuan(180), 0},
		{"into the third day", due.Add(grace + 49*time.Hour), Yuan(200), 0, 3, Yuan(60), Yuan(140), 0},
		{"late and damaged", due.Add(grace + time.Hour), Yuan(200), Yuan(50), 1, Yuan(20), Yuan(130), 0},
		{"damage equals deposit", due, Yuan(200), Yuan(200), 0, 0, 0, 0},
		{"damage exceeds deposit", due.Add(grace + time.Hour), Yuan(200), Yuan(350), 1, Yuan(20), 0, Yuan(170)},
		{"deposit waived, late", due.Add(grace + time.Hour), 0, 0, 1, Yuan(20), 0, Yuan(20)},
		{"deposit waived, on time", due, 0, 0, 0, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			days := LateDays(due, tt.returned, grace)
			late := LateFee(due, tt.returned, grace, perDay)
			s := Settle(tt.deposit, late, tt.damage)
			if days != tt.daysLate || late != tt.late || s.Refund != tt.refund || s.Shortfall != tt.short {
				t.Errorf("days %d late %s refund %s shortfall %s; want %d %s %s %s", days, late, s.Refund, s.Shortfall, tt.daysLate, tt.late, tt.refund, tt.short)
			}
			if s.Refund < 0 || s.Refund > tt.deposit {
				t.Errorf("refund %s outside [0, deposit]", s.Refund)
			}
		})
	}
}

func TestReturnComputesLateFeeFromOrderTerms(t *testing.T) {
	o := orderIn(t, StatePickedUp)
	o.LateFeePerDay, o.GracePeriod = Yuan(30), 2*time.Hour
	if err := o.Transition(StateReturned, StaffActor("li"), o.Due().Add(27*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if o.DaysLate != 2 || o.LateFee != Yuan(60) {
		t.Errorf("days late %d fee %s, want 2 and ¥60", o.DaysLate, o.LateFee)
	}
	if err := o.SetDamageFee(Yuan(40), t0); err != nil {
		t.Fatal(err)
	}
	if err := o.SetDamageFee(-1, t0); ErrorKind(err) != KindInvalid {
		t.Errorf("negative damage: %v", err)
	}
	s := o.Settlement()
	if s.Refund != Yuan(250-60-40) || s.DaysLate != 2 {
		t.Errorf("settlement %+v", s)
	}
	if err := orderIn(t, StatePaid).SetDamageFee(1, t0); ErrorKind(err) != KindConflict {
		t.Errorf("damage on a paid order: %v", err)
	}
}
