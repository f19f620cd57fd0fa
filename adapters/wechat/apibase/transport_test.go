package apibase

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/silenceper/wechat/v2/util"

	"github.com/tacklegate/tacklegate/rental"
)

// These tests change the process transport's routes: none runs in parallel.

func register(t *testing.T, host, base string) {
	t.Helper()
	unregister, err := Register(host, base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unregister)
}

func TestRegisterRefusesASecondBase(t *testing.T) {
	register(t, WeChatHost, "http://127.0.0.1:1/wechat/")
	if got := Registered(WeChatHost); got != "http://127.0.0.1:1/wechat" {
		t.Fatalf("Registered = %q", got)
	}
	// The same base again is another reference, not a conflict.
	again, err := Register(WeChatHost, "http://127.0.0.1:1/wechat")
	if err != nil {
		t.Fatalf("same base: %v", err)
	}
	_, err = Register(WeChatHost, "http://127.0.0.1:2/wechat")
	if err == nil || !strings.Contains(err.Error(), "http://127.0.0.1:1/wechat") || !strings.Contains(err.Error(), "http://127.0.0.1:2/wechat") {
		t.Fatalf("conflicting base: err = %v, want both bases named", err)
	}
	_, err = Register(WeChatHost, DefaultWeChatBase)
	if err == nil {
		t.Fatal("production base accepted while a simulator is registered")
	}
	// WeCom is independent of WeChat.
	register(t, WeComHost, "http://127.0.0.1:2/wecom")

	again()
	again() // idempotent: must not drop the test's own reference
	if got := Registered(WeChatHost); got == "" {
		t.Fatal("an extra unregister dropped another holder's reference")
	}
}

func TestUnregisterFreesTheHost(t *testing.T) {
	unregister, err := Register(WeChatHost, "http://127.0.0.1:1/a")
	if err != nil {
		t.Fatal(err)
	}
	unregister()
	if got := Registered(WeChatHost); got != "" {
		t.Fatalf("still registered: %q", got)
	}
	register(t, WeChatHost, "http://127.0.0.1:1/b")
}

func TestParseBase(t *testing.T) {
	for _, bad := range []string{"", "ftp://x", "http://", "http://x/?a=1", "http://u:p@x", "/relative"} {
		if _, err := ParseBase(bad); err == nil {
			t.Errorf("ParseBase(%q) accepted", bad)
		}
	}
	if u, err := ParseBase(" https://api.weixin.qq.com/ "); err != nil || u.String() != "https://api.weixin.qq.com" {
		t.Errorf("ParseBase production = %v, %v", u, err)
	}
}

// seen records what reached a test server.
type seen struct {
	ch chan *http.Request
}

func newUpstream(t *testing.T, h http.HandlerFunc) (*httptest.Server, *seen) {
	t.Helper()
	s := &seen{ch: make(chan *http.Request, 16)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.ch <- r
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, s
}

func TestRewriteKeepsPathAndQuery(t *testing.T) {
	srv, seen := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"errcode":0,"errmsg":"ok"}`)
	})
	register(t, WeChatHost, srv.URL+"/wechat")
	Install()
	// What silenceper does: a hard-coded URL through util.DefaultHTTPClient.
	body, err := util.HTTPGet("https://api.weixin.qq.com/cgi-bin/media/get?access_token=T%2B1&media_id=m")
	if err != nil || !strings.Contains(string(body), `"ok"`) {
		t.Fatalf("HTTPGet: %v %s", err, body)
	}
	r := <-seen.ch
	if r.URL.Path != "/wechat/cgi-bin/media/get" || r.URL.RawQuery != "access_token=T%2B1&media_id=m" {
		t.Fatalf("upstream saw %s?%s", r.URL.Path, r.URL.RawQuery)
	}
	if r.Host != strings.TrimPrefix(srv.URL, "http://") {
		t.Errorf("Host header %q", r.Host)
	}
}

func TestBindCarriesTheCallersContext(t *testing.T) {
	release := make(chan struct{})
	srv, seen := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done(): // the client went away, as it should
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	register(t, WeComHost, srv.URL)
	Install()

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	call := Bind(ctx)
	defer call.Release()
	start := time.Now()
	// silenceper's message/send: util.HTTPPost builds its request with no context.
	_, err := util.HTTPPost(fmt.Sprintf("https://qyapi.weixin.qq.com/cgi-bin/message/send?access_token=%s", call.Token("TOKEN")), "{}")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the bound context's deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("returned after %v: the bound context did not reach the request", d)
	}
	r := <-seen.ch
	if r.URL.RawQuery != "access_token=TOKEN" {
		t.Fatalf("marker not stripped: %q", r.URL.RawQuery)
	}
	e := FromSDK("wecom.SendText", err).(*Error)
	if !e.Network || !e.Retryable() || strings.Contains(e.Error(), "TOKEN") {
		t.Fatalf("classified as %+v: %v", e, e)
	}
}

func TestReleasedMarkerIsStillStripped(t *testing.T) {
	srv, seen := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
	register(t, WeComHost, srv.URL)
	Install()
	call := Bind(context.Background())
	call.Release()
	if _, err := util.HTTPGet("https://qyapi.weixin.qq.com/x?" + "access_token=" + call.Token("T")); err != nil {
		t.Fatal(err)
	}
	if r := <-seen.ch; r.URL.RawQuery != "access_token=T" {
		t.Fatalf("query %q", r.URL.RawQuery)
	}
}

func TestStripParam(t *testing.T) {
	for in, want := range map[string]string{
		"a=1&tgcall=3&b=2": "a=1&b=2",
		"tgcall=3":         "",
		"access_token=x":   "access_token=x",
		"xtgcall=3&a=1":    "xtgcall=3&a=1",
	} {
		if got := stripParam(in, callParam); got != want {
			t.Errorf("stripParam(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedact(t *testing.T) {
	in := `Get "https://api.weixin.qq.com/sns/jscode2session?appid=wx1&secret=S3CR3T&js_code=JS&grant_type=authorization_code": EOF; ` +
		`uri=https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=ww&corpsecret=CS , statusCode=502; ` +
		`https://api.weixin.qq.com/cgi-bin/message/custom/send?access_token=AT&tgcall=9 errcode=40001 code=OAUTH`
	out := Redact(in)
	for _, secret := range []string{"S3CR3T", "=JS", "=CS", "=AT", "OAUTH"} {
		if strings.Contains(out, secret) {
			t.Errorf("%q survived: %s", secret, out)
		}
	}
	for _, keep := range []string{"appid=wx1", "errcode=40001", "statusCode=502", "corpid=ww"} {
		if !strings.Contains(out, keep) {
			t.Errorf("%q lost: %s", keep, out)
		}
	}
}

