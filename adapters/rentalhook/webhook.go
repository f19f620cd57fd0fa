// Package rentalhook tells the shop's existing rental system about orders
// placed through tacklegate: every order event (created, paid, picked_up,
// returned, settled, cancelled, expired) is a JSON POST signed with
// HMAC-SHA256, delivered from the outbox with retries and backoff.
//
//	X-Tacklegate-Event:     order.created | order.paid | order.picked_up | order.returned | order.settled | order.cancelled | order.expired
//	X-Tacklegate-Delivery:  the event id, e.g. "order-12-3" (order 12, transition 3); the same on every retry
//	Idempotency-Key:        the same event id, for receivers that look for that header
//	X-Tacklegate-Timestamp: unix seconds
//	X-Tacklegate-Signature: sha256=hex(HMAC-SHA256(secret, timestamp + "." + body))
//
// The body is store.OrderEvent: the transition and the order as it stood
// right after it, money in fen. The signature is the member webhook's
// (members.Sign), so a receiver verifies both the same way.
//
// A 2xx answer is success; 4xx (but 408 and 429) means the receiver refused
// the event for good and it goes to the dead-letter list the owner sees and
// can replay; anything else is retried by the outbox (5 s, 10 s, 20 s … up
// to an hour apart, about six hours in all).
package rentalhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/tacklegate/tacklegate/adapters/members"
	"github.com/tacklegate/tacklegate/adapters/store"
)

// Webhook posts order events to one URL.
type Webhook struct {
	URL    string
	Secret []byte
	Client *http.Client     // default: 15 s timeout
	Now    func() time.Time // stamps X-Tacklegate-Timestamp; default time.Now
}

// Post delivers one event body as stored in the outbox.
func (w *Webhook) Post(ctx context.Context, body []byte) error {
	var ev struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	}
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" || ev.Type == "" {
		return &store.Permanent{Err: errors.New("rental webhook: the stored event has no id or type")}
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	ts := strconv.FormatInt(now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return &store.Permanent{Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tacklegate-rental-webhook/1")
	req.Header.Set("X-Tacklegate-Event", ev.Type)
	req.Header.Set("X-Tacklegate-Delivery", ev.ID)
	req.Header.Set("Idempotency-Key", ev.ID)
	req.Header.Set("X-Tacklegate-Timestamp", ts)
	req.Header.Set("X-Tacklegate-Signature", members.Sign(w.Secret, ts, body))
	client := w.Client
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("rental webhook: %w", err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != 408 && resp.StatusCode != 429:
		return &store.Permanent{Err: fmt.Errorf("rental webhook refused %s: HTTP %d %s", ev.ID, resp.StatusCode, snippet)}
	}
	return fmt.Errorf("rental webhook: %s: HTTP %d %s", ev.ID, resp.StatusCode, snippet)
}

// Deliverer adapts the webhook to the outbox worker (kind
// store.KindRentalWebhook).
func (w *Webhook) Deliverer() store.Deliver {
	return func(ctx context.Context, it store.OutboxItem) error { return w.Post(ctx, it.Payload) }
}
