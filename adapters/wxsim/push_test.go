package wxsim

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/silenceper/wechat/v2"
	"github.com/silenceper/wechat/v2/cache"
	miniConfig "github.com/silenceper/wechat/v2/miniprogram/config"
	"github.com/silenceper/wechat/v2/util"
)

// received is one request the fake gateway got.
type received struct {
	query       url.Values
	contentType string
	body        []byte
}

// gateway is a stand-in for tacklegate's callback endpoints; respond decides
// the answer to the n-th request (0-based).
type gateway struct {
	mu      sync.Mutex
	reqs    []received
	respond func(n int, w http.ResponseWriter, r *http.Request, body []byte)
	srv     *httptest.Server
}

func newGateway(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request, body []byte)) *gateway {
	t.Helper()
	g := &gateway{respond: respond}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		g.mu.Lock()
		n := len(g.reqs)
		g.reqs = append(g.reqs, received{query: r.URL.Query(), contentType: r.Header.Get("Content-Type"), body: body})
		g.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		g.respond(n, w, r, body)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *gateway) requests() []received {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]received(nil), g.reqs...)
}

func answer(body string) func(int, http.ResponseWriter, *http.Request, []byte) {
	return func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) { _, _ = io.WriteString(w, body) }
}

// openMPPush verifies a mini-program push the way a gateway must (signature,
// msg_signature in safe mode, AES with the AppID as receiveid) using
// silenceper's util, and returns the plaintext.
func openMPPush(t *testing.T, s *Simulator, rc received) []byte {
	t.Helper()
	q := rc.query
	ts, nc := q.Get("timestamp"), q.Get("nonce")
	if q.Get("signature") != util.Signature(s.cfg.Token, ts, nc) {
		t.Fatalf("bad signature in %v", q)
	}
	if q.Get("encrypt_type") != "aes" {
		return rc.body
	}
	var env struct {
		ToUserName string `xml:"ToUserName" json:"ToUserName"`
		Encrypt    string `xml:"Encrypt" json:"Encrypt"`
	}
	var err error
	if strings.HasPrefix(rc.contentType, "application/json") {
		err = json.Unmarshal(rc.body, &env)
	} else {
		err = xml.Unmarshal(rc.body, &env)
	}
	if err != nil || env.Encrypt == "" || env.ToUserName != s.cfg.OriginalID {
		t.Fatalf("envelope %q: %v", rc.body, err)
	}
	if q.Get("msg_signature") != util.Signature(s.cfg.Token, ts, nc, env.Encrypt) {
		t.Fatalf("bad msg_signature")
	}
	_, plain, err := util.DecryptMsg(s.cfg.AppID, env.Encrypt, s.cfg.EncodingAESKey)
	if err != nil {
		t.Fatalf("decrypt: %v", err)
	}
	return plain
}

// mpMessage holds the fields of a pushed customer message, in both formats.
type mpMessage struct {
	ToUserName   string `xml:"ToUserName" json:"ToUserName"`
	FromUserName string `xml:"FromUserName" json:"FromUserName"`
	CreateTime   int64  `xml:"CreateTime" json:"CreateTime"`
	MsgType      string `xml:"MsgType" json:"MsgType"`
	Content      string `xml:"Content" json:"Content"`
	MsgID        int64  `xml:"MsgId" json:"MsgId"`
	PicURL       string `xml:"PicUrl" json:"PicUrl"`
	MediaID      string `xml:"MediaId" json:"MediaId"`
	Format       string `xml:"Format" json:"Format"`
	Title        string `xml:"Title" json:"Title"`
	AppID        string `xml:"AppId" json:"AppId"`
	PagePath     string `xml:"PagePath" json:"PagePath"`
	ThumbMediaID string `xml:"ThumbMediaId" json:"ThumbMediaId"`
	Event        string `xml:"Event" json:"Event"`
	SessionFrom  string `xml:"SessionFrom" json:"SessionFrom"`
	Encrypt      string `xml:"Encrypt" json:"Encrypt"`
}

func parseMP(t *testing.T, plain []byte, format string) mpMessage {
	t.Helper()
	var m mpMessage
	var err error
	if format == FormatJSON {
		err = json.Unmarshal(plain, &m)
	} else {
		err = xml.Unmarshal(plain, &m)
	}
	if err != nil {
		t.Fatalf("plaintext %q: %v", plain, err)
	}
	return m
}

