package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/rental"
)

// chatEnv is a bridge environment with presence, the live channel, the
// in-app chat and the staff console mounted as serve mounts them.
type chatEnv struct {
	*bridgeEnv
	id       *idEnv
	presence *Presence
	live     *Live
}

func newChatEnv(t *testing.T, staff []string, hours *rental.OpeningHours, tune func(*BridgeOptions), extra ...func(e *bridgeEnv)) *chatEnv {
	t.Helper()
	ce := &chatEnv{}
	e := newBridgeEnvWith(t, storetest.Target{Name: "sqlite"}, staff, tune, func(e *bridgeEnv) {
		var err error
		if ce.presence, err = NewPresence(PresenceOptions{DB: e.db, Now: e.sim.Clock().Now, Hours: hours,
			Changed: func() { ce.live.PresenceChanged() }}); err != nil {
			t.Fatal(err)
		}
		ce.live = NewLive(LiveOptions{DB: e.db, Presence: ce.presence})
		e.opts.Presence, e.opts.AwayText, e.opts.Seen, e.opts.Changed = ce.presence.CanTake, ce.presence.AwayText, ce.presence.Activity, ce.live.Changed
		e.opts.CustomerInApp = ce.presence.CustomerInApp
		if e.bridge, err = NewBridge(e.opts); err != nil {
			t.Fatal(err)
		}
		e.srv.MountLive(ce.live)
		e.srv.MountChat(e.bridge, ce.presence)
		for _, x := range extra {
			x(e)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); ce.presence.Run(ctx) }()
		go func() { defer wg.Done(); ce.live.Run(ctx) }()
		t.Cleanup(func() { cancel(); wg.Wait() })
	})
	ce.bridgeEnv = e
	ce.id = &idEnv{srv: e.srv, db: e.db, sim: e.sim}
	return ce
}

func (e *chatEnv) customerToken(openID string) string {
	e.t.Helper()
	return e.id.customerLogin(e.t, openID)
}

func (e *chatEnv) staffToken(userID string) string {
	e.t.Helper()
	code, err := e.sim.OAuthCode(userID)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.id.tokenOf(e.t, "POST", "/api/v1/auth/wecom", "", map[string]string{"code": code})
}

func (e *chatEnv) call(method, path, tok string, in any) (int, map[string]any) {
	e.t.Helper()
	return e.id.call(e.t, method, path, tok, in)
}

// upload posts a multipart file with extra fields.
func (e *chatEnv) upload(path, tok, filename, contentType string, data []byte, fields map[string]string) (int, map[string]any) {
	e.t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for k, v := range fields {
		w.WriteField(k, v) //nolint:errcheck
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, filename))
	h.Set("Content-Type", contentType)
	fw, _ := w.CreatePart(h)
	fw.Write(data) //nolint:errcheck
	w.Close()
	req := httptest.NewRequest("POST", path, &b)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, body := do(e.t, e.srv, req)
	out := map[string]any{}
	json.Unmarshal(body, &out) //nolint:errcheck
	return resp.StatusCode, out
}

// liveClient is a /ws?access= socket that collects events.
type liveClient struct {
	t      *testing.T
	conn   *websocket.Conn
	mu     sync.Mutex
	events []map[string]any
	done   chan struct{}
}

func (e *chatEnv) connect(tok string) *liveClient {
	e.t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.base, "http")+"/ws?access="+tok, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		e.t.Fatalf("live channel: %v (HTTP %d)", err, status)
	}
	c := &liveClient{t: e.t, conn: conn, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var ev map[string]any
			if json.Unmarshal(data, &ev) == nil {
				c.mu.Lock()
				c.events = append(c.events, ev)
				c.mu.Unlock()
			}
		}
	}()
	e.t.Cleanup(func() { conn.Close(); <-c.done })
	return c
}

func (c *liveClient) send(v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	if err := c.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		c.t.Fatal(err)
	}
}

// wait returns the first event of type typ for which match holds.
func (c *liveClient) wait(typ string, match func(map[string]any) bool) map[string]any {
	c.t.Helper()
	var found map[string]any
	bridgeEventually(c.t, "a live "+typ+" event", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, ev := range c.events {
			if ev["type"] == typ && (match == nil || match(ev)) {
				found = ev
				return true
			}
		}
		return false
	})
	return found
}

// hasMessage matches a "message" event carrying a message with this text.
func hasMessage(text string) func(map[string]any) bool {
	return func(ev map[string]any) bool {
		msgs, _ := ev["messages"].([]any)
		for _, m := range msgs {
			if mm, _ := m.(map[string]any); mm != nil && strings.Contains(fmt.Sprint(mm["text"]), text) {
				return true
			}
		}
		return false
	}
}

func alwaysOpen() *rental.OpeningHours {
	h := rental.EveryDay(0, 24*60)
	return &h
}

