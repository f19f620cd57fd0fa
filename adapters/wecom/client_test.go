package wecom

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/wechat/apibase"
	"github.com/tacklegate/tacklegate/adapters/wxsim"
	"github.com/tacklegate/tacklegate/rental"
)

// The client points the process-wide transport at each test's simulator, so
// these tests run one after another (no t.Parallel).

var testEpoch = time.Date(2026, 6, 8, 10, 0, 0, 0, time.UTC)

// env is a simulator behind a server that counts requests per path.
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
	t.Cleanup(func() { e.logs.mustNotContain(t, e.cfg.CorpSecret) })
	return e
}

func (e *env) count(endpoint string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hits[endpoint]
}

func (e *env) client(t *testing.T) *Client {
	t.Helper()
	c, err := New(Config{
		CorpID:  e.cfg.CorpID,
		Secret:  e.cfg.CorpSecret,
		AgentID: e.cfg.AgentID,
		APIBase: e.srv.URL + wxsim.PrefixWeCom,
		Logger:  e.logs.logger(),
		Now:     e.sim.Clock().Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

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

func wantCode(t *testing.T, err error, code int, kind rental.Kind) *APIError {
	t.Helper()
	var e *APIError
	if !errors.As(err, &e) {
		t.Fatalf("error %v has no *APIError", err)
	}
	if e.Code != code || rental.ErrorKind(err) != kind {
		t.Fatalf("got errcode %d kind %q (%v), want %d %q", e.Code, rental.ErrorKind(err), err, code, kind)
	}
	return e
}

func pngBytes(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for x := range 8 {
		img.Set(x, 7-x, color.RGBA{R: 0xe0, G: 0x60, B: 0x20, A: 0xff})
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// amrBytes is an AMR-NB header and half a second of silent frames.
func amrBytes() []byte {
	b := []byte("#!AMR\n")
	for range 25 {
		b = append(b, 0x3C)
		b = append(b, make([]byte, 31)...)
	}
	return b
}

func TestSendEveryKindToStaff(t *testing.T) {
	e := newEnv(t)
	c := e.client(t)
	ctx := context.Background()
	to := []string{"laowang"}

	img, voice := pngBytes(t), amrBytes()
	imgID, err := c.UploadMedia(ctx, MediaImage, "鱼线.png", bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	voiceID, err := c.UploadMedia(ctx, MediaVoice, "reply.amr", bytes.NewReader(voice))
	if err != nil {
		t.Fatal(err)
	}
	card := TextCard{Title: "新客户咨询", Description: `<div class="highlight">钓友小陈：鱼线断了</div>`, URL: "https://shop.example/staff/c/42", ButtonText: "去回复"}

	var ids []string
	for _, send := range []func() (SendResult, error){
		func() (SendResult, error) { return c.SendText(ctx, to, "客户小陈：鱼线断了，能换吗？") },
		func() (SendResult, error) { return c.SendMarkdown(ctx, to, "**新订单** `TG001`\n> 押金 ¥200") },
		func() (SendResult, error) { return c.SendTextCard(ctx, to, card) },
		func() (SendResult, error) { return c.SendImage(ctx, to, imgID) },
		func() (SendResult, error) { return c.SendVoice(ctx, to, voiceID) },
	} {
		res, err := send()
		if err != nil {
			t.Fatal(err)
		}
		if res.MsgID == "" || len(res.InvalidUsers) != 0 {
			t.Fatalf("result %+v", res)
		}
		ids = append(ids, res.MsgID)
	}

	inbox := e.sim.StaffInbox("laowang")
	if len(inbox) != 5 {
		t.Fatalf("laowang received %d messages, want 5", len(inbox))
	}
	for i, want := range []string{"text", "markdown", "textcard", "image", "voice"} {
		if inbox[i].MsgType != want || inbox[i].MsgID != ids[i] {
			t.Errorf("message %d: %s %s, want %s %s", i+1, inbox[i].MsgType, inbox[i].MsgID, want, ids[i])
		}
	}
	if inbox[0].Content != "客户小陈：鱼线断了，能换吗？" || !strings.HasPrefix(inbox[1].Content, "**新订单**") {
		t.Errorf("contents: %q %q", inbox[0].Content, inbox[1].Content)
	}
	if tc := inbox[2].TextCard; tc == nil || tc.URL != card.URL || tc.BtnTxt != "去回复" || tc.Title != card.Title {
		t.Errorf("textcard %+v", tc)
	}
	if !bytes.Equal(inbox[3].Media, img) || !bytes.Equal(inbox[4].Media, voice) {
		t.Error("media in the inbox differ from what was uploaded")
	}
	if len(e.sim.StaffInbox("xiaoli")) != 0 {
		t.Error("a message reached someone it was not sent to")
	}
}

func TestInvalidRecipients(t *testing.T) {
	e := newEnv(t)
	c := e.client(t)
	ctx := context.Background()

	res, err := c.SendText(ctx, []string{"laowang", "Ghost", "xiaoli"}, "盘点提醒")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.InvalidUsers, []string{"ghost"}) {
		t.Fatalf("InvalidUsers = %v, want [ghost]", res.InvalidUsers)
	}
	if len(e.sim.StaffInbox("xiaoli")) != 1 {
		t.Error("the valid recipients did not get it")
	}

	_, err = c.SendText(ctx, []string{"ghost", "phantom"}, "没人收")
	wantCode(t, err, 81013, rental.KindInvalid)

	for _, bad := range [][]string{nil, {""}, {"a|b"}, {"@all"}} {
		if _, err := c.SendText(ctx, bad, "x"); rental.ErrorKind(err) != rental.KindInvalid {
			t.Errorf("recipients %q: %v", bad, err)
		}
	}
}

func TestMediaRoundTrip(t *testing.T) {
	e := newEnv(t)
	c := e.client(t)
	ctx := context.Background()
	voice := amrBytes()
	id, err := c.UploadMedia(ctx, MediaVoice, "v.amr", bytes.NewReader(voice))
	if err != nil {
		t.Fatal(err)
	}
	data, ctype, err := c.GetMedia(ctx, id)
	if err != nil || !bytes.Equal(data, voice) || ctype != "audio/amr" {
		t.Fatalf("GetMedia: %v, %d bytes of %q", err, len(data), ctype)
	}
	_, _, err = c.GetMedia(ctx, "nope")
	wantCode(t, err, 40007, rental.KindNotFound)

	_, err = c.UploadMedia(ctx, MediaVoice, "v.mp3", strings.NewReader("ID3 this is not AMR"))
	wantCode(t, err, 40005, rental.KindInvalid)
	for _, tt := range []struct{ kind, data string }{{"sticker", "123456"}, {MediaImage, "tiny"}} {
		if _, err := c.UploadMedia(ctx, tt.kind, "x", strings.NewReader(tt.data)); rental.ErrorKind(err) != rental.KindInvalid {
			t.Errorf("%s %q: %v", tt.kind, tt.data, err)
		}
	}
}

func TestUserIDFromOAuthCode(t *testing.T) {
	e := newEnv(t)
	c := e.client(t)
	ctx := context.Background()
	code, err := e.sim.OAuthCode("ahua")
	if err != nil {
		t.Fatal(err)
	}
	if id, err := c.UserIDFromOAuthCode(ctx, code); err != nil || id != "ahua" {
		t.Fatalf("UserIDFromOAuthCode = %q, %v", id, err)
	}
	_, err = c.UserIDFromOAuthCode(ctx, code)
	wantCode(t, err, 40029, rental.KindUnauthorized)
	if n := e.count(wxsim.EndpointWeComUserInfo); n != 2 {
		t.Errorf("auth/getuserinfo calls = %d, want 2", n)
	}
}

func TestTokenInvalidatedEarlyIsRefreshedOnce(t *testing.T) {
	e := newEnv(t)
	c := e.client(t)
	ctx := context.Background()
	if _, err := c.SendText(ctx, []string{"laowang"}, "一"); err != nil {
		t.Fatal(err)
	}
	e.sim.InvalidateTokens()
	if _, err := c.SendText(ctx, []string{"laowang"}, "二"); err != nil {
		t.Fatalf("after early invalidation: %v", err)
	}
	if n := e.count(wxsim.EndpointWeComToken); n != 2 {
		t.Fatalf("gettoken calls = %d, want exactly one more than the first", n)
	}
	if n := e.count(wxsim.EndpointWeComSend); n != 3 {
		t.Fatalf("message/send calls = %d, want 3 (ok, refused, retried)", n)
	}

	// The token expiring early mid-flight (42001) takes the same path.
	e.sim.Faults().Set(wxsim.EndpointWeComSend, wxsim.Fault{ExpireToken: true, Times: 1})
	if _, err := c.SendText(ctx, []string{"laowang"}, "三"); err != nil {
		t.Fatalf("after early expiry: %v", err)
	}
	if n := e.count(wxsim.EndpointWeComToken); n != 3 {
		t.Fatalf("gettoken calls = %d, want 3", n)
	}
	if got := len(e.sim.StaffInbox("laowang")); got != 3 {
		t.Fatalf("laowang received %d, want 3", got)
	}
}

func TestConcurrentCallsFetchOneToken(t *testing.T) {
	e := newEnv(t)
	c := e.client(t)
	ctx := context.Background()
	id, err := c.UploadMedia(ctx, MediaImage, "a.png", bytes.NewReader(pngBytes(t)))
	if err != nil {
		t.Fatal(err)
	}
	e.sim.Advance(2*time.Hour + time.Minute) // the token expires; media live three days
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, _, err := c.GetMedia(ctx, id); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := e.count(wxsim.EndpointWeComToken); n != 2 {
		t.Fatalf("gettoken calls = %d, want 2: one at the start, ONE for 50 concurrent calls", n)
	}
}

func TestFaults(t *testing.T) {
	e := newEnv(t)
	c := e.client(t)
	ctx := context.Background()
	e.sim.Faults().Set(wxsim.EndpointWeComSend, wxsim.Fault{Errcode: -1, Times: 1})
	_, err := c.SendMarkdown(ctx, []string{"laowang"}, "忙")
	if !wantCode(t, err, -1, rental.KindUnavailable).Retryable() {
		t.Fatal("-1 is not Retryable")
	}

	e.sim.Faults().Set(wxsim.EndpointWeComSend, wxsim.Fault{Latency: 2 * time.Second, Times: 1})
	tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.SendText(tctx, []string{"laowang"}, "慢")
	if d := time.Since(start); d > time.Second || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("after %v: %v", d, err)
	}
	var ae *APIError
	if !errors.As(err, &ae) || !ae.Retryable() {
		t.Fatalf("timeout not Retryable: %v", err)
	}

	// A wrong secret: 40001 at gettoken is a configuration error, not a
	// token to refresh.
	c.Close()
	bad, err := New(Config{CorpID: e.cfg.CorpID, Secret: "wrong", AgentID: e.cfg.AgentID, APIBase: e.srv.URL + wxsim.PrefixWeCom})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	_, err = bad.SendText(ctx, []string{"laowang"}, "x")
	if !errors.As(err, &ae) || ae.Code != 40001 || !ae.TokenFetch || ae.IsTokenInvalid() || rental.ErrorKind(err) != rental.KindUpstream {
		t.Fatalf("wrong secret: %+v (%v)", ae, err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Fatalf("the secret is in the error: %v", err)
	}
}

func TestBaseConflictWithWeChatIsIndependent(t *testing.T) {
	e := newEnv(t)
	c := e.client(t)
	if got := apibase.Registered(apibase.WeComHost); got != e.srv.URL+wxsim.PrefixWeCom {
		t.Fatalf("registered %q", got)
	}
	if _, err := New(Config{CorpID: "ww", Secret: "s", AgentID: 1}); err == nil || rental.ErrorKind(err) != rental.KindInvalid {
		t.Fatalf("production base next to a simulator: %v", err)
	}
	c.Close()
	prod, err := New(Config{CorpID: "ww", Secret: "s", AgentID: 1})
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	prod.Close()
}