func TestCustomerPushModes(t *testing.T) {
	cases := []struct {
		mode, format, contentType string
	}{
		{PushSafe, FormatXML, "text/xml"},
		{PushSafe, FormatJSON, "application/json"},
		{PushPlaintext, FormatXML, "text/xml"},
		{PushPlaintext, FormatJSON, "application/json"},
		{PushCompatible, FormatXML, "text/xml"},
	}
	for _, tc := range cases {
		t.Run(tc.mode+"/"+tc.format, func(t *testing.T) {
			var sdkPlain []byte
			var sdkErr error
			var s *Simulator
			g := newGateway(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) {
				// silenceper's own receiver must accept what the simulator sends.
				mp := wechat.NewWechat().GetMiniProgram(&miniConfig.Config{
					AppID: s.cfg.AppID, Token: s.cfg.Token, EncodingAESKey: s.cfg.EncodingAESKey, Cache: cache.NewMemory(),
				})
				_, sdkPlain, sdkErr = mp.GetMessageReceiver().GetMsg(r)
				_, _ = io.WriteString(w, "success")
			})
			s = newSim(t, func(c *Config) {
				c.PushURL = g.srv.URL + "/callbacks/wechat?x=1"
				c.PushMode = tc.mode
				c.PushFormat = tc.format
			})

			text := "鱼线 ]]> 断了，能换吗？"
			p, err := s.CustomerSends(context.Background(), DemoCustomerOpenID, TextMessage(text))
			if err != nil {
				t.Fatal(err)
			}
			if !p.Delivered() || len(p.Attempts) != 1 || p.MsgID == 0 {
				t.Fatalf("push %+v", p)
			}
			reqs := g.requests()
			if len(reqs) != 1 || reqs[0].contentType != tc.contentType || reqs[0].query.Get("x") != "1" {
				t.Fatalf("requests %+v", reqs)
			}
			if enc := reqs[0].query.Get("encrypt_type") == "aes"; enc != (tc.mode != PushPlaintext) {
				t.Errorf("encrypt_type=aes present: %v in mode %s", enc, tc.mode)
			}
			plain := openMPPush(t, s, reqs[0])
			if sdkErr != nil || !bytes.Equal(sdkPlain, plain) {
				t.Errorf("silenceper GetMsg: %v, %q", sdkErr, sdkPlain)
			}
			m := parseMP(t, plain, tc.format)
			want := mpMessage{ToUserName: s.cfg.OriginalID, FromUserName: DemoCustomerOpenID, CreateTime: testEpoch.Unix(),
				MsgType: "text", Content: text, MsgID: p.MsgID}
			if tc.mode == PushCompatible {
				// The body carries the plaintext fields next to Encrypt.
				raw := parseMP(t, reqs[0].body, tc.format)
				if raw.Encrypt == "" || raw.Content != text || raw.MsgID != p.MsgID {
					t.Errorf("compatible body %+v", raw)
				}
			}
			if m != want {
				t.Errorf("message\n got %+v\nwant %+v", m, want)
			}
		})
	}
}

