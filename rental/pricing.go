package rental

import (
	"time"
)

// Bounds on one order, so that a mistaken quantity cannot reserve a shop's
// whole stock and sums stay far from overflow.
const (
	MaxOrderUnits = 20
	maxUnitPrice  = Fen(10_000_000) // ¥100,000 a day or as a deposit
)

// LineRequest asks for a quantity of one item.
type LineRequest struct {
	Item     Item
	Quantity int
}

// NewOrder prices a request into an order in state created, with one line
// per unit (units are assigned by OrderStore.Reserve). The shop's terms are
// copied onto the order. It is also the quote shown before ordering.
func NewOrder(m Member, req []LineRequest, p Period, s ShopSettings, now time.Time) (*Order, error) {
	const op = "rental.NewOrder"
	now = now.UTC()
	if _, err := NewPeriod(p.From, p.To); err != nil {
		return nil, err
	}
	if p.From.Before(DateOf(now)) {
		return nil, Errorf(op, KindInvalid, "开始日期不能早于今天 (the rental cannot start in the past): %s", p.From)
	}
	if m.ID <= 0 {
		return nil, Errorf(op, KindUnauthorized, "请先登录 (log in to order)")
	}
	merged := map[ItemID]int{}
	var order []Item
	total := 0
	for _, r := range req {
		if r.Quantity < 1 {
			return nil, Errorf(op, KindInvalid, "数量至少为 1 (quantity must be at least 1)")
		}
		it := r.Item
		switch {
		case it.ID <= 0:
			return nil, Errorf(op, KindInvalid, "商品不存在 (no such item)")
		case !it.Active:
			return nil, Errorf(op, KindConflict, "%s 已下架 (%s is not for rent now)", it.Name, it.Name)
		case it.PricePerDay < 0 || it.Deposit < 0 || it.PricePerDay > maxUnitPrice || it.Deposit > maxUnitPrice:
			return nil, Errorf(op, KindInvalid, "%s 的价格不正确 (price of %s is out of range)", it.Name, it.Name)
		}
		if _, seen := merged[it.ID]; !seen {
			order = append(order, it)
		}
		merged[it.ID] += r.Quantity
		total += r.Quantity
	}
	if total == 0 {
		return nil, Errorf(op, KindInvalid, "请选择要租的装备 (choose something to rent)")
	}
	if total > MaxOrderUnits {
		return nil, Errorf(op, KindInvalid, "一单最多租 %d 件 (at most %d pieces per order)", MaxOrderUnits, MaxOrderUnits)
	}
	waived := s.WaivesDeposit(m.Tier)
	days := p.Days()
	o := &Order{
		No: NewOrderNo(now), MemberID: m.ID, Tier: m.Tier, Period: p, DepositWaived: waived,
		CleaningBuffer: s.CleaningBuffer, LateFeePerDay: s.LateFeePerDay, GracePeriod: s.GracePeriod,
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(s.PaymentTimeout),
	}
	for _, it := range order {
		deposit := it.Deposit
		if waived {
			deposit = 0
		}
		for range merged[it.ID] {
			o.Lines = append(o.Lines, OrderLine{
				ItemID: it.ID, ItemName: it.Name, Days: days, PricePerDay: it.PricePerDay,
				Rent: Fen(days) * it.PricePerDay, Deposit: deposit,
			})
		}
	}
	o.State = StateCreated
	o.Transitions = []Transition{{Seq: 1, To: StateCreated, Actor: MemberActor(m.ID), At: now}}
	return o, nil
}

// LateDays counts the started days between the deadline (due plus grace)
// and the return. Returning within the grace period costs nothing; one
// minute past it costs a day.
func LateDays(due, returned time.Time, grace time.Duration) int {
	over := returned.Sub(due.Add(grace))
	if over <= 0 {
		return 0
	}
	const day = 24 * time.Hour
	return int((over + day - 1) / day)
}

// LateFee is the late fee for a return: started days late beyond the grace
// period times the fee per day.
func LateFee(due, returned time.Time, grace time.Duration, perDay Fen) Fen {
	return Fen(LateDays(due, returned, grace)) * perDay
}

// Settlement is the deposit's fate once the gear is back.
type Settlement struct {
	Deposit   Fen
	LateFee   Fen
	DamageFee Fen
	DaysLate  int
	// Refund goes back to the customer: deposit − damage − late fee, never
	// negative and never more than the deposit.
	Refund Fen
	// Shortfall is what the deposit could not cover; the shop collects it
	// some other way (it is never taken from the rent already paid).
	Shortfall Fen
}

// Settle works out the refund of a deposit after fees.
func Settle(deposit, lateFee, damageFee Fen) Settlement {
	charges := max(lateFee, 0) + max(damageFee, 0)
	return Settlement{
		Deposit: deposit, LateFee: lateFee, DamageFee: damageFee,
		Refund:    clampFen(deposit-charges, 0, max(deposit, 0)),
		Shortfall: max(charges-max(deposit, 0), 0),
	}
}
