package paysim_test

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/wechatpay"
	"github.com/tacklegate/tacklegate/adapters/wxsim/paysim"
)

func TestControlAPI(t *testing.T) {
	e := newEnv(t)
	id := e.prepay("T060001", 100)
	p, _ := e.client.RequestPayment(testAppID, id)

	// The brief's snake_case spelling; wx.requestPayment's camelCase is the other.
	body := map[string]string{"out_trade_no": "T060001", "timestamp": p.TimeStamp, "nonce_str": p.NonceStr,
		"package": p.Package, "pay_sign": p.PaySign}
	bad := map[string]string{"out_trade_no": "T060001", "timestamp": p.TimeStamp, "nonce_str": p.NonceStr,
		"package": p.Package, "pay_sign": p.PaySign[4:]}
	tests := []struct {
		name, method, path string
		body               any
		status             int
		check              func(map[string]any) bool
	}{
		{"abandon", "POST", "/control/abandon", map[string]string{"out_trade_no": "T060001"}, 200, nil},
		{"abandoned shows", "GET", "/control/orders", nil, 200, func(m map[string]any) bool {
			o := m["orders"].([]any)[0].(map[string]any)
			return o["abandoned"] == true && o["trade_state"] == "NOTPAY"
		}},
		{"pay with a bad sign", "POST", "/control/pay", bad, 400, nil},
		{"pay", "POST", "/control/pay", body, 200, func(m map[string]any) bool { return m["trade_state"] == "SUCCESS" }},
		{"pay again", "POST", "/control/pay", body, 409, func(m map[string]any) bool {
			return m["error"].(map[string]any)["code"] == "conflict"
		}},
		{"pay unknown", "POST", "/control/pay", map[string]string{"out_trade_no": "T060404", "timestamp": p.TimeStamp, "nonce_str": p.NonceStr, "package": p.Package, "pay_sign": p.PaySign}, 404, nil},
		{"abandon unknown", "POST", "/control/abandon", map[string]string{"out_trade_no": "T060404"}, 404, nil},
		{"not JSON", "POST", "/control/abandon", "{", 400, nil},
		{"orders", "GET", "/control/orders", nil, 200, func(m map[string]any) bool {
			o := m["orders"].([]any)[0].(map[string]any)
			return o["trade_state"] == "SUCCESS" && o["transaction_id"] != "" && o["abandoned"] == nil
		}},
		{"notifications", "GET", "/control/notifications", nil, 200, func(m map[string]any) bool { return m["attempts"] != nil }},
		{"balance needs a value", "POST", "/control/balance", map[string]any{}, 400, nil},
		{"complete refunds", "POST", "/control/refunds/complete", nil, 200, func(m map[string]any) bool { return m["completed"] == 0.0 }},
		{"platform key", "GET", "/control/platform-key", nil, 200, func(m map[string]any) bool {
			return m["serial"] == paysim.DefaultPlatformSerial && strings.Contains(m["public_key_pem"].(string), "BEGIN PUBLIC KEY")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := e.control(tt.method, tt.path, tt.body)
			if status != tt.status || tt.check != nil && !tt.check(out) {
				t.Fatalf("HTTP %d %v", status, out)
			}
		})
	}
	pub, err := wechatpay.LoadPublicKey(e.sim.PlatformPublicKeyPEM())
	if err != nil || !pub.Equal(e.sim.PlatformPublicKey()) {
		t.Fatalf("PlatformPublicKeyPEM does not load back: %v", err)
	}
}

// TestAPIFaults: injected 5xx and 429 are Pay-style signed errors the client
// sees as retryable; a dropped answer after processing leaves the merchant to
// retry, and the retry is idempotent.
func TestAPIFaults(t *testing.T) {
	var mode atomic.Value
	mode.Store(paysim.Fault{})
	e := newEnv(t, func(c *paysim.Config) {
		c.Fault = func(endpoint string) (paysim.Fault, bool) {
			if endpoint != paysim.EndpointPrepay {
				return paysim.Fault{}, false
			}
			f := mode.Load().(paysim.Fault)
			return f, f != (paysim.Fault{})
		}
	})
	ctx := context.Background()

	mode.Store(paysim.Fault{HTTPStatus: 503})
	_, err := e.client.PrepayJSAPI(ctx, e.order("T070001", 100))
	if ae := apiError(t, err, 503, "SYSTEM_ERROR"); !ae.Retryable() {
		t.Fatal("SYSTEM_ERROR not retryable")
	}
	mode.Store(paysim.Fault{HTTPStatus: 429})
	_, err = e.client.PrepayJSAPI(ctx, e.order("T070001", 100))
	if ae := apiError(t, err, 429, "FREQUENCY_LIMITED"); !ae.Retryable() {
		t.Fatal("FREQUENCY_LIMITED not retryable")
	}
	if len(e.sim.Orders()) != 0 {
		t.Fatal("a faulted request was processed")
	}

	mode.Store(paysim.Fault{Drop: true})
	_, err = e.client.PrepayJSAPI(ctx, e.order("T070001", 100))
	var ae *wechatpay.APIError
	if err == nil || errors.As(err, &ae) {
		t.Fatalf("dropped answer: err = %v", err)
	}
	mode.Store(paysim.Fault{})
	id, err := e.client.PrepayJSAPI(ctx, e.order("T070001", 100))
	if err != nil || id != e.sim.Orders()[0].PrepayID {
		t.Fatalf("retry after the drop: %q, %v", id, err)
	}

	mode.Store(paysim.Fault{Latency: 200 * time.Millisecond})
	slow := e.newClient(func(c *wechatpay.Config) { c.HTTPClient = &http.Client{Timeout: 50 * time.Millisecond} })
	if _, err := slow.PrepayJSAPI(ctx, e.order("T070001", 100)); err == nil {
		t.Fatal("latency fault did not delay the answer")
	}
}

func TestNewValidates(t *testing.T) {
	merchant, _ := loadKeys(t)
	_, err := paysim.New(paysim.Config{APIv3Key: "short", SignProbeRate: 2})
	for _, want := range []string{"MchID", "AppID", "MerchantPublicKey", "MerchantSerial", "APIv3Key must be 32 bytes, got 5", "SignProbeRate"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to mention %s", err, want)
		}
	}
	// Without a platform key one is generated; the serial defaults.
	s, err := paysim.New(paysim.Config{MchID: testMchID, AppID: testAppID, MerchantPublicKey: &merchant.PublicKey, MerchantSerial: testSerial, APIv3Key: testAPIv3Key})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.PlatformPublicKey().N.BitLen() != 2048 || s.PlatformSerial() != paysim.DefaultPlatformSerial {
		t.Fatal("defaults not applied")
	}
}

// TestCloseStopsGoroutines: Close stops the worker and waits for
// deliveries; calling it twice is fine.
func TestCloseStopsGoroutines(t *testing.T) {
	merchant, platform := loadKeys(t)
	before := runtime.NumGoroutine()
	for range 3 {
		s, err := paysim.New(paysim.Config{MchID: testMchID, AppID: testAppID, MerchantPublicKey: &merchant.PublicKey,
			MerchantSerial: testSerial, APIv3Key: testAPIv3Key, PlatformKey: platform})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		s.Close()
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines: %d before, %d after Close", before, runtime.NumGoroutine())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