func TestCustomerMediaAndEventPushes(t *testing.T) {
	g := newGateway(t, answer(""))
	s := newSim(t, func(c *Config) { c.PushURL = g.srv.URL })
	tok := mpToken(t, s)
	ctx := context.Background()

	photo := placeholder("image")
	if _, err := s.CustomerSends(ctx, DemoCustomerOpenID, Message{Type: MsgImage, Data: photo, Filename: "broken-reel.png"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CustomerSends(ctx, DemoCustomerOpenID, VoiceMessage(nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CustomerSends(ctx, DemoCustomerOpenID, PageMessage("路亚竿 租赁", "pages/item/detail?id=7")); err != nil {
		t.Fatal(err)
	}
	ev, err := s.CustomerSends(ctx, DemoCustomerOpenID, EnterSession("order-88"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CustomerSends(ctx, DemoCustomerOpenID, Message{Type: MsgImage, Data: []byte("not a picture at all")}); err == nil {
		t.Error("non-image bytes accepted as an image")
	}
	reqs := g.requests()
	if len(reqs) != 4 {
		t.Fatalf("%d pushes", len(reqs))
	}
	img := parseMP(t, openMPPush(t, s, reqs[0]), FormatXML)
	resp, err := http.Get(withToken(s.WeChatBase(), "/cgi-bin/media/get", tok) + "&media_id=" + img.MediaID)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if img.MsgType != "image" || !bytes.Equal(got, photo) || !strings.Contains(resp.Header.Get("Content-Disposition"), "broken-reel.png") {
		t.Fatalf("image push %+v; media/get returned %d bytes", img, len(got))
	}
	resp, err = http.Get(img.PicURL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, photo) {
		t.Error("PicUrl does not serve the picture")
	}

	voice := parseMP(t, openMPPush(t, s, reqs[1]), FormatXML)
	if voice.MsgType != "voice" || voice.Format != "amr" || voice.MediaID == "" || voice.MsgID == 0 {
		t.Errorf("voice push %+v", voice)
	}
	page := parseMP(t, openMPPush(t, s, reqs[2]), FormatXML)
	if page.Title != "路亚竿 租赁" || page.AppID != s.cfg.AppID || page.PagePath != "pages/item/detail?id=7" || page.ThumbMediaID == "" {
		t.Errorf("page push %+v", page)
	}
	enter := parseMP(t, openMPPush(t, s, reqs[3]), FormatXML)
	if enter.MsgType != "event" || enter.Event != EventUserEnterTempSession || enter.SessionFrom != "order-88" || enter.MsgID != 0 || ev.MsgID != 0 {
		t.Errorf("event push %+v", enter)
	}

	ids := map[int64]bool{}
	for _, p := range s.Pushes() {
		if p.MsgID != 0 && ids[p.MsgID] {
			t.Errorf("MsgId %d reused", p.MsgID)
		}
		ids[p.MsgID] = true
	}
}

func TestPushRetriesKeepMsgID(t *testing.T) {
	g := newGateway(t, func(n int, w http.ResponseWriter, _ *http.Request, _ []byte) {
		switch n {
		case 0:
			http.Error(w, "boom", http.StatusInternalServerError)
		case 1:
			_, _ = io.WriteString(w, "ok") // garbage: not "success"
		default:
			_, _ = io.WriteString(w, "success")
		}
	})
	s := newSim(t, func(c *Config) { c.PushURL = g.srv.URL })
	p, err := s.CustomerSends(context.Background(), DemoCustomerOpenID, TextMessage("还在吗"))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Delivered() || len(p.Attempts) != 3 || p.Attempts[0].Status != 500 || p.Attempts[1].OK || !p.Attempts[2].OK {
		t.Fatalf("push %+v", p)
	}
	reqs := g.requests()
	nonces := map[string]bool{}
	for i, rc := range reqs {
		m := parseMP(t, openMPPush(t, s, rc), FormatXML)
		if m.MsgID != p.MsgID {
			t.Errorf("attempt %d carries MsgId %d, want %d", i+1, m.MsgID, p.MsgID)
		}
		nonces[rc.query.Get("nonce")] = true
	}
	if len(nonces) != 3 {
		t.Errorf("attempts reuse nonces: %v", nonces)
	}
}

func TestPushOutcomes(t *testing.T) {
	cases := []struct {
		name     string
		respond  func(int, http.ResponseWriter, *http.Request, []byte)
		outcome  string
		attempts int
	}{
		{"success", answer("success"), OutcomeDelivered, 1},
		{"success with newline", answer("success\n"), OutcomeDelivered, 1},
		{"empty body", answer(""), OutcomeDelivered, 1},
		{"always 500", func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) { w.WriteHeader(500) }, OutcomeFailed, 3},
		{"garbage", answer("<xml>hello</xml>"), OutcomeFailed, 3},
		{"401 then nothing", func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) { w.WriteHeader(401) }, OutcomeFailed, 3},
		{"too slow", func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) {
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
			}
			_, _ = io.WriteString(w, "success")
		}, OutcomeFailed, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t, tc.respond)
			s := newSim(t, func(c *Config) { c.PushURL = g.srv.URL; c.Push.Timeout = 100 * time.Millisecond })
			p, err := s.CustomerSends(context.Background(), DemoCustomerOpenID, TextMessage("hi"))
			if err != nil {
				t.Fatal(err)
			}
			if p.Outcome != tc.outcome || len(p.Attempts) != tc.attempts {
				t.Errorf("outcome %s after %d attempts, want %s after %d: %+v", p.Outcome, len(p.Attempts), tc.outcome, tc.attempts, p)
			}
		})
	}
}

