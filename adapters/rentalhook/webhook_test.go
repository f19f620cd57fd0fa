package rentalhook_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/members"
	"github.com/tacklegate/tacklegate/adapters/rentalhook"
	"github.com/tacklegate/tacklegate/adapters/store"
)

func TestPostSignsAndClassifies(t *testing.T) {
	secret := []byte("0123456789abcdef")
	body := []byte(`{"id":"order-7-2","type":"order.paid","order":{"id":7}}`)
	var status int
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = r.Header.Clone()
		if string(b) != string(body) {
			t.Errorf("body %s", b)
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	at := time.Unix(1780000000, 0)
	w := &rentalhook.Webhook{URL: srv.URL, Secret: secret, Now: func() time.Time { return at }}
	deliver := w.Deliverer()
	for _, tc := range []struct {
		status    int
		ok, final bool
	}{
		{204, true, false}, {200, true, false},
		{400, false, true}, {404, false, true},
		{408, false, false}, {429, false, false}, {500, false, false}, {503, false, false},
	} {
		status = tc.status
		err := deliver(context.Background(), store.OutboxItem{Kind: store.KindRentalWebhook, Key: "order-7-2", Payload: body})
		var perm *store.Permanent
		if (err == nil) != tc.ok || errors.As(err, &perm) != tc.final {
			t.Errorf("HTTP %d: %v", tc.status, err)
		}
	}
	if got.Get("X-Tacklegate-Event") != "order.paid" || got.Get("X-Tacklegate-Delivery") != "order-7-2" || got.Get("Idempotency-Key") != "order-7-2" ||
		got.Get("X-Tacklegate-Timestamp") != "1780000000" || got.Get("X-Tacklegate-Signature") != members.Sign(secret, "1780000000", body) {
		t.Errorf("headers: %v", got)
	}
	// A stored body that is not an event can never be delivered.
	var perm *store.Permanent
	if err := deliver(context.Background(), store.OutboxItem{Payload: []byte(`{}`)}); !errors.As(err, &perm) {
		t.Errorf("bad payload: %v", err)
	}
}
