package gateway

import (
	"slices"
	"time"

	"github.com/tacklegate/tacklegate/rental"
)

// JSON shapes of the rental API. Money is integer fen; dates are
// "2006-01-02" days and times RFC 3339 in Asia/Shanghai.

type itemView struct {
	ID            rental.ItemID   `json:"id"`
	Category      rental.Category `json:"category"`
	CategoryLabel string          `json:"category_label"`
	Name          string          `json:"name"`
	Description   string          `json:"description,omitempty"`
	Tags          []string        `json:"tags"`
	PricePerDay   rental.Fen      `json:"price_per_day"`
	Deposit       rental.Fen      `json:"deposit"`
	Photos        []string        `json:"photos"`
	Active        bool            `json:"active"`
	Units         *int            `json:"units,omitempty"` // rentable units, on single-item answers
	UpdatedAt     time.Time       `json:"updated_at"`
}

func viewItem(it rental.Item) itemView {
	v := itemView{ID: it.ID, Category: it.Category, CategoryLabel: it.Category.Label(), Name: it.Name, Description: it.Description,
		Tags: it.Tags, PricePerDay: it.PricePerDay, Deposit: it.Deposit, Photos: it.Photos, Active: it.Active, UpdatedAt: shanghaiTime(it.UpdatedAt)}
	if v.Tags == nil {
		v.Tags = []string{}
	}
	if v.Photos == nil {
		v.Photos = []string{}
	}
	return v
}

type unitView struct {
	ID             rental.UnitID     `json:"id"`
	ItemID         rental.ItemID     `json:"item_id"`
	Serial         string            `json:"serial"`
	Condition      rental.Condition  `json:"condition"`
	ConditionLabel string            `json:"condition_label"`
	Status         rental.UnitStatus `json:"status"`
	Notes          string            `json:"notes,omitempty"`
	UpdatedAt      time.Time         `json:"updated_at"`
}

func viewUnit(u rental.Unit) unitView {
	return unitView{ID: u.ID, ItemID: u.ItemID, Serial: u.Serial, Condition: u.Condition, ConditionLabel: u.Condition.Label(),
		Status: u.Status, Notes: u.Notes, UpdatedAt: shanghaiTime(u.UpdatedAt)}
}

type periodView struct {
	From rental.Date `json:"from"`
	To   rental.Date `json:"to"` // the day the gear is due back
	Days int         `json:"days"`
}

type lineView struct {
	ItemID      rental.ItemID `json:"item_id"`
	ItemName    string        `json:"item_name"`
	UnitID      rental.UnitID `json:"unit_id,omitempty"`
	Serial      string        `json:"serial,omitempty"`
	Days        int           `json:"days"`
	PricePerDay rental.Fen    `json:"price_per_day"`
	Rent        rental.Fen    `json:"rent"`
	Deposit     rental.Fen    `json:"deposit"`
}

type settlementView struct {
	Deposit   rental.Fen `json:"deposit"`
	DaysLate  int        `json:"days_late"`
	LateFee   rental.Fen `json:"late_fee"`
	DamageFee rental.Fen `json:"damage_fee"`
	Refund    rental.Fen `json:"refund"`    // what goes back to the customer
	Shortfall rental.Fen `json:"shortfall"` // what the deposit could not cover
}

type paymentView struct {
	OutTradeNo string              `json:"out_trade_no"`
	Amount     rental.Fen          `json:"amount"`
	State      rental.PaymentState `json:"state"`
	CreatedAt  time.Time           `json:"created_at"`
	PaidAt     time.Time           `json:"paid_at,omitzero"`
}

type refundView struct {
	OutRefundNo string             `json:"out_refund_no"`
	Amount      rental.Fen         `json:"amount"`
	Reason      string             `json:"reason,omitempty"`
	State       rental.RefundState `json:"state"`
	CreatedAt   time.Time          `json:"created_at"`
	SucceededAt time.Time          `json:"succeeded_at,omitzero"`
}

