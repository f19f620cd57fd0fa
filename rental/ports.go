package rental

import (
	"context"
	"time"
)

// Clock tells the time. Tests pass a fixed one; expiry and lateness are
// decided by it, never by time.Now directly.
type Clock interface {
	Now() time.Time
}

// SystemClock is the real clock, in UTC.
type SystemClock struct{}

// Now returns the current time in UTC.
func (SystemClock) Now() time.Time { return time.Now().UTC() }

// ItemFilter selects catalog items. Lists page with a cursor: pass the last
// ID of one page as After to get the next.
type ItemFilter struct {
	Category        Category // "" for all
	Tag             string   // "" for all; exact tag such as "鲫鱼"
	IncludeInactive bool     // the owner's console sees hidden items too
	After           ItemID
	Limit           int // 1–100; 0 means 20
}

// CatalogStore keeps the catalog and the shop's settings.
type CatalogStore interface {
	CreateItem(ctx context.Context, it *Item) error
	UpdateItem(ctx context.Context, it *Item) error
	Item(ctx context.Context, id ItemID) (Item, error)
	Items(ctx context.Context, f ItemFilter) ([]Item, error)

	CreateUnit(ctx context.Context, u *Unit) error
	UpdateUnit(ctx context.Context, u *Unit) error
	Units(ctx context.Context, item ItemID) ([]Unit, error)

	// ShopSettings returns the saved settings, or DefaultShopSettings when
	// the owner has saved none.
	ShopSettings(ctx context.Context) (ShopSettings, error)
	SaveShopSettings(ctx context.Context, s ShopSettings) error
}

// OrderStore keeps orders, their reservations, payments and refunds.
type OrderStore interface {
	// Availability is ComputeAvailability over the stored units and
	// active reservations of an item.
	Availability(ctx context.Context, item ItemID, p Period, buffer time.Duration) (Availability, error)

	// Reserve stores a new order (state created, from NewOrder) and assigns
	// each line a free unit for the order's period plus its cleaning
	// buffer. It is atomic: either every line gets a unit that no other
	// active order holds at any overlapping instant, or nothing is stored
	// and a conflict error says what ran out. The database guarantees that
	// no unit is ever held twice, whatever the callers do.
	Reserve(ctx context.Context, o *Order) error

	Order(ctx context.Context, id OrderID) (*Order, error)
	OrderByNo(ctx context.Context, no string) (*Order, error)
	OrderByOutTradeNo(ctx context.Context, outTradeNo string) (*Order, error)
	OrderByOutRefundNo(ctx context.Context, outRefundNo string) (*Order, error)
	// MemberOrders lists a member's orders, newest first, before the
	// cursor (0 for the first page).
	MemberOrders(ctx context.Context, m MemberID, before OrderID, limit int) ([]*Order, error)

	// SaveOrder writes an order changed by its methods: state, fees, new
	// transitions, payments and refunds, in one transaction. An order
	// changed by someone else since it was read is refused with a conflict
	// (reload and decide again). Saving a cancelled or expired order
	// releases its units.
	SaveOrder(ctx context.Context, o *Order) error

	// UnpaidExpired lists orders still unpaid whose payment time ran out.
	UnpaidExpired(ctx context.Context, now time.Time, limit int) ([]OrderID, error)
}

// EvidenceStore keeps the evidence chains and inspections.
type EvidenceStore interface {
	// AppendEvidence chains e after the order's last item (see
	// Evidence.Chain) and stores it with its content sealed.
	AppendEvidence(ctx context.Context, e *Evidence) error
	// Evidence returns an order's chain in order, contents opened, and the
	// stored head; check it with VerifyChainHead.
	Evidence(ctx context.Context, order OrderID) ([]Evidence, ChainHead, error)

	// SaveInspection validates in against its order, chains its Record,
	// stores it, and updates the units' condition.
	SaveInspection(ctx context.Context, in *Inspection) error
	// ConfirmInspection records the customer's confirmation, chained too.
	ConfirmInspection(ctx context.Context, id InspectionID, m MemberID, at time.Time) (*Inspection, error)
	Inspections(ctx context.Context, order OrderID) ([]Inspection, error)
}
