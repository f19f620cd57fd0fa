package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/tacklegate/tacklegate/adapters/redis"
	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/config"
	"github.com/tacklegate/tacklegate/gateway"
	"github.com/tacklegate/tacklegate/rental"
)

// chatParts builds staff presence and the live channel's hub, shared
// through Redis when it is configured.
func (a *app) chatParts(cfg config.Config, logger *slog.Logger) error {
	hours, err := gateway.ParseSupportHours(cfg.Chat.SupportHours)
	if err != nil {
		return rental.Wrap("chatParts", rental.KindInvalid, "TACKLEGATE_CHAT_SUPPORT_HOURS: "+rental.ErrorMessage(err), err)
	}
	var seen gateway.PresenceStore
	var bus gateway.LiveBus
	if a.redis != nil {
		seen, bus = redis.NewPresenceStore(a.redis, ""), redis.NewBus(a.redis, "")
	}
	var live *gateway.Live
	a.presence, err = gateway.NewPresence(gateway.PresenceOptions{DB: a.db, Store: seen, Logger: logger, Now: a.now, Hours: hours,
		Changed: func() { live.PresenceChanged() }})
	if err != nil {
		return err
	}
	live = gateway.NewLive(gateway.LiveOptions{DB: a.db, Bus: bus, Presence: a.presence, Logger: logger})
	a.live = live
	return nil
}

// runChat runs presence and the live hub until ctx ends or stop is called.
func (a *app) runChat(ctx context.Context) (stop func()) {
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	go func() { a.presence.Run(cctx); done <- struct{}{} }()
	go func() { a.live.Run(cctx); done <- struct{}{} }()
	return func() { cancel(); <-done; <-done }
}

// withChat adds presence, live updates, reassignment and the subscribe
// template to the bridge's options.
func (a *app) withChat(cfg config.Config, o gateway.BridgeOptions) gateway.BridgeOptions {
	if a.presence != nil {
		o.Presence, o.AwayText, o.Seen = a.presence.CanTake, a.presence.AwayText, a.presence.Activity
		o.CustomerInApp = a.presence.CustomerInApp
	}
	if a.live != nil {
		o.Changed = a.live.Changed
	}
	o.ReassignAfter = cfg.Chat.ReassignAfter
	o.RetainFor = time.Duration(cfg.Chat.RetentionDays) * 24 * time.Hour
	switch id := cfg.Chat.SubscribeTemplateID; id {
	case "":
	case "off":
		o.NoNotice = true
	default:
		n := gateway.DefaultSubscribeNotice()
		n.TemplateID = id
		o.Notice = n
	}
	return o
}

// outboxPoll is how often serve's outbox worker looks for due sends: the
// bridge's replies wait for it, so it is short (one indexed query).
const outboxPoll = 100 * time.Millisecond

// outboxWorkers is how many outbox workers serve runs. Rows are claimed
// with leases and the bridge leases each conversation's side while it
// sends, so several workers keep every conversation's order while one
// slow upstream call does not hold the others up.
const outboxWorkers = 4

// runOutboxWorkers runs the outbox workers until ctx ends.
func runOutboxWorkers(ctx context.Context, db *store.DB, handlers map[string]store.Deliver, logger *slog.Logger) {
	var wg sync.WaitGroup
	for range outboxWorkers {
		wg.Add(1)
		w := &store.OutboxWorker{DB: db, Handlers: handlers, Logger: logger, Poll: outboxPoll}
		go func() { defer wg.Done(); w.Run(ctx) }()
	}
	wg.Wait()
}
