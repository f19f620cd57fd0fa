package gateway

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/wechatpay"
	"github.com/tacklegate/tacklegate/rental"
)

// PayClient is what the rental routes and payment jobs need of WeChat Pay
// (adapters/wechatpay.Client).
type PayClient interface {
	MchID() string
	PrepayJSAPI(ctx context.Context, r wechatpay.PrepayRequest) (string, error)
	RequestPayment(appID, prepayID string) (wechatpay.PaymentParams, error)
	QueryByOutTradeNo(ctx context.Context, outTradeNo string) (*wechatpay.Transaction, error)
	Close(ctx context.Context, outTradeNo string) error
	Refund(ctx context.Context, r wechatpay.RefundRequest) (*wechatpay.Refund, error)
	QueryRefund(ctx context.Context, outRefundNo string) (*wechatpay.Refund, error)
}

var _ PayClient = (*wechatpay.Client)(nil)

// Rental configures the catalog, order, payment, inspection and evidence
// routes, and carries the payment work that runs from stored records and
// timers (see Run). One value serves both: cmd/tacklegate builds it once.
type Rental struct {
	DB    *store.DB
	Clock rental.Clock // default rental.SystemClock; the demo passes the simulator's
	// Pay is nil when WeChat Pay is off: orders can be placed but not paid.
	Pay PayClient
	// AppID is the mini-program the customer pays from (WeChat Pay's appid).
	AppID string
	// NotifyURL is where WeChat Pay sends payment and refund notifications:
	// TACKLEGATE_PUBLIC_URL + "/callbacks/wechatpay".
	NotifyURL string
	Logger    *slog.Logger
	Timings   PayTimings
	// Sim, set only by `demo`, mounts the /api/v1/demo routes with which
	// the customer page plays the customer's phone (see DemoSim).
	Sim *DemoSim

	once   sync.Once
	shop   *rental.Shop
	log    *slog.Logger
	kick   chan struct{} // wakes the notification processor
	syncMu sync.Mutex    // one payment sync at a time per process
}

// PayTimings tune the payment jobs; zero values take the defaults.
type PayTimings struct {
	// NotifyPoll is how often stored notifications are looked for (1 s).
	NotifyPoll time.Duration
	// SyncEvery is how often unpaid orders are expired and pending
	// payments and refunds are checked with WeChat Pay (20 s).
	SyncEvery time.Duration
	// QueryAfter is how old a pending payment attempt or refund must be
	// before WeChat Pay is asked about it: its notification is late (2 min).
	QueryAfter time.Duration
	// MaxNotifyAttempts bounds how often one notification is tried before
	// it is set aside as an anomaly (10).
	MaxNotifyAttempts int
}

func (r *Rental) init() {
	r.once.Do(func() {
		if r.Clock == nil {
			r.Clock = rental.SystemClock{}
		}
		r.log = r.Logger
		if r.log == nil {
			r.log = slog.New(slog.DiscardHandler)
		}
		r.log = r.log.With("component", "rental")
		r.shop = &rental.Shop{Catalog: r.DB, Orders: r.DB, Clock: r.Clock}
		r.kick = make(chan struct{}, 1)
		t := &r.Timings
		if t.NotifyPoll <= 0 {
			t.NotifyPoll = time.Second
		}
		if t.SyncEvery <= 0 {
			t.SyncEvery = 20 * time.Second
		}
		if t.QueryAfter <= 0 {
			t.QueryAfter = 2 * time.Minute
		}
		if t.MaxNotifyAttempts <= 0 {
			t.MaxNotifyAttempts = 10
		}
	})
}

func (r *Rental) now() time.Time { return r.Clock.Now().UTC() }

// Shop is the rental domain service the routes use (availability with the
// shop's cleaning buffer), for other readers of the catalog such as the
// assistant.
func (r *Rental) Shop() *rental.Shop {
	r.init()
	return r.shop
}