// TestInAppChat: a customer writes in the app (text, photo, voice note);
// the messages join the same conversation as WeChat ones and reach staff
// in WeCom through the outbox; the staff reply arrives live over /ws and
// is not sent as a WeChat message; bad uploads are refused clearly; a
// retried send is stored once; after /close the customer rates in the app.
func TestInAppChat(t *testing.T) {
	e := newChatEnv(t, []string{"laowang:老王"}, alwaysOpen(), nil)
	const openID = "o-app"
	e.named(openID, "周敏")
	tok := e.customerToken(openID)
	ws := e.connect(tok)
	ws.wait("presence", nil)

	st, out := e.call("POST", "/api/v1/chat/messages", tok, map[string]string{"text": "船竿还有货吗", "client_id": "c-1"})
	if st != 201 || dig(out, "message", "from") != "me" {
		t.Fatalf("send: %d %v", st, out)
	}
	first := e.waitInbox("laowang", "船竿还有货吗")
	if !strings.Contains(first, "周敏") {
		t.Errorf("staff got %q", first)
	}
	// A retry with the same client id is the same message.
	if st, out := e.call("POST", "/api/v1/chat/messages", tok, map[string]string{"text": "船竿还有货吗", "client_id": "c-1"}); st != 201 || dig(out, "message", "seq") != float64(1) {
		t.Errorf("retried send: %d %v", st, out)
	}

	photo := bridgePNG(t, 42)
	if st, out := e.upload("/api/v1/chat/messages", tok, "p.png", "image/png", photo, nil); st != 201 || dig(out, "message", "kind") != "image" {
		t.Fatalf("photo: %d %v", st, out)
	}
	webm := append([]byte{0x1A, 0x45, 0xDF, 0xA3}, bytes.Repeat([]byte{1}, 500)...)
	if st, out := e.upload("/api/v1/chat/messages", tok, "v.webm", "audio/webm", webm, map[string]string{"duration_ms": "4200"}); st != 201 || dig(out, "message", "kind") != "voice" {
		t.Fatalf("voice: %d %v", st, out)
	}
	bridgeEventually(t, "the photo in WeCom", func() bool {
		for _, d := range e.sim.StaffInbox("laowang") {
			if d.MsgType == "image" && bytes.Equal(d.Media, photo) {
				return true
			}
		}
		return false
	})
	e.waitInbox("laowang", "发来一段语音（4秒），请在客服后台收听")

	// Refusals say what is wrong.
	for _, c := range []struct {
		name string
		do   func() (int, map[string]any)
	}{
		{"empty", func() (int, map[string]any) {
			return e.call("POST", "/api/v1/chat/messages", tok, map[string]string{"text": "  "})
		}},
		{"too long", func() (int, map[string]any) {
			return e.call("POST", "/api/v1/chat/messages", tok, map[string]string{"text": strings.Repeat("鱼", chatMaxText+1)})
		}},
		{"not a photo", func() (int, map[string]any) {
			return e.upload("/api/v1/chat/messages", tok, "x.exe", "application/octet-stream", []byte("MZ\x90\x00 not an image"), nil)
		}},
		{"voice without duration", func() (int, map[string]any) {
			return e.upload("/api/v1/chat/messages", tok, "v.webm", "audio/webm", webm, nil)
		}},
		{"voice too long", func() (int, map[string]any) {
			return e.upload("/api/v1/chat/messages", tok, "v.webm", "audio/webm", webm, map[string]string{"duration_ms": "95000"})
		}},
		{"bad client id", func() (int, map[string]any) {
			return e.call("POST", "/api/v1/chat/messages", tok, map[string]string{"text": "hi", "client_id": "a b"})
		}},
	} {
		st, out := c.do()
		if st != 400 || dig(out, "error", "code") != "invalid" || dig(out, "error", "message") == "" {
			t.Errorf("%s: %d %v", c.name, st, out)
		}
	}

	// Staff answer in WeCom: the customer sees it live, not in WeChat.
	e.staff("laowang", "有的，周六可以来取")
	ev := ws.wait("message", hasMessage("周六可以来取"))
	m := ev["messages"].([]any)[0].(map[string]any)
	if m["from"] != "staff" || m["staff_name"] != "老王" {
		t.Errorf("live reply: %v", m)
	}
	e.settled()
	if n := bridgeCount(e.customerTexts(openID), "周六可以来取"); n != 0 {
		t.Errorf("an in-app reply also went to WeChat %d times", n)
	}
	st, page := e.call("GET", "/api/v1/chat", tok, nil)
	msgs, _ := page["messages"].([]any)
	if st != 200 || len(msgs) != 4 || dig(page, "presence", "status") == nil {
		t.Fatalf("chat: %d %v", st, page)
	}
	img := msgs[1].(map[string]any)
	req := httptest.NewRequest("GET", img["media_url"].(string), nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, body := do(t, e.srv, req)
	if resp.StatusCode != 200 || !bytes.Equal(body, photo) {
		t.Errorf("photo download: %d, %d bytes", resp.StatusCode, len(body))
	}
	// Another customer cannot read it.
	other := e.customerToken("o-other")
	req = httptest.NewRequest("GET", img["media_url"].(string), nil)
	req.Header.Set("Authorization", "Bearer "+other)
	if resp, _ := do(t, e.srv, req); resp.StatusCode != 404 {
		t.Errorf("another customer's photo: %d", resp.StatusCode)
	}
	// Paging back.
	if st, older := e.call("GET", "/api/v1/chat?limit=2", tok, nil); st != 200 || older["next_before"] != float64(3) {
		t.Errorf("first page: %v", older["next_before"])
	} else if st, p2 := e.call("GET", "/api/v1/chat?limit=2&before=3", tok, nil); st != 200 || len(p2["messages"].([]any)) != 2 {
		t.Errorf("second page: %d %v", st, p2)
	}

	// Closing asks for a rating; the customer rates in the app.
	e.staff("laowang", "/close")
	ws.wait("conversation", func(ev map[string]any) bool { return dig(ev, "conversation", "state") == "resolved" })
	ws.wait("message", hasMessage("请为本次服务打分"))
	if st, out := e.call("POST", "/api/v1/chat/rating", tok, map[string]int{"score": 7}); st != 400 {
		t.Errorf("rating 7: %d %v", st, out)
	}
	if st, out := e.call("POST", "/api/v1/chat/rating", tok, map[string]int{"score": 4}); st != 200 || dig(out, "conversation", "rating") != float64(4) {
		t.Fatalf("rating: %d %v", st, out)
	}
	if st, _ := e.call("POST", "/api/v1/chat/rating", tok, map[string]int{"score": 5}); st != 409 {
		t.Errorf("second rating: %d", st)
	}
	e.waitInbox("laowang", "顾客评分：4 分")
	conv := e.liveOrLatest(e.memberOf(openID))
	c, all := e.transcript(conv)
	if c.Rating != 4 || c.CustomerChannel != rental.CustomerViaApp {
		t.Errorf("conversation: rating %d channel %q", c.Rating, c.CustomerChannel)
	}
	if brk := c.VerifyChain(all); brk != nil {
		t.Error(brk)
	}
	for _, m := range all {
		if m.Author == rental.StaffAuthor("laowang") && (m.ToCustomer.Status != rental.DeliverySent || m.ToCustomer.Recipient != chatAppRecipient) {
			t.Errorf("in-app reply delivery: %+v", m.ToCustomer)
		}
	}

	// Writing from WeChat again: replies go to WeChat again.
	e.customer(openID, "我在微信里问一下")
	e.waitInbox("laowang", "我在微信里问一下")
	e.staff("laowang", "好的收到")
	e.waitCustomer(openID, "好的收到")
}

func (e *chatEnv) liveOrLatest(member rental.MemberID) rental.ConversationID {
	e.t.Helper()
	c, err := e.db.LatestConversationOf(context.Background(), member)
	if err != nil || c == nil {
		e.t.Fatalf("latest conversation: %v", err)
	}
	return c.ID
}

// httpGet is a plain GET on the running gateway (pages, assets).
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var _ = time.Second

// TestInAppReplyFallsBackToWeChat: while the customer has the chat open a
// reply to their in-app message is read there; once they have left the
// app, the next reply goes to them through WeChat.
func TestInAppReplyFallsBackToWeChat(t *testing.T) {
	e := newChatEnv(t, []string{"laowang:老王"}, alwaysOpen(), nil)
	const openID = "o-leaves"
	e.named(openID, "郑爽")
	e.customer(openID, "微信里先问一下")
	e.waitInbox("laowang", "微信里先问一下")
	tok := e.customerToken(openID)
	if st, out := e.call("POST", "/api/v1/chat/messages", tok, map[string]string{"text": "小程序里再问"}); st != 201 {
		t.Fatalf("in-app: %d %v", st, out)
	}
	e.waitInbox("laowang", "小程序里再问")
	e.staff("laowang", "答复一")
	e.settled()
	if n := bridgeCount(e.customerTexts(openID), "答复一"); n != 0 {
		t.Error("a reply to a customer in the app went to WeChat")
	}
	e.sim.Advance(2 * time.Minute) // they left the app
	e.staff("laowang", "答复二")
	e.waitCustomer(openID, "答复二")
	e.settled()
	_, msgs := e.transcript(e.liveConversation(e.memberOf(openID)).ID)
	last := msgs[len(msgs)-1]
	if last.Text != "答复二" || last.ToCustomer.Status != rental.DeliverySent || last.ToCustomer.Recipient != openID {
		t.Errorf("fallback delivery: %+v", last.ToCustomer)
	}
}
