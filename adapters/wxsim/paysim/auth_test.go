package paysim_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/wechatpay"
	"github.com/tacklegate/tacklegate/adapters/wxsim/paysim"
)

// TestAuthorization covers S15: each way a merchant request can be
// mis-signed gets 401 SIGN_ERROR — and that answer is itself signed, or the
// client would not have returned an APIError.
func TestAuthorization(t *testing.T) {
	e := newEnv(t)
	other, err := wechatpay.LoadPrivateKey([]byte(testingKey(platformKeyPEM)))
	if err != nil {
		t.Fatal(err)
	}
	rewriteAuth := func(f func(string) string) func(*wechatpay.Config) {
		return func(c *wechatpay.Config) {
			c.HTTPClient = e.mutating(func(r *http.Request) { r.Header.Set("Authorization", f(r.Header.Get("Authorization"))) })
		}
	}
	tests := []struct {
		name   string
		edit   func(*wechatpay.Config)
		reason string // in the SIGN_ERROR message; "" = the request succeeds
	}{
		{"valid", nil, ""},
		{"pairs in another order, spaces after commas", rewriteAuth(func(h string) string {
			scheme, rest, _ := strings.Cut(h, " ")
			ps := strings.Split(rest, ",")
			for i, j := 0, len(ps)-1; i < j; i, j = i+1, j-1 {
				ps[i], ps[j] = ps[j], ps[i]
			}
			return scheme + " " + strings.Join(ps, ", ")
		}), ""},
		{"signed with another key", func(c *wechatpay.Config) { c.PrivateKey = other }, "does not verify"},
		{"unknown serial_no", func(c *wechatpay.Config) { c.SerialNo = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1" }, "serial_no"},
		{"another mchid", func(c *wechatpay.Config) { c.MchID = "1230000109" }, "mchid"},
		// The skewed client would also refuse the (correctly stamped) answer;
		// its own check is off here to see what the server said.
		{"clock 6 minutes slow", func(c *wechatpay.Config) {
			c.Now, c.MaxSkew = func() time.Time { return time.Now().Add(-6 * time.Minute) }, -1
		}, "away from server time"},
		{"clock 6 minutes fast", func(c *wechatpay.Config) {
			c.Now, c.MaxSkew = func() time.Time { return time.Now().Add(6 * time.Minute) }, -1
		}, "away from server time"},
		{"no Authorization", func(c *wechatpay.Config) {
			c.HTTPClient = e.mutating(func(r *http.Request) { r.Header.Del("Authorization") })
		}, "missing Authorization"},
		{"other scheme", rewriteAuth(func(h string) string {
			return strings.Replace(h, "WECHATPAY2-SHA256-RSA2048", "WECHATPAY2-SM2-WITH-SM3", 1)
		}), "scheme"},
		{"unquoted value", rewriteAuth(func(h string) string { return strings.Replace(h, `mchid="`+testMchID+`"`, "mchid="+testMchID, 1) }), "not quoted"},
		{"pair given twice", rewriteAuth(func(h string) string { return h + `,mchid="` + testMchID + `"` }), "twice"},
		{"signature dropped", rewriteAuth(func(h string) string { i := strings.Index(h, `,signature=`); return h[:i] }), "lacks signature"},
		{"query changed after signing", func(c *wechatpay.Config) {
			c.HTTPClient = e.mutating(func(r *http.Request) { r.URL.RawQuery = "mchid=" + testMchID + "&x=1" })
		}, "does not verify"},
		{"path changed after signing", func(c *wechatpay.Config) {
			c.HTTPClient = e.mutating(func(r *http.Request) { r.URL.Path = strings.Replace(r.URL.Path, "T100001", "T100002", 1) })
		}, "does not verify"},
	}
	e.prepay("T100001", 100)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.newClient(tt.edit)
			_, err := c.QueryByOutTradeNo(context.Background(), "T100001")
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("query: %v", err)
				}
				return
			}
			ae := apiError(t, err, http.StatusUnauthorized, "SIGN_ERROR")
			if !strings.Contains(ae.Message, tt.reason) {
				t.Fatalf("message %q does not mention %q", ae.Message, tt.reason)
			}
		})
	}

	t.Run("POST body changed after signing", func(t *testing.T) {
		c := e.newClient(func(cfg *wechatpay.Config) {
			cfg.HTTPClient = e.mutating(func(r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				setBody(r, strings.Replace(string(b), `"total":100`, `"total":1`, 1))
			})
		})
		_, err := c.PrepayJSAPI(context.Background(), e.order("T100009", 100))
		apiError(t, err, http.StatusUnauthorized, "SIGN_ERROR")
	})
}

