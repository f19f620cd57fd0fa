package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tacklegate/tacklegate/rental"
)

// syncBuffer is a log sink the server's goroutines can write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newTestServer(t *testing.T, opts Options) (*Server, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	opts.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if opts.BodyLimit == 0 {
		opts.BodyLimit = 1 << 20
	}
	return New(opts), logs
}

type errJSON struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func do(t *testing.T, s *Server, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := s.App().Test(req, -1)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body
}

func decodeErr(t *testing.T, body []byte) errJSON {
	t.Helper()
	var e errJSON
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not a JSON error body: %q (%v)", body, err)
	}
	return e
}

func TestErrorMapping(t *testing.T) {
	s, logs := newTestServer(t, Options{})
	errs := map[string]error{
		"invalid":      rental.Errorf("op", rental.KindInvalid, "日期格式不对"),
		"unauthorized": &rental.Error{Kind: rental.KindUnauthorized},
		"forbidden":    rental.Errorf("op", rental.KindForbidden, "仅限店主"),
		"notfound":     rental.Errorf("op", rental.KindNotFound, "订单不存在"),
		"conflict":     rental.Errorf("op", rental.KindConflict, "订单已支付"),
		"ratelimited":  rental.Errorf("op", rental.KindRateLimited, "验证码发送太频繁"),
		"unavailable":  rental.Wrap("op", rental.KindUnavailable, "数据库忙", io.EOF),
		"upstream":     rental.Wrap("op", rental.KindUpstream, "", errors.New("errcode 45009")),
		"internal":     rental.Wrap("op", rental.KindInternal, "SELECT failed on table x", errors.New("boom")),
		"plain":        errors.New("secret detail: password=123"),
	}
	for name, err := range errs {
		s.App().Get("/t/"+name, func(c *fiber.Ctx) error { return err })
	}
	tests := []struct {
		name, code, message string
		status              int
	}{
		{"invalid", "invalid", "日期格式不对", 400},
		{"unauthorized", "unauthorized", genericMessage[rental.KindUnauthorized], 401},
		{"forbidden", "forbidden", "仅限店主", 403},
		{"notfound", "not_found", "订单不存在", 404},
		{"conflict", "conflict", "订单已支付", 409},
		{"ratelimited", "rate_limited", "验证码发送太频繁", 429},
		{"unavailable", "unavailable", "数据库忙", 503},
		{"upstream", "upstream", genericMessage[rental.KindUpstream], 502},
		{"internal", "internal", genericMessage[rental.KindInternal], 500},
		{"plain", "internal", genericMessage[rental.KindInternal], 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, s, httptest.NewRequest("GET", "/t/"+tt.name, nil))
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
			e := decodeErr(t, body)
			if e.Error.Code != tt.code || e.Error.Message != tt.message {
				t.Errorf("got %+v, want code %q message %q", e.Error, tt.code, tt.message)
			}
			if strings.Contains(string(body), "password") || strings.Contains(string(body), "SELECT") {
				t.Errorf("internal detail leaked to the client: %s", body)
			}
		})
	}
	// The internal detail goes to the log instead, once per request.
	if got := strings.Count(logs.String(), "password=123"); got != 1 {
		t.Errorf("plain error logged %d times, want once:\n%s", got, logs)
	}
}

func TestUnknownRouteIsJSON404(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	resp, body := do(t, s, httptest.NewRequest("GET", "/no/such/thing", nil))
	if resp.StatusCode != 404 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("content type %q", ct)
	}
	if e := decodeErr(t, body); e.Error.Code != "not_found" {
		t.Errorf("code %q", e.Error.Code)
	}
	resp, body = do(t, s, httptest.NewRequest("DELETE", "/healthz", nil))
	if resp.StatusCode != 405 || decodeErr(t, body).Error.Code != "method_not_allowed" {
		t.Errorf("DELETE /healthz: %d %s", resp.StatusCode, body)
	}
}