// mountRental registers the rental routes. Every one goes through s.api, so
// the role walk covers it.
func (s *Server) mountRental(r *Rental) {
	r.init()
	h := &rentalHandlers{r: r, srv: s}

	// Catalog, public.
	s.api("GET", "/categories", anyone, h.categories)
	s.api("GET", "/items", anyone, h.listItems)
	s.api("GET", "/items/:id", anyone, h.getItem)
	s.api("GET", "/items/:id/availability", anyone, h.availability)

	// The customer's orders.
	s.api("POST", "/orders/quote", customers, h.quote)
	s.api("POST", "/orders", customers, h.placeOrder)
	s.api("GET", "/orders", customers, h.myOrders)
	s.api("GET", "/orders/:id", customers, h.myOrder)
	s.api("POST", "/orders/:id/cancel", customers, h.cancelMine)
	s.api("POST", "/orders/:id/pay", customers, h.pay)
	s.api("POST", "/orders/:id/pay/check", customers, h.payCheck)
	s.api("POST", "/orders/:id/inspections/:kind/confirm", customers, h.confirmInspection)

	// Evidence: staff and owner, and the order's own customer.
	s.api("GET", "/orders/:id/evidence", signedIn, h.evidence)
	s.api("GET", "/orders/:id/evidence/:eid", signedIn, h.evidenceItem)

	// The counter.
	s.api("GET", "/staff/orders", staffOnly, h.staffOrders)
	s.api("GET", "/staff/orders/:id", staffOnly, h.staffOrder)
	s.api("POST", "/staff/orders/:id/photos", staffOnly, h.uploadPhotos)
	s.api("POST", "/staff/orders/:id/photos/from-chat", staffOnly, h.photoFromChat)
	s.api("POST", "/staff/orders/:id/pickup", staffOnly, h.pickup)
	s.api("POST", "/staff/orders/:id/return", staffOnly, h.giveBack)
	s.api("POST", "/staff/orders/:id/settle", staffOnly, h.settle)
	s.api("POST", "/staff/orders/:id/cancel", staffOnly, h.cancelByStaff)

	// The owner's catalog, settings and payment follow-up.
	s.api("GET", "/owner/items", ownerOnly, h.ownerItems)
	s.api("POST", "/owner/items", ownerOnly, h.createItem)
	s.api("GET", "/owner/items/:id", ownerOnly, h.ownerItem)
	s.api("PUT", "/owner/items/:id", ownerOnly, h.updateItem)
	s.api("DELETE", "/owner/items/:id", ownerOnly, h.deactivateItem)
	s.api("GET", "/owner/items/:id/units", ownerOnly, h.listUnits)
	s.api("POST", "/owner/items/:id/units", ownerOnly, h.createUnit)
	s.api("PUT", "/owner/units/:id", ownerOnly, h.updateUnit)
	s.api("DELETE", "/owner/units/:id", ownerOnly, h.retireUnit)
	s.api("GET", "/owner/settings", ownerOnly, h.getSettings)
	s.api("PUT", "/owner/settings", ownerOnly, h.putSettings)
	s.api("GET", "/owner/outbox/dead", ownerOnly, h.deadLetters)
	s.api("POST", "/owner/outbox/:id/replay", ownerOnly, h.replay)
	s.api("GET", "/owner/payments/anomalies", ownerOnly, h.anomalies)
	s.api("POST", "/owner/payments/anomalies/:id/resolve", ownerOnly, h.resolveAnomaly)
	s.api("GET", "/owner/payments/bills", ownerOnly, h.bills)
	s.api("POST", "/owner/orders/:id/refund", ownerOnly, h.retryRefund)
	s.mountDemo(r)
}

type rentalHandlers struct {
	r   *Rental
	srv *Server
}

// actor is who the caller is, for the order history and evidence.
func actor(p Principal) rental.Actor {
	switch p.Role {
	case rental.RoleStaff:
		return rental.StaffActor(p.Subject)
	case rental.RoleOwner:
		return rental.OwnerActor(p.Subject)
	}
	return rental.Actor("customer:" + p.Subject)
}

// orderParam reads :id as an order id.
func orderParam(c *fiber.Ctx) (rental.OrderID, error) {
	id, err := paramID(c)
	return rental.OrderID(id), err
}

// myOrderOf loads an order of the calling customer. Another customer's
// order is not found, not forbidden: its existence is not theirs to know.
func (h *rentalHandlers) myOrderOf(c *fiber.Ctx) (*rental.Order, rental.Member, error) {
	m, err := h.srv.CustomerMember(c)
	if err != nil {
		return nil, m, err
	}
	id, err := orderParam(c)
	if err != nil {
		return nil, m, err
	}
	o, err := h.r.DB.Order(c.UserContext(), id)
	if err != nil {
		return nil, m, err
	}
	if o.MemberID != m.ID {
		return nil, m, rental.Errorf("orders.mine", rental.KindNotFound, "订单不存在 (no such order)")
	}
	return o, m, nil
}

// visibleOrder loads an order the caller may see: any for staff and the
// owner, only their own for a customer.
func (h *rentalHandlers) visibleOrder(c *fiber.Ctx) (*rental.Order, error) {
	if caller(c).Role == rental.RoleCustomer {
		o, _, err := h.myOrderOf(c)
		return o, err
	}
	id, err := orderParam(c)
	if err != nil {
		return nil, err
	}
	return h.r.DB.Order(c.UserContext(), id)
}

// cursorParam reads ?cursor= as an id (0 when absent).
func cursorParam(c *fiber.Ctx) (int64, error) {
	v := c.Query("cursor")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, rental.Errorf("gateway.cursor", rental.KindInvalid, "cursor 无效 (bad cursor %q)", v)
	}
	return n, nil
}

// limitParam reads ?limit= within [1, max], def when absent.
func limitParam(c *fiber.Ctx, def, max int) int {
	n := c.QueryInt("limit", def)
	if n < 1 {
		return def
	}
	return min(n, max)
}

// shanghaiTime shows a stored UTC time in the shop's zone; zero stays zero
// (and is omitted).
func shanghaiTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.In(rental.Shanghai())
}
