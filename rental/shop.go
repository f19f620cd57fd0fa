package rental

import (
	"context"
	"errors"
)

// Shop is the rental workflow over the ports: what the gateway's order
// routes and the expiry timer call. Payment calls to WeChat Pay stay with
// the caller; Shop only keeps the records straight.
type Shop struct {
	Catalog CatalogStore
	Orders  OrderStore
	Clock   Clock
}

// ItemQuantity is one line of a customer's basket.
type ItemQuantity struct {
	Item     ItemID
	Quantity int
}

// Availability answers the availability route, with the shop's current
// cleaning buffer.
func (s *Shop) Availability(ctx context.Context, id ItemID, p Period) (Availability, error) {
	if _, err := s.Catalog.Item(ctx, id); err != nil {
		return Availability{}, err
	}
	set, err := s.Catalog.ShopSettings(ctx)
	if err != nil {
		return Availability{}, err
	}
	return s.Orders.Availability(ctx, id, p, set.CleaningBuffer)
}

// PlaceOrder prices the basket for member m and reserves units for it. The
// order comes back in state created, holding its units until ExpiresAt.
func (s *Shop) PlaceOrder(ctx context.Context, m Member, basket []ItemQuantity, p Period) (*Order, error) {
	set, err := s.Catalog.ShopSettings(ctx)
	if err != nil {
		return nil, err
	}
	req := make([]LineRequest, 0, len(basket))
	for _, b := range basket {
		it, err := s.Catalog.Item(ctx, b.Item)
		if err != nil {
			return nil, err
		}
		req = append(req, LineRequest{Item: it, Quantity: b.Quantity})
	}
	o, err := NewOrder(m, req, p, set, s.Clock.Now())
	if err != nil {
		return nil, err
	}
	if err := s.Orders.Reserve(ctx, o); err != nil {
		return nil, err
	}
	return o, nil
}

// ExpireUnpaid expires orders whose payment time ran out, releasing their
// units, and returns them. Their pending payments are left pending: the
// caller closes each at WeChat Pay and records it with PaymentEnded (a
// payment that slipped in meanwhile then shows up as orphaned and refunded).
// An order paid or cancelled concurrently is skipped.
func (s *Shop) ExpireUnpaid(ctx context.Context, limit int) ([]*Order, error) {
	now := s.Clock.Now()
	ids, err := s.Orders.UnpaidExpired(ctx, now, limit)
	if err != nil {
		return nil, err
	}
	var expired []*Order
	for _, id := range ids {
		o, err := s.Orders.Order(ctx, id)
		if err != nil {
			return expired, err
		}
		if !o.State.Unpaid() || now.Before(o.ExpiresAt) {
			continue
		}
		if err := o.Transition(StateExpired, ActorSystem, now); err != nil {
			return expired, err
		}
		if err := s.Orders.SaveOrder(ctx, o); err != nil {
			var e *Error
			if errors.As(err, &e) && e.Kind == KindConflict {
				continue // changed meanwhile (paid, cancelled): the next round decides again
			}
			return expired, err
		}
		expired = append(expired, o)
	}
	return expired, nil
}
