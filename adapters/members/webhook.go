package members

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/rental"
)

// Webhook tells the shop's other membership system about member changes:
// a JSON POST signed with HMAC-SHA256.
//
//	X-Tacklegate-Event:     member.created | member.updated | member.linked | member.unlinked | member.merged
//	X-Tacklegate-Delivery:  the event id; the same on every retry (use it to ignore duplicates)
//	X-Tacklegate-Timestamp: unix seconds
//	X-Tacklegate-Signature: sha256=hex(HMAC-SHA256(secret, timestamp + "." + body))
//
// A 2xx answer is success; 4xx (but 408 and 429) means the receiver refused
// the event for good; anything else is retried by the outbox.
type Webhook struct {
	URL    string
	Secret []byte
	Client *http.Client
	Now    func() time.Time
}

var _ rental.MemberDirectory = (*Webhook)(nil)

type wireMember struct {
	ID       int64     `json:"id"`
	MemberNo string    `json:"member_no,omitempty"`
	Name     string    `json:"name,omitempty"`
	Phone    string    `json:"phone,omitempty"`
	Tier     string    `json:"tier"`
	Points   int64     `json:"points"`
	JoinedAt time.Time `json:"joined_at"`
}

type wireEvent struct {
	ID     string     `json:"id"`
	Type   string     `json:"type"`
	At     time.Time  `json:"at"`
	Member wireMember `json:"member"`
}

// Sign computes the signature header value for a body at a timestamp; the
// receiving side (and tests) use it to verify.
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp + "."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// MemberChanged posts one event.
func (w *Webhook) MemberChanged(ctx context.Context, ev rental.MemberEvent) error {
	m := ev.Member
	body, err := json.Marshal(wireEvent{ID: ev.ID, Type: ev.Type, At: ev.At.UTC(), Member: wireMember{
		ID: int64(m.ID), MemberNo: m.MemberNo, Name: m.Name, Phone: m.Phone, Tier: string(m.Tier), Points: m.Points, JoinedAt: m.JoinedAt.UTC()}})
	if err != nil {
		return &store.Permanent{Err: err}
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
	req.Header.Set("User-Agent", "tacklegate-member-webhook/1")
	req.Header.Set("X-Tacklegate-Event", ev.Type)
	req.Header.Set("X-Tacklegate-Delivery", ev.ID)
	req.Header.Set("X-Tacklegate-Timestamp", ts)
	req.Header.Set("X-Tacklegate-Signature", Sign(w.Secret, ts, body))
	client := w.Client
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("member webhook: %w", err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != 408 && resp.StatusCode != 429:
		return &store.Permanent{Err: fmt.Errorf("member webhook refused the event: HTTP %d %s", resp.StatusCode, snippet)}
	}
	return fmt.Errorf("member webhook: HTTP %d %s", resp.StatusCode, snippet)
}

// Deliverer adapts the webhook to the outbox worker.
func (w *Webhook) Deliverer() store.Deliver {
	return func(ctx context.Context, it store.OutboxItem) error {
		var ev rental.MemberEvent
		if err := json.Unmarshal(it.Payload, &ev); err != nil {
			return &store.Permanent{Err: err}
		}
		return w.MemberChanged(ctx, ev)
	}
}
