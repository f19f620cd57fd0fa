package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/silenceper/wechat/v2/util"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/adapters/wechat/msgcrypt"
	"github.com/tacklegate/tacklegate/adapters/wechatpay"
	"github.com/tacklegate/tacklegate/rental"
)

// The sender side of these tests signs and encrypts with silenceper's util
// package, an implementation independent of adapters/wechat/msgcrypt.

const (
	mpAppID  = "wx1234567890abcdef"
	mpToken  = "mptoken123"
	mpAESKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	corpID   = "ww1436e0e65a779aee"
	agentID  = 1000002
	wcToken  = "wecomtoken9"
	wcAESKey = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
)

type cbEnv struct {
	srv *Server
	db  *store.DB
	now time.Time
	cb  *Callbacks
}

func newCallbackEnv(t *testing.T, inbound rental.InboundStore) *cbEnv {
	t.Helper()
	e := &cbEnv{now: time.Now()}
	if inbound == nil {
		db, err := store.Open(context.Background(), storetest.SQLiteURL(t), store.Options{CreateDir: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if _, err := db.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := db.UseDataKey(context.Background(), []byte("0123456789abcdef0123456789abcdef")); err != nil {
			t.Fatal(err)
		}
		e.db, inbound = db, db
	}
	mp, err := msgcrypt.New(mpToken, mpAESKey, mpAppID)
	if err != nil {
		t.Fatal(err)
	}
	wc, err := msgcrypt.New(wcToken, wcAESKey, corpID)
	if err != nil {
		t.Fatal(err)
	}
	e.cb = &Callbacks{WeChat: mp, WeCom: wc, WeComCorpID: corpID, WeComAgentID: agentID, MaxSkew: 5 * time.Minute,
		Inbound: inbound, Now: func() time.Time { return e.now }}
	e.srv, _ = newTestServer(t, Options{Callbacks: e.cb})
	return e
}

func (e *cbEnv) count(t *testing.T, ch rental.Channel) int64 {
	t.Helper()
	n, err := e.db.CountInbound(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// mpPush builds a safe-mode push as WeChat sends it.
type mpPush struct {
	plain            string
	receiver, aesKey string // defaults: the configured app
	ts               int64
	nonce            string
	breakSig         bool
	breakMsgSig      bool
	json             bool
	encryptType      string
	encryptOverride  string
}

func (p mpPush) request(t *testing.T, now time.Time) *http.Request {
	t.Helper()
	if p.receiver == "" {
		p.receiver = mpAppID
	}
	if p.aesKey == "" {
		p.aesKey = mpAESKey
	}
	if p.ts == 0 {
		p.ts = now.Unix()
	}
	if p.nonce == "" {
		p.nonce = util.RandomStr(10)
	}
	if p.encryptType == "" {
		p.encryptType = "aes"
	}
	enc, err := util.EncryptMsg([]byte(util.RandomStr(16)), []byte(p.plain), p.receiver, p.aesKey)
	if err != nil {
		t.Fatal(err)
	}
	encrypt := string(enc)
	if p.encryptOverride != "" {
		encrypt = p.encryptOverride
	}
	ts := strconv.FormatInt(p.ts, 10)
	sig := util.Signature(mpToken, ts, p.nonce)
	msgSig := util.Signature(mpToken, ts, p.nonce, encrypt)
	if p.breakSig {
		sig = strings.Repeat("0", 40)
	}
	if p.breakMsgSig {
		msgSig = strings.Repeat("1", 40)
	}
	body, ctype := fmt.Sprintf("<xml><ToUserName><![CDATA[gh_abc]]></ToUserName><Encrypt><![CDATA[%s]]></Encrypt></xml>", encrypt), "text/xml"
	if p.json {
		b, _ := json.Marshal(map[string]string{"ToUserName": "gh_abc", "Encrypt": encrypt})
		body, ctype = string(b), "application/json"
	}
	q := url.Values{"signature": {sig}, "timestamp": {ts}, "nonce": {p.nonce}, "encrypt_type": {p.encryptType}, "msg_signature": {msgSig}, "openid": {"o-ignored"}}
	req := httptest.NewRequest("POST", "/callbacks/wechat?"+q.Encode(), strings.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	return req
}

func textXML(msgID int64, content string) string {
	return fmt.Sprintf("<xml><ToUserName><![CDATA[gh_abc]]></ToUserName><FromUserName><![CDATA[o-customer-1]]></FromUserName><CreateTime>%d</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[%s]]></Content><MsgId>%d</MsgId></xml>", time.Now().Unix(), content, msgID)
}

func TestWeChatPushStoredOnceThenAcknowledged(t *testing.T) {
	e := newCallbackEnv(t, nil)
	plain := textXML(1001, "鱼竿卡住了")
	resp, body := do(t, e.srv, mpPush{plain: plain}.request(t, e.now))
	if resp.StatusCode != 200 || string(body) != "success" {
		t.Fatalf("valid push: %d %q", resp.StatusCode, body)
	}
	// WeChat redelivers with a new timestamp and nonce but the same MsgId.
	resp, body = do(t, e.srv, mpPush{plain: plain}.request(t, e.now))
	if resp.StatusCode != 200 || string(body) != "success" {
		t.Fatalf("redelivery: %d %q", resp.StatusCode, body)
	}
	// The very same signed request, byte for byte, replayed.
	req := mpPush{plain: plain}.request(t, e.now)
	raw, _ := io.ReadAll(req.Body)
	for i := 0; i < 2; i++ {
		again := httptest.NewRequest("POST", req.URL.String(), bytes.NewReader(raw))
		if resp, body := do(t, e.srv, again); resp.StatusCode != 200 || string(body) != "success" {
			t.Fatalf("replay %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if n := e.count(t, rental.ChannelWeChat); n != 1 {
		t.Fatalf("stored %d rows, want 1", n)
	}
	in, err := e.db.Inbound(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if in.Kind != "text" || in.From != "o-customer-1" || in.DedupeKey != "msg:1001" || !strings.Contains(string(in.Payload), "鱼竿卡住了") {
		t.Errorf("stored %+v", in)
	}
	// JSON data format, and an event (dedupe by sender+time+event).
	event := `{"ToUserName":"gh_abc","FromUserName":"o-customer-2","CreateTime":1764057603,"MsgType":"event","Event":"user_enter_tempsession","SessionFrom":"quickhelp"}`
	for i := 0; i < 2; i++ {
		if resp, body := do(t, e.srv, mpPush{plain: event, json: true}.request(t, e.now)); resp.StatusCode != 200 || string(body) != "success" {
			t.Fatalf("json event: %d %q", resp.StatusCode, body)
		}
	}
	if n := e.count(t, rental.ChannelWeChat); n != 2 {
		t.Errorf("after event twice: %d rows, want 2", n)
	}
}

func TestWeChatPushRefusals(t *testing.T) {
	e := newCallbackEnv(t, nil)
	good := textXML(2002, "hi")
	stale := e.now.Add(-10 * time.Minute).Unix()
	tests := []struct {
		name   string
		push   mpPush
		status int
		code   string
	}{
		{"bad signature", mpPush{plain: good, breakSig: true}, 401, "unauthorized"},
		{"bad msg_signature", mpPush{plain: good, breakMsgSig: true}, 401, "unauthorized"},
		{"stale timestamp", mpPush{plain: good, ts: stale}, 401, "unauthorized"},
		{"future timestamp", mpPush{plain: good, ts: e.now.Add(10 * time.Minute).Unix()}, 401, "unauthorized"},
		{"encrypted for another app", mpPush{plain: good, receiver: "wx0000000000000000"}, 401, "unauthorized"},
		{"encrypted with another key", mpPush{plain: good, aesKey: wcAESKey}, 400, "invalid"},
		{"plaintext mode", mpPush{plain: good, encryptType: "raw"}, 400, "invalid"},
		{"garbled ciphertext, valid signatures", mpPush{plain: good, encryptOverride: "bm90IGEgY2lwaGVydGV4dA=="}, 400, "invalid"},
		{"decrypts to garbage", mpPush{plain: "not xml at all"}, 400, "invalid"},
		{"decrypts to incomplete message", mpPush{plain: "<xml><MsgType>text</MsgType></xml>"}, 400, "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, e.srv, tt.push.request(t, e.now))
			if resp.StatusCode != tt.status || decodeErr(t, body).Error.Code != tt.code {
				t.Errorf("got %d %s, want %d %s", resp.StatusCode, body, tt.status, tt.code)
			}
		})
	}
	// Missing parameters and an unreadable envelope.
	resp, _ := do(t, e.srv, httptest.NewRequest("POST", "/callbacks/wechat", strings.NewReader("<xml/>")))
	if resp.StatusCode != 401 {
		t.Errorf("no parameters: %d", resp.StatusCode)
	}
	ts := strconv.FormatInt(e.now.Unix(), 10)
	q := url.Values{"signature": {util.Signature(mpToken, ts, "n")}, "timestamp": {ts}, "nonce": {"n"}, "encrypt_type": {"aes"}, "msg_signature": {"x"}}
	resp, _ = do(t, e.srv, httptest.NewRequest("POST", "/callbacks/wechat?"+q.Encode(), strings.NewReader("{{{")))
	if resp.StatusCode != 400 {
		t.Errorf("malformed envelope: %d", resp.StatusCode)
	}
	big := strings.Repeat("x", callbackBodyLimit+1)
	resp, _ = do(t, e.srv, httptest.NewRequest("POST", "/callbacks/wechat?"+q.Encode(), strings.NewReader(big)))
	if resp.StatusCode != 413 {
		t.Errorf("oversized: %d", resp.StatusCode)
	}
	if n := e.count(t, rental.ChannelWeChat); n != 0 {
		t.Errorf("refused pushes stored %d rows", n)
	}
	// With the skew check disabled, an old (but correctly signed) push is taken.
	e.cb.MaxSkew = 0
	if resp, _ := do(t, e.srv, mpPush{plain: good, ts: stale}.request(t, e.now)); resp.StatusCode != 200 {
		t.Errorf("skew 0 still refused an old timestamp: %d", resp.StatusCode)
	}
}

func TestWeChatURLVerification(t *testing.T) {
	e := newCallbackEnv(t, nil)
	ts := strconv.FormatInt(e.now.Unix(), 10)
	q := url.Values{"signature": {util.Signature(mpToken, ts, "nonce1")}, "timestamp": {ts}, "nonce": {"nonce1"}, "echostr": {"echo-1234567"}}
	resp, body := do(t, e.srv, httptest.NewRequest("GET", "/callbacks/wechat?"+q.Encode(), nil))
	if resp.StatusCode != 200 || string(body) != "echo-1234567" {
		t.Fatalf("verify: %d %q", resp.StatusCode, body)
	}
	q.Set("signature", util.Signature("wrongtoken", ts, "nonce1"))
	if resp, _ := do(t, e.srv, httptest.NewRequest("GET", "/callbacks/wechat?"+q.Encode(), nil)); resp.StatusCode != 401 {
		t.Errorf("wrong token: %d", resp.StatusCode)
	}
}

// TestWeComPublishedSampleOverHTTP replays WeCom's published sample requests
// against the handlers, with the clock set to the sample's time.
func TestWeComPublishedSampleOverHTTP(t *testing.T) {
	raw, err := os.ReadFile("../adapters/wechat/msgcrypt/testdata/wecom_sample.json")
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Token     string `json:"token"`
		Key       string `json:"encoding_aes_key"`
		Receiver  string `json:"receive_id"`
		VerifyURL struct {
			MsgSignature string `json:"msg_signature"`
			Timestamp    string `json:"timestamp"`
			Nonce        string `json:"nonce"`
			Echostr      string `json:"echostr"`
		} `json:"verify_url"`
		Message struct {
			MsgSignature string `json:"msg_signature"`
			Timestamp    string `json:"timestamp"`
			Nonce        string `json:"nonce"`
			Body         string `json:"body"`
		} `json:"message"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	e := newCallbackEnv(t, nil)
	wc, _ := msgcrypt.New(s.Token, s.Key, s.Receiver)
	e.cb.WeCom, e.cb.WeComCorpID, e.cb.WeComAgentID = wc, s.Receiver, 218

	sec, _ := strconv.ParseInt(s.VerifyURL.Timestamp, 10, 64)
	e.now = time.Unix(sec, 0).Add(30 * time.Second)
	q := url.Values{"msg_signature": {s.VerifyURL.MsgSignature}, "timestamp": {s.VerifyURL.Timestamp}, "nonce": {s.VerifyURL.Nonce}, "echostr": {s.VerifyURL.Echostr}}
	resp, body := do(t, e.srv, httptest.NewRequest("GET", "/callbacks/wecom?"+q.Encode(), nil))
	if resp.StatusCode != 200 || len(body) == 0 || strings.Trim(string(body), "0123456789") != "" {
		t.Fatalf("published URL check: %d %q", resp.StatusCode, body)
	}

	sec, _ = strconv.ParseInt(s.Message.Timestamp, 10, 64)
	e.now = time.Unix(sec, 0)
	q = url.Values{"msg_signature": {s.Message.MsgSignature}, "timestamp": {s.Message.Timestamp}, "nonce": {s.Message.Nonce}}
	resp, body = do(t, e.srv, httptest.NewRequest("POST", "/callbacks/wecom?"+q.Encode(), strings.NewReader(s.Message.Body)))
	if resp.StatusCode != 200 || len(body) != 0 {
		t.Fatalf("published message: %d %q", resp.StatusCode, body)
	}
	in, err := e.db.Inbound(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if in.Channel != rental.ChannelWeCom || in.From != "mycreate" || in.Kind != "text" || in.DedupeKey != "msg:4561255354251345929" {
		t.Errorf("stored %+v", in)
	}
	// The same sample an hour later is stale.
	e.now = e.now.Add(time.Hour)
	if resp, _ := do(t, e.srv, httptest.NewRequest("POST", "/callbacks/wecom?"+q.Encode(), strings.NewReader(s.Message.Body))); resp.StatusCode != 401 {
		t.Errorf("stale sample: %d", resp.StatusCode)
	}
	// Configured for another agent: the sample's AgentID 218 is foreign.
	e.now = time.Unix(sec, 0)
	e.cb.WeComAgentID = 1000002
	if resp, _ := do(t, e.srv, httptest.NewRequest("POST", "/callbacks/wecom?"+q.Encode(), strings.NewReader(s.Message.Body))); resp.StatusCode != 401 {
		t.Errorf("foreign agent: %d", resp.StatusCode)
	}
}

func wecomRequest(t *testing.T, now time.Time, plain string, corp string) *http.Request {
	t.Helper()
	enc, err := util.EncryptMsg([]byte(util.RandomStr(16)), []byte(plain), corp, wcAESKey)
	if err != nil {
		t.Fatal(err)
	}
	ts, nonce := strconv.FormatInt(now.Unix(), 10), util.RandomStr(8)
	body := fmt.Sprintf("<xml><ToUserName><![CDATA[%s]]></ToUserName><AgentID><![CDATA[%d]]></AgentID><Encrypt><![CDATA[%s]]></Encrypt></xml>", corp, agentID, enc)
	q := url.Values{"msg_signature": {util.Signature(wcToken, ts, nonce, string(enc))}, "timestamp": {ts}, "nonce": {nonce}}
	return httptest.NewRequest("POST", "/callbacks/wecom?"+q.Encode(), strings.NewReader(body))
}

func TestWeComPush(t *testing.T) {
	e := newCallbackEnv(t, nil)
	plain := fmt.Sprintf("<xml><ToUserName><![CDATA[%s]]></ToUserName><FromUserName><![CDATA[ZhangSan]]></FromUserName><CreateTime>%d</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[/list]]></Content><MsgId>77</MsgId><AgentID>%d</AgentID></xml>", corpID, e.now.Unix(), agentID)
	for i := 0; i < 3; i++ {
		if resp, body := do(t, e.srv, wecomRequest(t, e.now, plain, corpID)); resp.StatusCode != 200 || len(body) != 0 {
			t.Fatalf("delivery %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if n := e.count(t, rental.ChannelWeCom); n != 1 {
		t.Errorf("3 deliveries stored %d rows", n)
	}
	// Another corp's envelope: refused, nothing stored.
	other := strings.ReplaceAll(plain, corpID, "wwforeign000000000")
	if resp, _ := do(t, e.srv, wecomRequest(t, e.now, other, "wwforeign000000000")); resp.StatusCode != 401 {
		t.Errorf("foreign corp: %d", resp.StatusCode)
	}
	if n := e.count(t, rental.ChannelWeCom); n != 1 {
		t.Errorf("foreign corp stored: %d rows", n)
	}
}

// failingInbound is a store whose writes fail, as a database outage would.
type failingInbound struct{ calls int }

func (f *failingInbound) SaveInbound(context.Context, *rental.Inbound) (bool, error) {
	f.calls++
	return false, errors.New("database is locked")
}

func TestStoreFailureIsRetryable(t *testing.T) {
	fail := &failingInbound{}
	e := newCallbackEnv(t, fail)
	req := mpPush{plain: textXML(3003, "hi"), nonce: "samenonce"}.request(t, e.now)
	resp, body := do(t, e.srv, req)
	if resp.StatusCode != 503 || decodeErr(t, body).Error.Code != "unavailable" {
		t.Fatalf("store failure answered %d %s; WeChat must see a failure to retry", resp.StatusCode, body)
	}
	// The identical request again must reach the store again, not be
	// acknowledged from the replay cache.
	do(t, e.srv, mpPush{plain: textXML(3003, "hi"), nonce: "samenonce"}.request(t, e.now))
	if fail.calls != 2 {
		t.Errorf("store called %d times, want 2", fail.calls)
	}
}

func TestChannelsOff(t *testing.T) {
	s, _ := newTestServer(t, Options{Callbacks: &Callbacks{}})
	for _, path := range []string{"/callbacks/wechat", "/callbacks/wecom"} {
		for _, method := range []string{"GET", "POST"} {
			resp, body := do(t, s, httptest.NewRequest(method, path, nil))
			if resp.StatusCode != 404 || !strings.Contains(decodeErr(t, body).Error.Message, "not configured") {
				t.Errorf("%s %s: %d %s", method, path, resp.StatusCode, body)
			}
		}
	}
}

// fakePay stands in for adapters/wechatpay.Client: it returns what the real
// client returns for a forged, a garbled and a good notification.
type fakePay struct{ err error }

func (f fakePay) ParseNotification(h http.Header, body []byte) (*wechatpay.Notification, error) {
	if f.err != nil {
		return nil, f.err
	}
	if h.Get("Wechatpay-Serial") == "" {
		return nil, fmt.Errorf("no serial header: %w", wechatpay.ErrSignature)
	}
	return &wechatpay.Notification{ID: "EV-1", EventType: wechatpay.EventTransactionSuccess, CreateTime: time.Now(),
		Plaintext: body, Transaction: &wechatpay.Transaction{OutTradeNo: "TG1", MchID: "1900000109"}}, nil
}

func TestPayNotifyAnswers(t *testing.T) {
	tests := []struct {
		name   string
		pay    fakePay
		status int
		stored int64
	}{
		{"forged or stale", fakePay{err: fmt.Errorf("wechatpay: notification: %w", wechatpay.ErrSignature)}, 401, 0},
		{"signed but undecryptable", fakePay{err: fmt.Errorf("x: %w", wechatpay.ErrUndecryptable)}, 400, 0},
		{"verified", fakePay{}, 204, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newCallbackEnv(t, nil)
			e.cb.Pay = tt.pay
			for i := 0; i < 2; i++ { // the second delivery is a redelivery
				req := httptest.NewRequest("POST", "/callbacks/wechatpay", strings.NewReader(`{"id":"EV-1"}`))
				req.Header.Set("Wechatpay-Serial", "PUB_KEY_ID_1")
				if resp, body := do(t, e.srv, req); resp.StatusCode != tt.status {
					t.Fatalf("delivery %d: %d %s", i, resp.StatusCode, body)
				}
			}
			if n := e.count(t, rental.ChannelWeChatPay); n != tt.stored {
				t.Errorf("stored %d, want %d", n, tt.stored)
			}
		})
	}
}