type transitionView struct {
	Seq   int               `json:"seq"`
	From  rental.OrderState `json:"from,omitempty"`
	To    rental.OrderState `json:"to"`
	Actor rental.Actor      `json:"actor"`
	At    time.Time         `json:"at"`
	Note  string            `json:"note,omitempty"`
}

type orderView struct {
	ID            rental.OrderID    `json:"id,omitempty"` // absent on a quote
	No            string            `json:"no,omitempty"`
	MemberID      rental.MemberID   `json:"member_id"`
	State         rental.OrderState `json:"state"`
	StateLabel    string            `json:"state_label"`
	Period        periodView        `json:"period"`
	Lines         []lineView        `json:"lines"`
	Rent          rental.Fen        `json:"rent"`
	Deposit       rental.Fen        `json:"deposit"`
	Total         rental.Fen        `json:"total"` // what the customer pays: rent + deposit
	DepositWaived bool              `json:"deposit_waived"`
	Paid          rental.Fen        `json:"paid"`
	Refunded      rental.Fen        `json:"refunded"`
	RefundDue     rental.Fen        `json:"refund_due"`
	LateFeePerDay rental.Fen        `json:"late_fee_per_day"`
	GraceMinutes  int               `json:"grace_minutes"`
	Settlement    *settlementView   `json:"settlement,omitempty"` // once the gear is back
	CreatedAt     time.Time         `json:"created_at"`
	ExpiresAt     time.Time         `json:"expires_at,omitzero"` // pay before this
	Due           time.Time         `json:"due"`                 // the gear is due back
	PaidAt        time.Time         `json:"paid_at,omitzero"`
	PickedUpAt    time.Time         `json:"picked_up_at,omitzero"`
	ReturnedAt    time.Time         `json:"returned_at,omitzero"`
	ClosedAt      time.Time         `json:"closed_at,omitzero"`
	Payments      []paymentView     `json:"payments,omitempty"`
	Refunds       []refundView      `json:"refunds,omitempty"`
	History       []transitionView  `json:"history,omitempty"`
	Inspections   []inspectionView  `json:"inspections,omitempty"`
}

// viewOrder shows an order; serials come from the units when known.
func viewOrder(o *rental.Order, serials map[rental.UnitID]string) orderView {
	v := orderView{
		ID: o.ID, No: o.No, MemberID: o.MemberID, State: o.State, StateLabel: o.State.Label(),
		Period: periodView{From: o.Period.From, To: o.Period.To, Days: o.Period.Days()},
		Rent:   o.Rent(), Deposit: o.Deposit(), Total: o.Total(), DepositWaived: o.DepositWaived,
		Paid: o.PaidTotal(), Refunded: o.RefundedTotal(), RefundDue: o.RefundDue(),
		LateFeePerDay: o.LateFeePerDay, GraceMinutes: int(o.GracePeriod / time.Minute),
		CreatedAt: shanghaiTime(o.CreatedAt), Due: shanghaiTime(o.Due()),
		PaidAt: shanghaiTime(o.PaidAt), PickedUpAt: shanghaiTime(o.PickedUpAt), ReturnedAt: shanghaiTime(o.ReturnedAt), ClosedAt: shanghaiTime(o.ClosedAt),
	}
	if o.State.Unpaid() {
		v.ExpiresAt = shanghaiTime(o.ExpiresAt)
	}
	for _, l := range o.Lines {
		v.Lines = append(v.Lines, lineView{ItemID: l.ItemID, ItemName: l.ItemName, UnitID: l.UnitID, Serial: serials[l.UnitID],
			Days: l.Days, PricePerDay: l.PricePerDay, Rent: l.Rent, Deposit: l.Deposit})
	}
	if o.State == rental.StateReturned || o.State == rental.StateSettled {
		st := o.Settlement()
		v.Settlement = &settlementView{Deposit: st.Deposit, DaysLate: st.DaysLate, LateFee: st.LateFee, DamageFee: st.DamageFee, Refund: st.Refund, Shortfall: st.Shortfall}
	}
	for _, p := range o.Payments {
		v.Payments = append(v.Payments, paymentView{OutTradeNo: p.OutTradeNo, Amount: p.Amount, State: p.State,
			CreatedAt: shanghaiTime(p.CreatedAt), PaidAt: shanghaiTime(p.PaidAt)})
	}
	for _, r := range o.Refunds {
		v.Refunds = append(v.Refunds, refundView{OutRefundNo: r.OutRefundNo, Amount: r.Amount, Reason: r.Reason, State: r.State,
			CreatedAt: shanghaiTime(r.CreatedAt), SucceededAt: shanghaiTime(r.SucceededAt)})
	}
	for _, t := range o.Transitions {
		v.History = append(v.History, transitionView{Seq: t.Seq, From: t.From, To: t.To, Actor: t.Actor, At: shanghaiTime(t.At), Note: t.Note})
	}
	return v
}

