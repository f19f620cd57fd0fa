package wechat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/redis"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/adapters/wechat/token"
	"github.com/tacklegate/tacklegate/adapters/wxsim"
	"github.com/tacklegate/tacklegate/rental"
)

// The clients point the process-wide transport at each test's simulator, so
// these tests run one after another (no t.Parallel).

var testEpoch = time.Date(2026, 6, 8, 10, 0, 0, 0, time.UTC)

// env is a simulator behind a server that counts the requests per path, so
// that token fetches are counted on the wire, and a log sink that must never
// see a secret.
type env struct {
	sim  *wxsim.Simulator
	cfg  wxsim.Config
	srv  *httptest.Server
	logs *logSink

	mu   sync.Mutex
	hits map[string]int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{cfg: wxsim.DefaultConfig(), hits: map[string]int{}, logs: &logSink{}}
	e.cfg.Now = wxsim.FixedTime(testEpoch)
	sim, err := wxsim.New(e.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.sim = sim
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.hits[r.URL.Path]++
		e.mu.Unlock()
		sim.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		e.srv.Close()
		_ = sim.Close()
	})
	t.Cleanup(func() {
		// Nothing secret may have been logged (checked last, after the test
		// added what it learned).
		e.logs.mustNotContain(t, e.cfg.AppSecret)
	})
	return e
}

func (e *env) count(endpoint string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hits[endpoint]
}

func (e *env) client(t *testing.T, store token.Store) *Client {
	t.Helper()
	c, err := New(Config{
		AppID:      e.cfg.AppID,
		AppSecret:  e.cfg.AppSecret,
		APIBase:    e.srv.URL + wxsim.PrefixWeChat,
		TokenStore: store,
		Logger:     e.logs.logger(),
		Now:        e.sim.Clock().Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// logSink keeps every log line at debug level.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if testing.Verbose() {
		os.Stderr.Write(p)
	}
	return l.buf.Write(p)
}

func (l *logSink) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *logSink) mustNotContain(t *testing.T, secrets ...string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range secrets {
		if s != "" && strings.Contains(l.buf.String(), s) {
			t.Errorf("a secret (%.6s…) was logged", s)
		}
	}
}

// apiErr returns the *APIError in err's chain, failing the test without one.
func apiErr(t *testing.T, err error) *APIError {
	t.Helper()
	var e *APIError
	if !errors.As(err, &e) {
		t.Fatalf("error %v has no *APIError", err)
	}
	return e
}

func wantCode(t *testing.T, err error, code int, kind rental.Kind) *APIError {
	t.Helper()
	e := apiErr(t, err)
	if e.Code != code || rental.ErrorKind(err) != kind {
		t.Fatalf("got errcode %d kind %q (%v), want %d %q", e.Code, rental.ErrorKind(err), err, code, kind)
	}
	return e
}