func TestPanicIsJSON500LoggedOnce(t *testing.T) {
	s, logs := newTestServer(t, Options{})
	s.App().Get("/boom", func(c *fiber.Ctx) error { panic("kaboom-marker") })
	resp, body := do(t, s, httptest.NewRequest("GET", "/boom", nil))
	if resp.StatusCode != 500 || decodeErr(t, body).Error.Code != "internal" {
		t.Fatalf("panic answered %d %s", resp.StatusCode, body)
	}
	out := logs.String()
	if n := strings.Count(out, "kaboom-marker"); n != 1 {
		t.Errorf("panic logged %d times, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, `"stack"`) || !strings.Contains(out, `"level":"ERROR"`) {
		t.Errorf("panic log line lacks stack or error level:\n%s", out)
	}
	// The server still answers afterwards.
	if resp, _ := do(t, s, httptest.NewRequest("GET", "/healthz", nil)); resp.StatusCode != 200 {
		t.Errorf("healthz after panic: %d", resp.StatusCode)
	}
}

func TestRequestID(t *testing.T) {
	s, logs := newTestServer(t, Options{})
	req := httptest.NewRequest("GET", "/healthz", nil)
	req.Header.Set("X-Request-Id", "lb-abc-123")
	resp, _ := do(t, s, req)
	if got := resp.Header.Get("X-Request-Id"); got != "lb-abc-123" {
		t.Errorf("echoed id %q", got)
	}
	if !strings.Contains(logs.String(), `"request_id":"lb-abc-123"`) {
		t.Errorf("log lacks the request id:\n%s", logs)
	}
	req = httptest.NewRequest("GET", "/healthz", nil)
	req.Header.Set("X-Request-Id", "bad id with spaces\n")
	resp, _ = do(t, s, req)
	if got := resp.Header.Get("X-Request-Id"); len(got) != 24 || strings.Contains(got, " ") {
		t.Errorf("unsafe id was not replaced: %q", got)
	}
	resp, _ = do(t, s, httptest.NewRequest("GET", "/healthz", nil))
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("no id generated")
	}
}

func TestReadiness(t *testing.T) {
	failing := false
	s, _ := newTestServer(t, Options{
		Checks: map[string]Check{
			"database": func(context.Context) error { return nil },
			"redis": func(context.Context) error {
				if failing {
					return errors.New("dial tcp 127.0.0.1:6379: connection refused")
				}
				return nil
			},
		},
		Channels: map[string]bool{"wechat": true, "wecom": false},
	})
	var r readiness
	resp, body := do(t, s, httptest.NewRequest("GET", "/readyz", nil))
	if err := json.Unmarshal(body, &r); err != nil || resp.StatusCode != 200 || r.Status != "ready" {
		t.Fatalf("ready: %d %s", resp.StatusCode, body)
	}
	if r.Channels["wechat"] != "on" || r.Channels["wecom"] != "off" || r.Checks["database"] != "ok" {
		t.Errorf("details: %+v", r)
	}
	failing = true
	resp, body = do(t, s, httptest.NewRequest("GET", "/readyz", nil))
	r = readiness{}
	if err := json.Unmarshal(body, &r); err != nil || resp.StatusCode != 503 || r.Status != "unavailable" {
		t.Fatalf("unready: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(r.Reason, "redis: dial tcp") || r.Checks["database"] != "ok" {
		t.Errorf("reason %q checks %v", r.Reason, r.Checks)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	RegisterRuntimeMetrics(reg)
	s, _ := newTestServer(t, Options{Registry: reg})
	for i := 0; i < 3; i++ {
		do(t, s, httptest.NewRequest("GET", "/healthz", nil))
	}
	do(t, s, httptest.NewRequest("GET", "/random/path/1", nil))
	do(t, s, httptest.NewRequest("GET", "/random/path/2", nil))
	_, body := do(t, s, httptest.NewRequest("GET", "/metrics", nil))
	text := string(body)
	for _, want := range []string{
		`tacklegate_http_requests_total{method="GET",route="/healthz",status="200"} 3`,
		`tacklegate_http_requests_total{method="GET",route="unmatched",status="404"} 2`,
		`tacklegate_http_request_duration_seconds_bucket{method="GET",route="/healthz",le="+Inf"} 3`,
		"go_goroutines", "process_resident_memory_bytes",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(text, "/random/path") {
		t.Error("raw paths leak into metric labels")
	}
}

func TestBodyLimitOverHTTP(t *testing.T) {
	// fasthttp enforces the limit while reading, before any handler; only a
	// real connection shows that path, app.Test does not.
	s, _ := newTestServer(t, Options{BodyLimit: 1024})
	s.App().Post("/echo", func(c *fiber.Ctx) error { return c.SendString("ok") })
	srv := startHTTP(t, s)
	resp, err := http.Post(srv+"/echo", "text/plain", strings.NewReader(strings.Repeat("x", 4096)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 || decodeErr(t, body).Error.Code != "payload_too_large" {
		t.Fatalf("oversized body: %d %s", resp.StatusCode, body)
	}
	resp, err = http.Post(srv+"/echo", "text/plain", strings.NewReader("small"))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("small body: %v %v", resp, err)
	}
	resp.Body.Close()
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