func TestPushDropAndNoURL(t *testing.T) {
	g := newGateway(t, answer("success"))
	s := newSim(t, func(c *Config) { c.PushURL = g.srv.URL })
	s.Faults().Set(PushWeChat, Fault{DropPush: true, Times: 1})
	ctx := context.Background()
	p1, _ := s.CustomerSends(ctx, DemoCustomerOpenID, TextMessage("lost"))
	p2, _ := s.CustomerSends(ctx, DemoCustomerOpenID, TextMessage("arrives"))
	if p1.Outcome != OutcomeDropped || len(p1.Attempts) != 0 || !p2.Delivered() || len(g.requests()) != 1 {
		t.Fatalf("drop: %+v / %+v, %d requests", p1, p2, len(g.requests()))
	}
	// A dropped push still opens the reply window: the customer did write.
	if c, _ := s.Customer(DemoCustomerOpenID); c.WindowLeft != 5 {
		t.Errorf("window left %d", c.WindowLeft)
	}
	s.SetPushURL("")
	p3, _ := s.CustomerSends(ctx, DemoCustomerOpenID, TextMessage("nowhere"))
	if p3.Outcome != OutcomeNoURL || len(s.Pushes()) != 3 {
		t.Errorf("no URL: %+v", p3)
	}
}

// wecomMessage is a decrypted WeCom callback.
type wecomMessage struct {
	ToUserName   string `xml:"ToUserName"`
	FromUserName string `xml:"FromUserName"`
	CreateTime   int64  `xml:"CreateTime"`
	MsgType      string `xml:"MsgType"`
	Content      string `xml:"Content"`
	MsgID        int64  `xml:"MsgId"`
	MediaID      string `xml:"MediaId"`
	PicURL       string `xml:"PicUrl"`
	Format       string `xml:"Format"`
	Event        string `xml:"Event"`
	AgentID      int    `xml:"AgentID"`
}

func openWeComPush(t *testing.T, s *Simulator, rc received) wecomMessage {
	t.Helper()
	var env struct {
		ToUserName string `xml:"ToUserName"`
		AgentID    string `xml:"AgentID"`
		Encrypt    string `xml:"Encrypt"`
	}
	if err := xml.Unmarshal(rc.body, &env); err != nil {
		t.Fatalf("envelope: %v", err)
	}
	if env.ToUserName != s.cfg.CorpID || env.AgentID != strconv.Itoa(s.cfg.AgentID) {
		t.Fatalf("envelope %+v", env)
	}
	q := rc.query
	if q.Get("msg_signature") != util.Signature(s.cfg.WeComToken, q.Get("timestamp"), q.Get("nonce"), env.Encrypt) {
		t.Fatal("bad msg_signature")
	}
	_, plain, err := util.DecryptMsg(s.cfg.CorpID, env.Encrypt, s.cfg.WeComAESKey)
	if err != nil {
		t.Fatalf("decrypt: %v", err)
	}
	var m wecomMessage
	if err := xml.Unmarshal(plain, &m); err != nil {
		t.Fatalf("plaintext: %v", err)
	}
	return m
}