type unitInspectionView struct {
	UnitID         rental.UnitID       `json:"unit_id"`
	Condition      rental.Condition    `json:"condition"`
	ConditionLabel string              `json:"condition_label"`
	Notes          string              `json:"notes,omitempty"`
	Photos         []rental.EvidenceID `json:"photos"`
}

type inspectionView struct {
	ID          rental.InspectionID   `json:"id"`
	Kind        rental.InspectionKind `json:"kind"`
	Staff       rental.Actor          `json:"staff"`
	At          time.Time             `json:"at"`
	Notes       string                `json:"notes,omitempty"`
	Units       []unitInspectionView  `json:"units"`
	EvidenceID  rental.EvidenceID     `json:"evidence_id"`
	Confirmed   bool                  `json:"confirmed"`
	ConfirmedAt time.Time             `json:"confirmed_at,omitzero"`
}

func viewInspection(in rental.Inspection) inspectionView {
	v := inspectionView{ID: in.ID, Kind: in.Kind, Staff: in.Staff, At: shanghaiTime(in.At), Notes: in.Notes, EvidenceID: in.EvidenceID,
		Confirmed: in.Confirmed(), ConfirmedAt: shanghaiTime(in.ConfirmedAt)}
	for _, u := range in.Units {
		photos := u.Photos
		if photos == nil {
			photos = []rental.EvidenceID{}
		}
		v.Units = append(v.Units, unitInspectionView{UnitID: u.UnitID, Condition: u.Condition, ConditionLabel: u.Condition.Label(), Notes: u.Notes, Photos: photos})
	}
	return v
}

type settingsView struct {
	CleaningBufferMinutes int                 `json:"cleaning_buffer_minutes"`
	PaymentTimeoutMinutes int                 `json:"payment_timeout_minutes"`
	LateFeePerDay         rental.Fen          `json:"late_fee_per_day"`
	GracePeriodMinutes    int                 `json:"grace_period_minutes"`
	DepositWaived         []rental.Tier       `json:"deposit_waived"` // tiers that rent without a deposit
	Hours                 rental.OpeningHours `json:"hours"`          // Sunday first
	UpdatedAt             time.Time           `json:"updated_at,omitzero"`
}

func viewSettings(s rental.ShopSettings) settingsView {
	v := settingsView{
		CleaningBufferMinutes: int(s.CleaningBuffer / time.Minute), PaymentTimeoutMinutes: int(s.PaymentTimeout / time.Minute),
		LateFeePerDay: s.LateFeePerDay, GracePeriodMinutes: int(s.GracePeriod / time.Minute), DepositWaived: []rental.Tier{},
		Hours: s.Hours, UpdatedAt: shanghaiTime(s.UpdatedAt),
	}
	for t, on := range s.DepositWaived {
		if on {
			v.DepositWaived = append(v.DepositWaived, t)
		}
	}
	slices.Sort(v.DepositWaived)
	return v
}