// TestNonceReplay covers the nonce rule of S15: the very same signed request
// sent twice is refused the second time.
func TestNonceReplay(t *testing.T) {
	e := newEnv(t)
	e.prepay("T200001", 100)
	var (
		mu   sync.Mutex
		last *http.Request
	)
	base := e.srv.Client().Transport
	recorder := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		last = r.Clone(context.Background())
		mu.Unlock()
		return base.RoundTrip(r)
	})}
	c := e.newClient(func(cfg *wechatpay.Config) { cfg.HTTPClient = recorder })
	if _, err := c.QueryByOutTradeNo(context.Background(), "T200001"); err != nil {
		t.Fatal(err)
	}
	replay := func(*http.Request) (*http.Response, error) {
		mu.Lock()
		r := last.Clone(context.Background())
		mu.Unlock()
		return base.RoundTrip(r)
	}
	c2 := e.newClient(func(cfg *wechatpay.Config) { cfg.HTTPClient = &http.Client{Transport: roundTrip(replay)} })
	_, err := c2.QueryByOutTradeNo(context.Background(), "T200001")
	ae := apiError(t, err, http.StatusUnauthorized, "SIGN_ERROR")
	if !strings.Contains(ae.Message, "already used") {
		t.Fatalf("message = %q", ae.Message)
	}
}

// TestEveryAnswerIsSigned covers S16 with an independent check (not the
// client): success, 204, errors, unknown paths — all carry a verifiable
// signature over the exact body.
func TestEveryAnswerIsSigned(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var seen []*http.Response
	var bodies []string
	base := e.srv.Client().Transport
	capture := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		resp, err := base.RoundTrip(r)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body = io.NopCloser(strings.NewReader(string(b)))
			mu.Lock()
			seen, bodies = append(seen, resp), append(bodies, string(b))
			mu.Unlock()
		}
		return resp, err
	})}
	c := e.newClient(func(cfg *wechatpay.Config) { cfg.HTTPClient = capture })
	ctx := context.Background()
	if _, err := c.PrepayJSAPI(ctx, e.order("T300001", 100)); err != nil { // 200
		t.Fatal(err)
	}
	if err := c.Close(ctx, "T300001"); err != nil { // 204
		t.Fatal(err)
	}
	_, _ = c.QueryByOutTradeNo(ctx, "T300404") // 404
	bad := e.newClient(func(cfg *wechatpay.Config) { cfg.HTTPClient = capture; cfg.SerialNo = "BAD" })
	_, _ = bad.QueryByOutTradeNo(ctx, "T300001") // 401

	resp, err := capture.Get(e.srv.URL + "/pay/v3/no/such/api") // unknown path, unauthenticated
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	wantStatus := []int{200, 204, 404, 401, 404}
	if len(seen) != len(wantStatus) {
		t.Fatalf("captured %d answers", len(seen))
	}
	for i, resp := range seen {
		if resp.StatusCode != wantStatus[i] {
			t.Errorf("answer %d: status %d, want %d", i, resp.StatusCode, wantStatus[i])
		}
		h := resp.Header
		if h.Get("Request-ID") == "" || h.Get("Wechatpay-Signature-Type") != "WECHATPAY2-SHA256-RSA2048" || h.Get("Wechatpay-Serial") != paysim.DefaultPlatformSerial {
			t.Errorf("answer %d: headers %v", i, h)
		}
		msg := h.Get("Wechatpay-Timestamp") + "\n" + h.Get("Wechatpay-Nonce") + "\n" + bodies[i] + "\n"
		sig, _ := base64.StdEncoding.DecodeString(h.Get("Wechatpay-Signature"))
		sum := sha256.Sum256([]byte(msg))
		if err := rsa.VerifyPKCS1v15(e.sim.PlatformPublicKey(), crypto.SHA256, sum[:], sig); err != nil {
			t.Errorf("answer %d (HTTP %d, %q): signature does not verify", i, resp.StatusCode, bodies[i])
		}
	}
}

// TestSignatureProbe covers the probe half of S16: with SignProbeRate 1
// every answer carries a WECHATPAY/SIGNTEST/ signature, which the client
// refuses even though the work was done.
func TestSignatureProbe(t *testing.T) {
	e := newEnv(t, func(c *paysim.Config) { c.SignProbeRate = 1 })
	_, err := e.client.PrepayJSAPI(context.Background(), e.order("T400001", 100))
	if !errors.Is(err, wechatpay.ErrSignature) || !strings.Contains(err.Error(), "probe") {
		t.Fatalf("err = %v, want a rejected probe", err)
	}
	if orders := e.sim.Orders(); len(orders) != 1 || orders[0].OutTradeNo != "T400001" {
		t.Fatalf("orders = %+v", orders)
	}
}