func TestFromSDK(t *testing.T) {
	netErr := &url.Error{Op: "Post", URL: "https://api.weixin.qq.com/x?access_token=AT", Err: errors.New("connection refused")}
	tests := []struct {
		name      string
		err       error
		code      int
		status    int
		retryable bool
	}{
		{"common error", util.NewCommonError("Send", 45015, "out of time"), 45015, 0, false},
		{"busy", util.NewCommonError("Send", -1, "system busy"), -1, 0, true},
		{"errcode only in the text", fmt.Errorf("template msg send error : errcode=%v , errmsg=%v", 43101, "user refuse"), 43101, 0, false},
		{"HTTP status in the text", fmt.Errorf("http post error : uri=%v , statusCode=%v", "https://x?access_token=AT", 502), 0, 502, true},
		{"HTTP 404", fmt.Errorf("http get error : uri=%v , statusCode=%v", "https://x", 404), 0, 404, false},
		{"network", netErr, 0, 0, true},
		{"decoding", errors.New("json Unmarshal Error, err=unexpected end"), 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e *Error
			if !errors.As(FromSDK("wechat.Op", tt.err), &e) {
				t.Fatal("not an *Error")
			}
			if e.Code != tt.code || e.HTTPStatus != tt.status || e.Retryable() != tt.retryable {
				t.Fatalf("got code %d status %d retryable %v: %v", e.Code, e.HTTPStatus, e.Retryable(), e)
			}
			if strings.Contains(e.Error(), "AT") {
				t.Fatalf("token in %q", e.Error())
			}
		})
	}
}

func TestErrorHelpersAndKinds(t *testing.T) {
	tests := []struct {
		e                              *Error
		kind                           rental.Kind
		retry, window, quota, tokenBad bool
	}{
		{&Error{Op: "wechat.X", Code: -1}, rental.KindUnavailable, true, false, false, false},
		{&Error{Op: "wechat.X", Code: 45009}, rental.KindUnavailable, true, false, false, false},
		{&Error{Op: "wecom.X", Code: 45011}, rental.KindUnavailable, true, false, false, false},
		{&Error{Op: "wechat.X", HTTPStatus: 503}, rental.KindUnavailable, true, false, false, false},
		{&Error{Op: "wechat.X", Network: true}, rental.KindUnavailable, true, false, false, false},
		{&Error{Op: "wechat.X", Code: 45015}, rental.KindConflict, false, true, false, false},
		{&Error{Op: "wechat.X", Code: 45047}, rental.KindConflict, false, false, true, false},
		{&Error{Op: "wechat.X", Code: 43101}, rental.KindForbidden, false, false, true, false},
		{&Error{Op: "wechat.X", Code: 40001}, rental.KindUpstream, false, false, false, true},
		{&Error{Op: "wecom.X", Code: 40014}, rental.KindUpstream, false, false, false, true},
		{&Error{Op: "wecom.X", Code: 42001}, rental.KindUpstream, false, false, false, true},
		{&Error{Op: "wecom.FetchToken", Code: 40001, TokenFetch: true}, rental.KindUpstream, false, false, false, false},
		{&Error{Op: "wechat.X", Code: 40007}, rental.KindNotFound, false, false, false, false},
		{&Error{Op: "wecom.X", Code: 81013}, rental.KindInvalid, false, false, false, false},
		{&Error{Op: "wechat.X", Code: 40029}, rental.KindInvalid, false, false, false, false},
		{&Error{Op: "wechat.X", Code: 48001}, rental.KindUpstream, false, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.e.Error(), func(t *testing.T) {
			e := tt.e
			if e.Retryable() != tt.retry || e.IsWindowClosed() != tt.window || e.IsQuotaExceeded() != tt.quota || e.IsTokenInvalid() != tt.tokenBad {
				t.Errorf("helpers: retry %v window %v quota %v token %v", e.Retryable(), e.IsWindowClosed(), e.IsQuotaExceeded(), e.IsTokenInvalid())
			}
			err := Wrap("op", e)
			if rental.ErrorKind(err) != tt.kind || rental.ErrorMessage(err) == "" {
				t.Errorf("kind %q message %q, want %q", rental.ErrorKind(err), rental.ErrorMessage(err), tt.kind)
			}
			var back *Error
			if !errors.As(err, &back) || back != e {
				t.Error("the *Error is not reachable through the rental.Error")
			}
		})
	}
	if Wrap("op", nil) != nil {
		t.Error("Wrap(nil) != nil")
	}
	re := rental.Errorf("op", rental.KindInvalid, "x")
	if Wrap("op", re) != error(re) {
		t.Error("a rental.Error was rewrapped")
	}
}