func pngBytes(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for x := range 8 {
		img.Set(x, x, color.RGBA{R: 0x20, G: 0x90, B: 0xc0, A: 0xff})
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCode2Session(t *testing.T) {
	e := newEnv(t)
	c := e.client(t, nil)
	ctx := context.Background()
	e.sim.AddCustomer(wxsim.Customer{OpenID: "oLogin1", UnionID: "uLogin1"})

	code := e.sim.Login("oLogin1")
	s, err := c.Code2Session(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	if s.OpenID != "oLogin1" || s.UnionID != "uLogin1" || s.SessionKey == "" {
		t.Fatalf("session %v", s)
	}
	for _, form := range []string{fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s)} {
		if strings.Contains(form, s.SessionKey) {
			t.Errorf("session key printed: %s", form)
		}
	}
	c.log.Info("logged in", "session", s)
	e.logs.mustNotContain(t, s.SessionKey)

	// A code works once.
	_, err = c.Code2Session(ctx, code)
	wantCode(t, err, 40163, rental.KindUnauthorized)
	_, err = c.Code2Session(ctx, "not-a-code")
	wantCode(t, err, 40029, rental.KindUnauthorized)
	if _, err := c.Code2Session(ctx, ""); rental.ErrorKind(err) != rental.KindInvalid {
		t.Fatalf("empty code: %v", err)
	}
	if n := e.count(wxsim.EndpointStableToken); n != 0 {
		t.Errorf("login fetched %d tokens; it needs none", n)
	}
}

func TestPhoneNumber(t *testing.T) {
	e := newEnv(t)
	c := e.client(t, nil)
	ctx := context.Background()
	e.sim.Login("oPhone1")
	code, err := e.sim.PhoneCode("oPhone1", "13912345678")
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.PhoneNumber(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	if p.PhoneNumber != "13912345678" || p.PurePhoneNumber != "13912345678" || p.CountryCode != "86" {
		t.Fatalf("phone %+v", p)
	}
	if s := p.String(); strings.Contains(s, "13912345678") || !strings.Contains(s, "5678") {
		t.Errorf("String() = %q, want it masked", s)
	}
	c.log.Info("phone bound", "phone", p)
	e.logs.mustNotContain(t, "13912345678")

	_, err = c.PhoneNumber(ctx, code)
	wantCode(t, err, 40029, rental.KindInvalid)

	code, _ = e.sim.PhoneCode("oPhone1", "+852 51234567")
	if p, err := c.PhoneNumber(ctx, code); err != nil || p.CountryCode != "852" || p.PhoneNumber != "+85251234567" {
		t.Fatalf("foreign number: %+v %v", p, err)
	}
}

// TestPhoneNumberForeignWatermark uses a tiny hand-written upstream: the
// simulator always stamps its own appid, and the check is about an answer
// that was made for another app.
func TestPhoneNumberForeignWatermark(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cgi-bin/stable_token":
			_, _ = io.WriteString(w, `{"access_token":"AT","expires_in":7200}`)
		case "/wxa/business/getuserphonenumber":
			_, _ = io.WriteString(w, `{"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber":"13800000000","purePhoneNumber":"13800000000","countryCode":"86","watermark":{"timestamp":1,"appid":"wxOTHER"}}}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c, err := New(Config{AppID: "wxMINE", AppSecret: "s", APIBase: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.PhoneNumber(context.Background(), "code")
	if rental.ErrorKind(err) != rental.KindUpstream || !strings.Contains(err.Error(), "wxOTHER") {
		t.Fatalf("err = %v, want an upstream error naming the foreign appid", err)
	}
}

func TestCustomerServiceWindow(t *testing.T) {
	e := newEnv(t)
	c := e.client(t, nil)
	ctx := context.Background()
	const openid = wxsim.DemoCustomerOpenID

	// Before the customer wrote: no window.
	err := c.SendCustomerText(ctx, openid, "您好")
	if !wantCode(t, err, 45015, rental.KindConflict).IsWindowClosed() {
		t.Fatal("45015 is not IsWindowClosed")
	}

	if _, err := e.sim.CustomerSends(ctx, openid, wxsim.TextMessage("鱼竿还有吗")); err != nil {
		t.Fatal(err)
	}
	thumb, err := c.UploadImage(ctx, "rod.png", bytes.NewReader(pngBytes(t)))
	if err != nil {
		t.Fatal(err)
	}
	sends := []func() error{
		func() error { return c.SendCustomerText(ctx, openid, "有的，请看") },
		func() error { return c.SendCustomerImage(ctx, openid, thumb) },
		func() error {
			return c.SendCustomerLink(ctx, openid, Link{Title: "租赁须知", Description: "押金与归还", URL: "https://shop.example/rules", ThumbURL: "https://shop.example/t.png"})
		},
		func() error {
			return c.SendCustomerMiniProgramPage(ctx, openid, Page{Title: "碳素鱼竿 3.6m", PagePath: "pages/item/item?id=7", ThumbMediaID: thumb})
		},
		func() error { return c.SendCustomerText(ctx, openid, "还有问题随时问") },
	}
	for i, send := range sends {
		if err := send(); err != nil {
			t.Fatalf("send %d: %v", i+1, err)
		}
	}
	got := e.sim.Delivered(openid)
	if len(got) != 5 {
		t.Fatalf("delivered %d, want 5", len(got))
	}
	for i, want := range []string{"text", "image", "link", "miniprogrampage", "text"} {
		if got[i].MsgType != want {
			t.Errorf("delivery %d is %s, want %s", i+1, got[i].MsgType, want)
		}
	}
	if got[1].MediaType != "image/png" || got[3].Page == nil || got[3].Page.PagePath != "pages/item/item?id=7" {
		t.Errorf("image/page deliveries: %+v %+v", got[1], got[3])
	}

	// A sixth reply needs another customer message.
	err = c.SendCustomerText(ctx, openid, "第六条")
	if !wantCode(t, err, 45047, rental.KindConflict).IsQuotaExceeded() {
		t.Fatal("45047 is not IsQuotaExceeded")
	}

	// 49 hours after the customer's next message, the window is shut again.
	if _, err := e.sim.CustomerSends(ctx, openid, wxsim.TextMessage("在吗")); err != nil {
		t.Fatal(err)
	}
	if err := c.SendCustomerText(ctx, openid, "在的"); err != nil {
		t.Fatal(err)
	}
	e.sim.Advance(49 * time.Hour)
	err = c.SendCustomerText(ctx, openid, "还在吗")
	if !wantCode(t, err, 45015, rental.KindConflict).IsWindowClosed() {
		t.Fatal("45015 is not IsWindowClosed")
	}
	if e.count(wxsim.EndpointStableToken) != 2 {
		t.Errorf("token fetches = %d, want 2 (the first token expired during the 49 h)", e.count(wxsim.EndpointStableToken))
	}
}

func TestSubscribeMessage(t *testing.T) {
	e := newEnv(t)
	c := e.client(t, nil)
	ctx := context.Background()
	const openid = wxsim.DemoCustomerOpenID
	data := map[string]string{
		"thing1": "碳素鱼竿 3.6m", "time2": "2026-06-10 18:00",
		"character_string3": "TG20260608001", "thing4": "请按时归还",
	}
	_, err := c.SendSubscribe(ctx, openid, wxsim.DemoTemplateReturnReminder, "pages/order/detail?id=1", data)
	if !wantCode(t, err, 43101, rental.KindForbidden).IsQuotaExceeded() {
		t.Fatal("43101 is not IsQuotaExceeded")
	}

	if err := e.sim.GrantSubscribe(openid, wxsim.DemoTemplateReturnReminder, 1); err != nil {
		t.Fatal(err)
	}
	msgID, err := c.SendSubscribe(ctx, openid, wxsim.DemoTemplateReturnReminder, "pages/order/detail?id=1", data)
	if err != nil || msgID == 0 {
		t.Fatalf("SendSubscribe = %d, %v", msgID, err)
	}
	got := e.sim.Delivered(openid)
	if len(got) != 1 || got[0].Kind != "subscribe" || got[0].Data["thing1"] != "碳素鱼竿 3.6m" || got[0].PagePath != "pages/order/detail?id=1" || got[0].MsgID != msgID {
		t.Fatalf("delivered %+v", got)
	}
	// The one consent is used up.
	_, err = c.SendSubscribe(ctx, openid, wxsim.DemoTemplateReturnReminder, "", data)
	wantCode(t, err, 43101, rental.KindForbidden)

	// Data the template refuses (thing ≤ 20 characters).
	_ = e.sim.GrantSubscribe(openid, wxsim.DemoTemplateReturnReminder, 1)
	bad := map[string]string{"thing1": strings.Repeat("鱼", 21), "time2": "2026-06-10 18:00", "character_string3": "x", "thing4": "y"}
	_, err = c.SendSubscribe(ctx, openid, wxsim.DemoTemplateReturnReminder, "", bad)
	wantCode(t, err, 47003, rental.KindInvalid)
}

func TestMediaUploadAndGet(t *testing.T) {
	e := newEnv(t)
	c := e.client(t, nil)
	ctx := context.Background()
	img := pngBytes(t)
	id, err := c.UploadImage(ctx, "鱼竿.png", bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	data, ctype, err := c.GetMedia(ctx, id)
	if err != nil || !bytes.Equal(data, img) || ctype != "image/png" {
		t.Fatalf("GetMedia: %v, %d bytes of %q", err, len(data), ctype)
	}

	// An image a customer sent is downloadable too.
	push, err := e.sim.CustomerSends(ctx, wxsim.DemoCustomerOpenID, wxsim.ImageMessage(img))
	if err != nil {
		t.Fatal(err)
	}
	if data, _, err := c.GetMedia(ctx, push.MediaID); err != nil || !bytes.Equal(data, img) {
		t.Fatalf("customer image: %v", err)
	}

	_, _, err = c.GetMedia(ctx, "no-such-media")
	wantCode(t, err, 40007, rental.KindNotFound)
	e.sim.Advance(73 * time.Hour) // temporary media live three days
	_, _, err = c.GetMedia(ctx, id)
	wantCode(t, err, 40007, rental.KindNotFound)

	_, err = c.UploadImage(ctx, "notes.txt", strings.NewReader("not an image at all"))
	wantCode(t, err, 40005, rental.KindInvalid)
	if _, err := c.UploadImage(ctx, "big.png", io.LimitReader(zeros{}, MaxImageBytes+1)); rental.ErrorKind(err) != rental.KindInvalid {
		t.Fatalf("oversized: %v", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestTokenInvalidatedEarlyIsRefreshedOnce(t *testing.T) {
	e := newEnv(t)
	c := e.client(t, nil)
	ctx := context.Background()
	if err := e.sim.GrantSubscribe(wxsim.DemoCustomerOpenID, wxsim.DemoTemplateReturnReminder, 2); err != nil {
		t.Fatal(err)
	}
	data := map[string]string{"thing1": "鱼竿", "time2": "2026-06-10 18:00", "character_string3": "1", "thing4": "好"}
	if _, err := c.SendSubscribe(ctx, wxsim.DemoCustomerOpenID, wxsim.DemoTemplateReturnReminder, "", data); err != nil {
		t.Fatal(err)
	}
	if n := e.count(wxsim.EndpointStableToken); n != 1 {
		t.Fatalf("token fetches = %d, want 1", n)
	}
	old, _ := c.Tokens().Token(ctx)

	e.sim.InvalidateTokens() // the server drops the token before its time
	if _, err := c.SendSubscribe(ctx, wxsim.DemoCustomerOpenID, wxsim.DemoTemplateReturnReminder, "", data); err != nil {
		t.Fatalf("after early invalidation: %v", err)
	}
	if n := e.count(wxsim.EndpointStableToken); n != 2 {
		t.Fatalf("token fetches = %d, want exactly one more", n)
	}
	if n := e.count(wxsim.EndpointSubscribeSend); n != 3 {
		t.Fatalf("subscribe/send calls = %d, want 3 (ok, refused, retried)", n)
	}
	e.logs.mustNotContain(t, old)

	// The same for a hand-written call.
	id, err := c.UploadImage(ctx, "a.png", bytes.NewReader(pngBytes(t)))
	if err != nil {
		t.Fatal(err)
	}
	e.sim.InvalidateTokens()
	if _, _, err := c.GetMedia(ctx, id); err != nil {
		t.Fatalf("GetMedia after early invalidation: %v", err)
	}
	if n := e.count(wxsim.EndpointStableToken); n != 3 {
		t.Fatalf("token fetches = %d, want 3", n)
	}
}

func TestConcurrentCallsFetchOneToken(t *testing.T) {
	for _, tt := range []struct {
		name  string
		spoil func(e *env)
	}{
		{"expired", func(e *env) { e.sim.Advance(2*time.Hour + time.Minute) }},
		{"revoked by the server", func(e *env) { e.sim.InvalidateTokens() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			c := e.client(t, nil)
			ctx := context.Background()
			const n = 50
			if err := e.sim.GrantSubscribe(wxsim.DemoCustomerOpenID, wxsim.DemoTemplateReturnReminder, n+1); err != nil {
				t.Fatal(err)
			}
			data := map[string]string{"thing1": "鱼竿", "time2": "2026-06-10 18:00", "character_string3": "1", "thing4": "好"}
			if _, err := c.SendSubscribe(ctx, wxsim.DemoCustomerOpenID, wxsim.DemoTemplateReturnReminder, "", data); err != nil {
				t.Fatal(err)
			}
			tt.spoil(e)
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for range n {
				wg.Go(func() {
					_, err := c.SendSubscribe(ctx, wxsim.DemoCustomerOpenID, wxsim.DemoTemplateReturnReminder, "", data)
					errs <- err
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			if got := e.count(wxsim.EndpointStableToken); got != 2 {
				t.Fatalf("token fetches = %d, want 2: one at the start, ONE for the %d concurrent calls", got, n)
			}
		})
	}
}

func TestSystemBusyAndServerErrorsAreRetryable(t *testing.T) {
	e := newEnv(t)
	c := e.client(t, nil)
	ctx := context.Background()
	if _, err := e.sim.CustomerSends(ctx, wxsim.DemoCustomerOpenID, wxsim.TextMessage("你好")); err != nil {
		t.Fatal(err)
	}

	e.sim.Faults().Set(wxsim.EndpointCustomSend, wxsim.Fault{Errcode: -1, Times: 1})
	err := c.SendCustomerText(ctx, wxsim.DemoCustomerOpenID, "忙吗")
	if !wantCode(t, err, -1, rental.KindUnavailable).Retryable() {
		t.Fatal("-1 is not Retryable")
	}
	if err := c.SendCustomerText(ctx, wxsim.DemoCustomerOpenID, "忙吗"); err != nil {
		t.Fatalf("after the fault: %v", err)
	}

	e.sim.Faults().Set(wxsim.EndpointCustomSend, wxsim.Fault{HTTPStatus: http.StatusBadGateway, Times: 1})
	err = c.SendCustomerText(ctx, wxsim.DemoCustomerOpenID, "网关")
	if ae := apiErr(t, err); ae.HTTPStatus != http.StatusBadGateway || !ae.Retryable() || rental.ErrorKind(err) != rental.KindUnavailable {
		t.Fatalf("502: %+v (%v)", ae, err)
	}
	tok, _ := c.Tokens().Token(ctx)
	if strings.Contains(err.Error(), tok) {
		t.Fatalf("the access token is in the error text: %v", err)
	}

	e.sim.Faults().Set(wxsim.EndpointStableToken, wxsim.Fault{Errcode: 45011, Times: 1})
	e.sim.InvalidateTokens()
	err = c.SendCustomerText(ctx, wxsim.DemoCustomerOpenID, "令牌")
	if ae := apiErr(t, err); ae.Code != 45011 || !ae.TokenFetch || !ae.Retryable() {
		t.Fatalf("token endpoint busy: %+v", ae)
	}
}

func TestLatencyIsBoundedByTheContext(t *testing.T) {
	e := newEnv(t)
	c := e.client(t, nil)
	ctx := context.Background()
	if _, err := e.sim.CustomerSends(ctx, wxsim.DemoCustomerOpenID, wxsim.TextMessage("你好")); err != nil {
		t.Fatal(err)
	}
	if err := c.SendCustomerText(ctx, wxsim.DemoCustomerOpenID, "先取令牌"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		endpoint string
		call     func(ctx context.Context) error
	}{
		{"SDK call without a context", wxsim.EndpointCustomSend, func(ctx context.Context) error {
			return c.SendCustomerText(ctx, wxsim.DemoCustomerOpenID, "慢")
		}},
		{"hand-written call", wxsim.EndpointMediaGet, func(ctx context.Context) error {
			_, _, err := c.GetMedia(ctx, "whatever")
			return err
		}},
		{"token fetch", wxsim.EndpointStableToken, func(ctx context.Context) error {
			e.sim.InvalidateTokens()
			return c.SendCustomerText(ctx, wxsim.DemoCustomerOpenID, "慢令牌")
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e.sim.Faults().Set(tt.endpoint, wxsim.Fault{Latency: 2 * time.Second, Times: 1})
			defer e.sim.Faults().Clear(tt.endpoint)
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := tt.call(ctx)
			if d := time.Since(start); d > time.Second {
				t.Fatalf("took %v with a 200 ms deadline", d)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want the deadline", err)
			}
			if ae := apiErr(t, err); !ae.Retryable() || rental.ErrorKind(err) != rental.KindUnavailable {
				t.Fatalf("timeout: %+v (%v)", ae, err)
			}
		})
	}
	// The abandoned send was not delivered: the simulator saw the client go.
	time.Sleep(100 * time.Millisecond)
	for _, d := range e.sim.Delivered(wxsim.DemoCustomerOpenID) {
		if d.Text == "慢" || d.Text == "慢令牌" {
			t.Errorf("a cancelled send was delivered: %q", d.Text)
		}
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Config{AppID: "wx1"}); rental.ErrorKind(err) != rental.KindInvalid {
		t.Errorf("no secret: %v", err)
	}
	if _, err := New(Config{AppID: "wx1", AppSecret: "s", APIBase: "ftp://x"}); rental.ErrorKind(err) != rental.KindInvalid {
		t.Errorf("bad base: %v", err)
	}
	a, err := New(Config{AppID: "wx1", AppSecret: "s", APIBase: "http://127.0.0.1:1/a"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	_, err = New(Config{AppID: "wx1", AppSecret: "s", APIBase: "http://127.0.0.1:1/b"})
	if rental.ErrorKind(err) != rental.KindInvalid || !strings.Contains(err.Error(), "127.0.0.1:1/a") {
		t.Errorf("second base in one process: %v", err)
	}
}

// TestTwoInstancesShareOneTokenInRedis: two clients of the same app, each
// with its own token source (as two gateway instances would have), share
// the token through Redis and fetch it once between them.
func TestTwoInstancesShareOneTokenInRedis(t *testing.T) {
	rc := testRedis(t)
	e := newEnv(t)
	prefix := fmt.Sprintf("tg-test:%s:%d:", t.Name(), time.Now().UnixNano())
	t.Cleanup(func() {
		ctx := context.Background()
		if keys, _ := rc.Raw().Keys(ctx, prefix+"*").Result(); len(keys) > 0 {
			_ = rc.Raw().Del(ctx, keys...).Err()
		}
	})
	store := redis.NewTokenCache(rc, prefix)
	a, b := e.client(t, store), e.client(t, store)
	ctx := context.Background()
	const n = 20
	if err := e.sim.GrantSubscribe(wxsim.DemoCustomerOpenID, wxsim.DemoTemplateReturnReminder, 2*n); err != nil {
		t.Fatal(err)
	}
	data := map[string]string{"thing1": "鱼竿", "time2": "2026-06-10 18:00", "character_string3": "1", "thing4": "好"}
	var wg sync.WaitGroup
	for i := range 2 * n {
		c := a
		if i%2 == 1 {
			c = b
		}
		wg.Go(func() {
			if _, err := c.SendSubscribe(ctx, wxsim.DemoCustomerOpenID, wxsim.DemoTemplateReturnReminder, "", data); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := e.count(wxsim.EndpointStableToken); got != 1 {
		t.Fatalf("token fetches = %d for two instances, want 1", got)
	}
	ta, _ := a.Tokens().Token(ctx)
	tb, _ := b.Tokens().Token(ctx)
	if ta != tb {
		t.Fatal("the instances use different tokens")
	}
}

func testRedis(t *testing.T) *redis.Client {
	t.Helper()
	url := os.Getenv("TACKLEGATE_TEST_REDIS_URL")
	if url == "" {
		storetest.SkipOrFailInCI(t, "TACKLEGATE_TEST_REDIS_URL not set: Redis tests skipped")
	}
	rc, err := redis.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Close() })
	return rc
}
