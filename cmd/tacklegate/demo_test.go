package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "github.com/glebarez/go-sqlite"

	"github.com/tacklegate/tacklegate/adapters/wechatpay"
	"github.com/tacklegate/tacklegate/adapters/wxsim"
	"github.com/tacklegate/tacklegate/adapters/wxsim/paysim"
)

// postJSON calls the simulator's control API the way its /sim page does.
func postJSON(t *testing.T, url string, in, out any) int {
	t.Helper()
	b, _ := json.Marshal(in)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("POST %s: %d %s", url, resp.StatusCode, body)
		}
	}
	return resp.StatusCode
}

func countInbound(t *testing.T, dbFile, channel string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+dbFile+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM inbound WHERE channel = ?", channel).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDemoThroughSimulator plays the customer, the staff member and the
// payer against the demo exactly as the /sim page does: every message goes
// through the simulator's signed, encrypted callbacks into the gateway.
func TestDemoThroughSimulator(t *testing.T) {
	dir := t.TempDir()
	dbFile := filepath.Join(dir, "demo.db")
	r := start(t, map[string]string{"TACKLEGATE_DATABASE_URL": "sqlite://" + dbFile}, "demo")
	m := regexp.MustCompile(`simulator\s+(http://\S+)/sim`).FindStringSubmatch(r.stdout.String())
	if m == nil {
		t.Fatalf("banner names no simulator:\n%s", r.stdout)
	}
	sim := m[1]

	// Readiness shows every channel on.
	_, _, body := get(t, r.base+"/readyz")
	var ready struct{ Channels map[string]string }
	json.Unmarshal(body, &ready) //nolint:errcheck
	for _, ch := range []string{"wechat", "wecom", "wechatpay"} {
		if ready.Channels[ch] != "on" {
			t.Errorf("channel %s is %q in demo", ch, ready.Channels[ch])
		}
	}

	// The consoles' URL checks pass, and a wrongly signed one is refused.
	for _, target := range []string{"wechat", "wecom"} {
		var v wxsim.VerifyResult
		postJSON(t, sim+"/sim/api/verify/"+target, nil, &v)
		if !v.OK || !v.BadSignatureRejected {
			t.Errorf("URL verification %s: %+v", target, v)
		}
	}

	// A customer writes text, a photo and a voice note; a staff member answers.
	var p wxsim.Push
	for _, msg := range []wxsim.Message{wxsim.TextMessage("鱼竿卡住了怎么办"), wxsim.ImageMessage(nil), wxsim.VoiceMessage(nil)} {
		p = wxsim.Push{}
		postJSON(t, sim+"/sim/api/customers/"+wxsim.DemoCustomerOpenID+"/messages", msg, &p)
		if p.Outcome != wxsim.OutcomeDelivered {
			t.Errorf("customer %s: outcome %q attempts %+v", msg.Type, p.Outcome, p.Attempts)
		}
	}
	postJSON(t, sim+"/sim/api/staff/laowang/messages", wxsim.TextMessage("/list"), &p)
	if p.Outcome != wxsim.OutcomeDelivered {
		t.Errorf("staff message: outcome %q attempts %+v", p.Outcome, p.Attempts)
	}
	if n := countInbound(t, dbFile, "wechat"); n != 3 {
		t.Errorf("stored %d customer messages, want 3", n)
	}
	if n := countInbound(t, dbFile, "wecom"); n != 1 {
		t.Errorf("stored %d staff messages, want 1", n)
	}

	// A customer pays: the notification reaches /callbacks/wechatpay, is
	// verified, stored once, and answered 204; a redelivery changes nothing.
	keyPEM, err := os.ReadFile(filepath.Join(dir, "sim", "wechatpay_merchant_key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := os.ReadFile(filepath.Join(dir, "sim", "wechatpay_platform_public_key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := wechatpay.LoadPrivateKey(keyPEM)
	pub, _ := wechatpay.LoadPublicKey(pubPEM)
	pay, err := wechatpay.New(wechatpay.Config{MchID: simMchID, SerialNo: simSerial, PrivateKey: key, APIv3Key: simAPIv3Key,
		PlatformPublicKey: pub, PlatformSerial: paysim.DefaultPlatformSerial, BaseURL: sim + "/pay"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	appID := wxsim.DefaultConfig().AppID
	prepayID, err := pay.PrepayJSAPI(ctx, wechatpay.PrepayRequest{AppID: appID, Description: "碳素鲫鱼竿 3天租金+押金", OutTradeNo: "TG20261125001",
		NotifyURL: r.base + "/callbacks/wechatpay", Total: 23000, PayerOpenID: wxsim.DemoCustomerOpenID})
	if err != nil {
		t.Fatal(err)
	}
	params, err := pay.RequestPayment(appID, prepayID)
	if err != nil {
		t.Fatal(err)
	}
	payReq := map[string]any{"out_trade_no": "TG20261125001", "timeStamp": params.TimeStamp, "nonceStr": params.NonceStr,
		"package": params.Package, "signType": params.SignType, "paySign": params.PaySign}
	if code := postJSON(t, sim+"/pay/control/pay", payReq, nil); code != 200 {
		t.Fatalf("pay: HTTP %d", code)
	}
	type attempt struct {
		EventID   string `json:"event_id"`
		Status    int    `json:"status"`
		Delivered bool   `json:"delivered"`
	}
	var attempts []attempt
	notifications := func() []attempt {
		var out struct{ Attempts []attempt }
		_, _, body := get(t, sim+"/pay/control/notifications")
		json.Unmarshal(body, &out) //nolint:errcheck
		return out.Attempts
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(attempts) == 0 || !attempts[0].Delivered {
		if time.Now().After(deadline) {
			t.Fatalf("payment notification not delivered: %+v", attempts)
		}
		time.Sleep(50 * time.Millisecond)
		attempts = notifications()
	}
	if attempts[0].Status != http.StatusNoContent {
		t.Errorf("gateway answered the notification %d, want 204", attempts[0].Status)
	}
	postJSON(t, sim+"/pay/control/notifications/redeliver", map[string]string{"id": attempts[0].EventID}, nil)
	deadline = time.Now().Add(10 * time.Second)
	for len(attempts) < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		attempts = notifications()
	}
	if len(attempts) < 2 || !attempts[1].Delivered {
		t.Errorf("redelivery: %+v", attempts)
	}
	if n := countInbound(t, dbFile, "wechatpay"); n != 1 {
		t.Errorf("stored %d payment notifications, want 1", n)
	}

	// A customer opens the mini-program (wx.login in the simulator), logs
	// in, proves a seeded member's phone with the phone button, and sees
	// that member's tier and points; the owner logs in with the printed
	// password.
	var login struct {
		JSCode string `json:"js_code"`
	}
	postJSON(t, sim+"/sim/api/customers/o-demo-test/login", nil, &login)
	var session struct {
		Tokens struct {
			AccessToken string `json:"access_token"`
		} `json:"tokens"`
	}
	if code := postJSON(t, r.base+"/api/v1/auth/wechat", map[string]string{"code": login.JSCode}, &session); code != 200 || session.Tokens.AccessToken == "" {
		t.Fatalf("customer login: HTTP %d", code)
	}
	var phone struct {
		Code string `json:"code"`
	}
	postJSON(t, sim+"/sim/api/customers/o-demo-test/phone-code", map[string]string{"phone": "13800138001"}, &phone)
	var linked struct {
		Action string `json:"action"`
		Member struct {
			Name   string `json:"name"`
			Tier   string `json:"tier"`
			Points int    `json:"points"`
		} `json:"member"`
	}
	req, _ := http.NewRequest("POST", r.base+"/api/v1/auth/phone", bytes.NewReader([]byte(`{"code":"`+phone.Code+`"}`)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+session.Tokens.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&linked) //nolint:errcheck
	resp.Body.Close()
	if linked.Action != "move_identity" || linked.Member.Name != "张伟" || linked.Member.Tier != "gold" || linked.Member.Points != 2380 {
		t.Errorf("proving a seeded member's phone: %d %+v", resp.StatusCode, linked)
	}
	pw := regexp.MustCompile(`owner login (\S+) / (\S+)`).FindStringSubmatch(r.stdout.String())
	if pw == nil {
		t.Fatalf("banner prints no owner login:\n%s", r.stdout)
	}
	var ownerLogin struct {
		Tokens struct {
			AccessToken string `json:"access_token"`
		} `json:"tokens"`
	}
	if code := postJSON(t, r.base+"/api/v1/auth/owner", map[string]string{"username": pw[1], "password": pw[2]}, &ownerLogin); code != 200 {
		t.Errorf("owner login with the printed password: HTTP %d", code)
	}
	// The video rooms are served: a signed-in user opens a room and gets a
	// room token for /ws.
	roomReq, _ := http.NewRequest("POST", r.base+"/api/v1/rooms", bytes.NewReader([]byte(`{}`)))
	roomReq.Header.Set("Content-Type", "application/json")
	roomReq.Header.Set("Authorization", "Bearer "+ownerLogin.Tokens.AccessToken)
	roomResp, err := http.DefaultClient.Do(roomReq)
	if err != nil {
		t.Fatal(err)
	}
	var room struct {
		WS string `json:"ws"`
	}
	json.NewDecoder(roomResp.Body).Decode(&room) //nolint:errcheck
	roomResp.Body.Close()
	if roomResp.StatusCode != 200 || !strings.HasPrefix(room.WS, "/ws?token=") {
		t.Errorf("opening a video room in the demo: %d %+v", roomResp.StatusCode, room)
	}

	// An SMS login code shows on the simulator's page (the customer's phone).
	postJSON(t, r.base+"/api/v1/auth/sms/send", map[string]string{"phone": "13800138002"}, nil)
	_, _, smsBody := get(t, sim+"/sim/api/sms")
	if !regexp.MustCompile(`8613800138002.*验证码是 \d{6}`).Match(smsBody) {
		t.Errorf("the SMS code is not on the simulator's page: %s", smsBody)
	}

	// Simulated time moves on two days (the /sim page's clock buttons); the
	// demo gateway judges callback timestamps by that clock, so a message
	// sent "later" still gets through.
	postJSON(t, sim+"/sim/api/clock/advance", map[string]string{"duration": "49h"}, nil)
	postJSON(t, sim+"/sim/api/customers/"+wxsim.DemoCustomerOpenID+"/messages", wxsim.TextMessage("两天后再问一次"), &p)
	if p.Outcome != wxsim.OutcomeDelivered {
		t.Errorf("after advancing the clock: outcome %q attempts %+v", p.Outcome, p.Attempts)
	}
	if n := countInbound(t, dbFile, "wechat"); n != 4 {
		t.Errorf("stored %d customer messages, want 4", n)
	}
}

// ownerToken logs the owner in with the password the demo banner printed.
func ownerToken(t *testing.T, r *running) string {
	t.Helper()
	pw := regexp.MustCompile(`owner login (\S+) / (\S+)`).FindStringSubmatch(r.stdout.String())
	if pw == nil {
		t.Fatalf("banner prints no owner login:\n%s", r.stdout)
	}
	var login struct {
		Tokens struct {
			AccessToken string `json:"access_token"`
		} `json:"tokens"`
	}
	if code := postJSON(t, r.base+"/api/v1/auth/owner", map[string]string{"username": pw[1], "password": pw[2]}, &login); code != 200 || login.Tokens.AccessToken == "" {
		t.Fatalf("owner login: HTTP %d", code)
	}
	return login.Tokens.AccessToken
}

type kbAnswer struct {
	Kind       string  `json:"kind"`
	Text       string  `json:"text"`
	Confidence float64 `json:"confidence"`
	Threshold  float64 `json:"threshold"`
	Handoff    string  `json:"handoff"`
	Sources    []struct {
		ID string `json:"id"`
	} `json:"sources"`
}

func askKB(t *testing.T, base, token, question string) kbAnswer {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"question": question})
	req, _ := http.NewRequest("POST", base+"/api/v1/owner/kb/ask", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out kbAnswer
	if resp.StatusCode != 200 || json.Unmarshal(body, &out) != nil {
		t.Fatalf("kb/ask %q: HTTP %d %s", question, resp.StatusCode, body)
	}
	return out
}

// TestDemoAssistantAnswers checks that the demo seeds the knowledge base,
// once, and that its assistant answers the owner's trial question
// confidently with no language model configured.
func TestDemoAssistantAnswers(t *testing.T) {
	dir := t.TempDir()
	dbFile := filepath.Join(dir, "demo.db")
	vars := map[string]string{"TACKLEGATE_DATABASE_URL": "sqlite://" + dbFile}
	var entries int
	for round := range 2 { // a restarted demo seeds nothing twice
		r := start(t, vars, "demo")
		ans := askKB(t, r.base, ownerToken(t, r), "押金怎么退?")
		if ans.Kind != "kb" || ans.Handoff != "" || ans.Confidence < ans.Threshold || len(ans.Sources) == 0 || ans.Sources[0].ID != "deposit-refund" ||
			!strings.Contains(ans.Text, "原路退回") {
			t.Errorf("round %d: 押金怎么退? answered %+v", round, ans)
		}
		if !strings.Contains(r.stderr.String(), "no language model is configured") {
			t.Errorf("round %d: start-up does not say the assistant runs without a model:\n%s", round, r.stderr)
		}
		if c := r.stop(); c != exitOK {
			t.Fatalf("round %d: exit %d\n%s", round, c, r.stderr)
		}
		db, err := sql.Open("sqlite", "file:"+dbFile+"?mode=ro&_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRow("SELECT count(*) FROM kb_entries").Scan(&n); err != nil {
			t.Fatal(err)
		}
		db.Close()
		if n == 0 || (round == 1 && n != entries) {
			t.Errorf("round %d: %d knowledge entries (first start seeded %d)", round, n, entries)
		}
		entries = n
	}
}