func TestStaffPushes(t *testing.T) {
	g := newGateway(t, answer(""))
	s := newSim(t, func(c *Config) { c.WeComCallbackURL = g.srv.URL + "/callbacks/wecom" })
	ctx := context.Background()
	for _, m := range []Message{TextMessage("好的，马上回复"), ImageMessage(nil), VoiceMessage(nil), EnterAgent()} {
		p, err := s.StaffSends(ctx, "XiaoLi", m)
		if err != nil || !p.Delivered() {
			t.Fatalf("%s: %v %+v", m.Type, err, p)
		}
	}
	if _, err := s.StaffSends(ctx, "stranger", TextMessage("x")); err == nil {
		t.Error("non-member could send")
	}
	reqs := g.requests()
	text, img, voice, enter := openWeComPush(t, s, reqs[0]), openWeComPush(t, s, reqs[1]), openWeComPush(t, s, reqs[2]), openWeComPush(t, s, reqs[3])
	if text.ToUserName != s.cfg.CorpID || text.FromUserName != "xiaoli" || text.Content != "好的，马上回复" || text.MsgID == 0 || text.AgentID != 1000002 {
		t.Errorf("text %+v", text)
	}
	resp, err := http.Get(withToken(s.WeComBase(), "/cgi-bin/media/get", wecomToken(t, s)) + "&media_id=" + img.MediaID)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if img.MsgType != "image" || !bytes.Equal(body, placeholder("image")) {
		t.Errorf("image %+v, media/get %d bytes", img, len(body))
	}
	if voice.MsgType != "voice" || voice.Format != "amr" || voice.MediaID == "" {
		t.Errorf("voice %+v", voice)
	}
	if enter.MsgType != "event" || enter.Event != EventEnterAgent || enter.MsgID != 0 {
		t.Errorf("enter_agent %+v", enter)
	}
}

func TestStaffPassiveReply(t *testing.T) {
	var s *Simulator
	g := newGateway(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) {
		inner := "<xml><ToUserName><![CDATA[xiaoli]]></ToUserName><FromUserName><![CDATA[" + s.cfg.CorpID +
			"]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[已收到]]></Content></xml>"
		enc, err := util.EncryptMsg([]byte("0123456789abcdef"), []byte(inner), s.cfg.CorpID, s.cfg.WeComAESKey)
		if err != nil {
			t.Error(err)
		}
		sig := util.Signature(s.cfg.WeComToken, "1700000000", "42", string(enc))
		_, _ = io.WriteString(w, "<xml><Encrypt><![CDATA["+string(enc)+"]]></Encrypt><MsgSignature><![CDATA["+sig+
			"]]></MsgSignature><TimeStamp>1700000000</TimeStamp><Nonce><![CDATA[42]]></Nonce></xml>")
	})
	s = newSim(t, func(c *Config) { c.WeComCallbackURL = g.srv.URL })
	p, err := s.StaffSends(context.Background(), "xiaoli", TextMessage("ping"))
	if err != nil || !p.Delivered() || !strings.Contains(p.Reply, "已收到") {
		t.Fatalf("%v %+v", err, p)
	}
	if inbox := s.StaffInbox("xiaoli"); len(inbox) != 1 || inbox[0].Content != "已收到" {
		t.Errorf("inbox %+v", inbox)
	}
}

func TestVerifyURL(t *testing.T) {
	var s *Simulator
	strict := newGateway(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) {
		q := r.URL.Query()
		if strings.HasSuffix(r.URL.Path, "/wecom") {
			if q.Get("msg_signature") != util.Signature(s.cfg.WeComToken, q.Get("timestamp"), q.Get("nonce"), q.Get("echostr")) {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			_, plain, err := util.DecryptMsg(s.cfg.CorpID, q.Get("echostr"), s.cfg.WeComAESKey)
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			_, _ = w.Write(plain)
			return
		}
		if q.Get("signature") != util.Signature(s.cfg.Token, q.Get("timestamp"), q.Get("nonce")) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, q.Get("echostr"))
	})
	sloppy := newGateway(t, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) {
		_, _ = io.WriteString(w, r.URL.Query().Get("echostr")) // never checks, never decrypts
	})
	s = newSim(t, func(c *Config) {
		c.PushURL = strict.srv.URL + "/wechat"
		c.WeComCallbackURL = strict.srv.URL + "/wecom"
	})
	ctx := context.Background()
	if r := s.VerifyWeChatURL(ctx); !r.OK || !r.BadSignatureRejected {
		t.Errorf("strict mini-program: %+v", r)
	}
	if r := s.VerifyWeComURL(ctx); !r.OK || !r.BadSignatureRejected {
		t.Errorf("strict WeCom: %+v", r)
	}
	s.SetPushURL(sloppy.srv.URL)
	s.SetWeComCallbackURL(sloppy.srv.URL)
	if r := s.VerifyWeChatURL(ctx); !r.OK || r.BadSignatureRejected {
		t.Errorf("sloppy mini-program: %+v", r)
	}
	if r := s.VerifyWeComURL(ctx); r.OK {
		t.Errorf("WeCom gateway echoing ciphertext passed: %+v", r)
	}
}
