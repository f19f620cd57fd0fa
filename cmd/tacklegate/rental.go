package main

import (
	"log/slog"
	"time"

	"github.com/tacklegate/tacklegate/adapters/rentalhook"
	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/wechatpay"
	"github.com/tacklegate/tacklegate/config"
	"github.com/tacklegate/tacklegate/gateway"
)

// clockFunc adapts a func to rental.Clock.
type clockFunc func() time.Time

func (f clockFunc) Now() time.Time { return f().UTC() }

// rental builds the order, payment and evidence side of the gateway: one
// value serves the routes and runs the payment jobs. now, when set, is the
// demo simulator's clock, so that moving simulated time moves rental time
// (expiry, late fees) too.
func (a *app) rental(cfg config.Config, pay *wechatpay.Client, now func() time.Time, logger *slog.Logger) *gateway.Rental {
	r := &gateway.Rental{DB: a.db, AppID: cfg.WeChat.AppID, NotifyURL: cfg.PublicURL + "/callbacks/wechatpay", Logger: logger}
	if pay != nil { // a nil *wechatpay.Client in the interface would not be nil
		r.Pay = pay
	}
	if now != nil {
		r.Clock = clockFunc(now)
	}
	return r
}

// rentalHandlers are the outbox handlers of the rental side: refunds to
// WeChat Pay, and order events to the shop's other rental system when one
// is configured.
func (a *app) rentalHandlers(cfg config.Config, r *gateway.Rental) map[string]store.Deliver {
	h := map[string]store.Deliver{gateway.KindRefund: r.RefundDeliverer()}
	if cfg.RentalWebhook.URL != "" {
		a.db.EmitOrderEvents(true)
		hook := &rentalhook.Webhook{URL: cfg.RentalWebhook.URL, Secret: []byte(cfg.RentalWebhook.Secret)}
		h[store.KindRentalWebhook] = hook.Deliverer()
	}
	return h
}
