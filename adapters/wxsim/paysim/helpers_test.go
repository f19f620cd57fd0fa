package paysim_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/wechatpay"
	"github.com/tacklegate/tacklegate/adapters/wxsim/paysim"
)

const (
	testMchID    = "1900007291"
	testAppID    = "wx2421b1c4370ec43b"
	testSerial   = "408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB"
	testAPIv3Key = "0123456789abcdefghijklmnopqrstuv"
	testOpenID   = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
)

// clock is a simulator clock the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func loadKeys(t testing.TB) (merchant, platform *rsa.PrivateKey) {
	t.Helper()
	m, err := wechatpay.LoadPrivateKey([]byte(testingKey(merchantKeyPEM)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := wechatpay.LoadPrivateKey([]byte(testingKey(platformKeyPEM)))
	if err != nil {
		t.Fatal(err)
	}
	return m, p
}

// env is a simulator mounted at /pay on a loopback server, a client pointed
// at it, and a notify receiver that verifies with that client.
type env struct {
	t        *testing.T
	sim      *paysim.Server
	srv      *httptest.Server
	clock    *clock
	merchant *rsa.PrivateKey
	client   *wechatpay.Client
	recv     *receiver
}

// newEnv starts an env. The simulator's business clock is env.clock; the
// wire clock is real time, like the client's, so advancing the business clock
// does not break signatures.
func newEnv(t *testing.T, edit ...func(*paysim.Config)) *env {
	t.Helper()
	merchant, platform := loadKeys(t)
	e := &env{t: t, clock: &clock{t: time.Now()}, merchant: merchant}
	cfg := paysim.Config{
		MchID: testMchID, AppID: testAppID, MerchantPublicKey: &merchant.PublicKey, MerchantSerial: testSerial,
		APIv3Key: testAPIv3Key, PlatformKey: platform, Now: e.clock.Now, WireNow: time.Now, Seed: 42,
		PollInterval: 5 * time.Millisecond,
	}
	for _, f := range edit {
		f(&cfg)
	}
	sim, err := paysim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.sim = sim
	mux := http.NewServeMux()
	mux.Handle("/pay/", http.StripPrefix("/pay", sim.Handler()))
	e.srv = httptest.NewServer(mux)
	e.client = e.newClient(nil)
	e.recv = newReceiver(t, e.client)
	t.Cleanup(func() {
		sim.Close() // first: stops deliveries before the receiver goes away
		e.srv.Close()
		e.recv.srv.Close()
	})
	return e
}

// newClient builds a client for the simulator; edit may change its config.
func (e *env) newClient(edit func(*wechatpay.Config)) *wechatpay.Client {
	e.t.Helper()
	cfg := wechatpay.Config{
		MchID: testMchID, SerialNo: testSerial, PrivateKey: e.merchant, APIv3Key: testAPIv3Key,
		PlatformPublicKey: e.sim.PlatformPublicKey(), PlatformSerial: e.sim.PlatformSerial(),
		BaseURL: e.srv.URL + "/pay", HTTPClient: e.srv.Client(),
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := wechatpay.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// prepay creates an order of total fen with the defaults tests share.
func (e *env) prepay(outTradeNo string, total int64) string {
	e.t.Helper()
	id, err := e.client.PrepayJSAPI(context.Background(), e.order(outTradeNo, total))
	if err != nil {
		e.t.Fatalf("prepay %s: %v", outTradeNo, err)
	}
	return id
}

func (e *env) order(outTradeNo string, total int64) wechatpay.PrepayRequest {
	return wechatpay.PrepayRequest{
		AppID: testAppID, Description: "鱼竿租赁押金", OutTradeNo: outTradeNo, NotifyURL: e.recv.srv.URL + "/notify",
		Total: total, PayerOpenID: testOpenID,
	}
}

// pay has the customer pay with parameters signed by the client.
func (e *env) pay(outTradeNo, prepayID string) {
	e.t.Helper()
	p, err := e.client.RequestPayment(testAppID, prepayID)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.sim.Pay(outTradeNo, paysim.PaymentParams(p)); err != nil {
		e.t.Fatalf("pay %s: %v", outTradeNo, err)
	}
}

// control calls a /control endpoint and decodes the JSON answer.
func (e *env) control(method, path string, body any) (int, map[string]any) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.srv.URL+"/pay"+path, rd)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// raw sends a request signed by hand — an independent third spelling of
// §3.2 — for cases the client cannot produce, and decodes the JSON answer.
func (e *env) raw(method, target, body string) (int, map[string]any) {
	e.t.Helper()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	nonce := rand.Text()
	sum := sha256.Sum256([]byte(method + "\n" + target + "\n" + ts + "\n" + nonce + "\n" + body + "\n"))
	sig, err := rsa.SignPKCS1v15(nil, e.merchant, crypto.SHA256, sum[:])
	if err != nil {
		e.t.Fatal(err)
	}
	req, _ := http.NewRequest(method, e.srv.URL+"/pay"+target, strings.NewReader(body))
	req.Header.Set("Authorization", fmt.Sprintf(`WECHATPAY2-SHA256-RSA2048 signature="%s",timestamp="%s",serial_no="%s",nonce_str="%s",mchid="%s"`,
		base64.StdEncoding.EncodeToString(sig), ts, testSerial, nonce, testMchID))
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// apiError asserts err is a verified *wechatpay.APIError with status and code.
func apiError(t *testing.T, err error, status int, code string) *wechatpay.APIError {
	t.Helper()
	var ae *wechatpay.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want APIError %d %s", err, status, code)
	}
	if ae.Status != status || ae.Code != code {
		t.Fatalf("APIError %d %s (%s), want %d %s", ae.Status, ae.Code, ae.Message, status, code)
	}
	return ae
}

// waitFor polls cond until it holds or a few seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// receiver is a notify_url that verifies and decrypts with the client, as
// the gateway will, and answers with status(n) for authentic notifications.
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []*wechatpay.Notification // authentic ones, in arrival order
	errs   []error                   // rejected deliveries
	status func(n int) int           // answer for the n-th authentic delivery (1-based)
	delay  time.Duration
}

func newReceiver(t *testing.T, c *wechatpay.Client) *receiver {
	r := &receiver{status: func(int) int { return http.StatusNoContent }}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		n, err := c.ParseNotification(req.Header, body)
		r.mu.Lock()
		delay := r.delay
		if err != nil {
			r.errs = append(r.errs, err)
			r.mu.Unlock()
			code := http.StatusBadRequest
			if errors.Is(err, wechatpay.ErrSignature) {
				code = http.StatusUnauthorized
			}
			w.WriteHeader(code)
			_, _ = io.WriteString(w, `{"code":"FAIL","message":"失败"}`)
			return
		}
		r.got = append(r.got, n)
		status := r.status(len(r.got))
		r.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-req.Context().Done():
			}
		}
		w.WriteHeader(status)
	}))
	return r
}

func (r *receiver) notifications() []*wechatpay.Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*wechatpay.Notification(nil), r.got...)
}

func (r *receiver) rejected() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

func (r *receiver) set(f func(r *receiver)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r)
}

// roundTrip adapts a function to http.RoundTripper.
type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// mutating returns an HTTP client that lets edit change each request after
// the client signed it.
func (e *env) mutating(edit func(*http.Request)) *http.Client {
	base := e.srv.Client().Transport
	return &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		edit(r)
		return base.RoundTrip(r)
	})}
}

// setBody replaces a request body.
func setBody(r *http.Request, body string) {
	r.Body = io.NopCloser(strings.NewReader(body))
	r.ContentLength = int64(len(body))
}
