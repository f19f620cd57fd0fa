package wxsim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// ctlCall performs a control-API request and decodes the JSON reply.
func ctlCall(t *testing.T, method, u string, body any, wantStatus int) any {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, u, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s: HTTP %d, want %d: %s", method, u, resp.StatusCode, wantStatus, raw)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s %s: not JSON: %s", method, u, raw)
	}
	return v
}

func obj(v any) map[string]any { m, _ := v.(map[string]any); return m }

func TestControlAPI(t *testing.T) {
	g := newGateway(t, answer("success"))
	s := newSim(t, func(c *Config) { c.PushURL = g.srv.URL })
	api := s.URL() + "/sim/api"

	state := obj(ctlCall(t, "GET", api+"/state", nil, 200))
	if state["app_id"] != s.cfg.AppID || state["wechat_base"] != s.WeChatBase() {
		t.Fatalf("state %v", state)
	}

	cust := obj(ctlCall(t, "POST", api+"/customers", map[string]string{"nickname": "新钓友"}, 200))
	openID, _ := cust["openid"].(string)
	if len(openID) != 28 || openID[0] != 'o' {
		t.Fatalf("generated openid %q", openID)
	}
	code := obj(ctlCall(t, "POST", api+"/customers/"+openID+"/login", nil, 200))["js_code"].(string)
	if r := code2session(t, s, code); r.str("openid") != openID {
		t.Fatalf("login code: %v", r)
	}

	push := obj(ctlCall(t, "POST", api+"/customers/"+openID+"/messages", map[string]string{"type": "text", "content": "想租一套路亚竿"}, 200))
	if push["outcome"] != OutcomeDelivered {
		t.Fatalf("push %v", push)
	}
	img := obj(ctlCall(t, "POST", api+"/customers/"+openID+"/messages", map[string]any{"type": "image", "data": placeholder("image")}, 200))
	if img["media_id"] == "" || img["outcome"] != OutcomeDelivered {
		t.Fatalf("image push %v", img)
	}
	ctlCall(t, "POST", api+"/customers/"+openID+"/messages", map[string]string{"type": "video"}, 400)

	tok := mpToken(t, s)
	wantCode(t, "reply", httpPost(t, withToken(s.WeChatBase(), "/cgi-bin/message/custom/send", tok), textMsg(openID, "有的")), 0)
	deliveries, _ := ctlCall(t, "GET", api+"/customers/"+openID+"/deliveries", nil, 200).([]any)
	if len(deliveries) != 1 || obj(deliveries[0])["text"] != "有的" {
		t.Fatalf("deliveries %v", deliveries)
	}
	info := obj(ctlCall(t, "GET", api+"/customers/"+openID, nil, 200))
	if info["window_left"] != float64(4) {
		t.Errorf("customer %v", info)
	}
	ctlCall(t, "GET", api+"/customers/oNobody", nil, 404)

	grant := obj(ctlCall(t, "POST", api+"/customers/"+openID+"/subscribe-grants", map[string]any{"template_id": DemoTemplateReturnReminder, "n": 3}, 200))
	if obj(grant["consents"])[DemoTemplateReturnReminder] != float64(3) {
		t.Errorf("grant %v", grant)
	}
	ctlCall(t, "POST", api+"/customers/"+openID+"/subscribe-grants", map[string]any{"template_id": "nope"}, 400)
	phone := obj(ctlCall(t, "POST", api+"/customers/"+openID+"/phone-code", map[string]string{"phone": "13800000000"}, 200))
	if phone["code"] == "" {
		t.Error("no phone code")
	}

	ctlCall(t, "PUT", api+"/faults", map[string]any{"endpoint": EndpointCustomSend, "fault": map[string]any{"errcode": -1, "times": 1, "latency": "1ms"}}, 200)
	faults := obj(ctlCall(t, "GET", api+"/faults", nil, 200))
	if obj(faults[EndpointCustomSend])["latency"] != "1ms" {
		t.Errorf("faults %v", faults)
	}
	wantCode(t, "injected", httpPost(t, withToken(s.WeChatBase(), "/cgi-bin/message/custom/send", tok), textMsg(openID, "x")), errSystemBusy)
	ctlCall(t, "PUT", api+"/faults", map[string]any{"endpoint": EndpointCustomSend, "fault": map[string]any{"errcode": -1}}, 200)
	ctlCall(t, "DELETE", api+"/faults?endpoint="+EndpointCustomSend, nil, 200)
	wantCode(t, "cleared", httpPost(t, withToken(s.WeChatBase(), "/cgi-bin/message/custom/send", tok), textMsg(openID, "x")), 0)
	ctlCall(t, "PUT", api+"/faults", map[string]any{"endpoint": "x", "fault": map[string]any{"latency": "soon"}}, 400)

	before := s.Clock().Now()
	ctlCall(t, "POST", api+"/clock/advance", map[string]string{"duration": "3h"}, 200)
	if d := s.Clock().Now().Sub(before); d != 3*time.Hour {
		t.Errorf("advanced %v", d)
	}
	ctlCall(t, "POST", api+"/clock/advance", map[string]string{"duration": "-1h"}, 400)
	wantCode(t, "expired by advance", httpPost(t, withToken(s.WeChatBase(), "/cgi-bin/message/custom/send", tok), textMsg(openID, "x")), errTokenExpired)

	ctlCall(t, "POST", api+"/tokens/invalidate", nil, 200)
	staff, _ := ctlCall(t, "GET", api+"/staff", nil, 200).([]any)
	if len(staff) != 3 {
		t.Errorf("staff %v", staff)
	}
	oauth := obj(ctlCall(t, "POST", api+"/staff/laowang/oauth-code", nil, 200))
	if oauth["code"] == "" {
		t.Error("no oauth code")
	}
	ctlCall(t, "POST", api+"/staff/stranger/oauth-code", nil, 404)
	sp := obj(ctlCall(t, "POST", api+"/staff/laowang/messages", map[string]string{"type": "text", "content": "收到"}, 200))
	if sp["outcome"] != OutcomeNoURL {
		t.Errorf("staff push without URL: %v", sp)
	}
	inbox, _ := ctlCall(t, "GET", api+"/staff/laowang/inbox", nil, 200).([]any)
	if len(inbox) != 0 {
		t.Errorf("inbox %v", inbox)
	}
	ctlCall(t, "GET", api+"/staff/stranger/inbox", nil, 404)

	settings := obj(ctlCall(t, "PUT", api+"/settings", map[string]string{"push_mode": "plaintext", "push_format": "json", "wecom_callback_url": g.srv.URL}, 200))
	if settings["push_mode"] != "plaintext" || settings["wecom_callback_url"] != g.srv.URL {
		t.Errorf("settings %v", settings)
	}
	ctlCall(t, "PUT", api+"/settings", map[string]string{"push_mode": "loud"}, 400)
	ctlCall(t, "POST", api+"/customers/"+openID+"/messages", map[string]string{"type": "text", "content": "json now"}, 200)
	reqs := g.requests()
	if last := reqs[len(reqs)-1]; last.contentType != "application/json" || !strings.Contains(string(last.body), `"Content":"json now"`) {
		t.Errorf("plaintext JSON push: %s %s", last.contentType, last.body)
	}

	pushes, _ := ctlCall(t, "GET", api+"/pushes", nil, 200).([]any)
	if len(pushes) != 4 {
		t.Errorf("%d pushes", len(pushes))
	}
	verify := obj(ctlCall(t, "POST", api+"/verify/wechat", nil, 200))
	if verify["ok"] != false { // the fake gateway answers "success", not the echostr
		t.Errorf("verify %v", verify)
	}

	if p, _ := ctlCall(t, "GET", api+"/payments", nil, 200).([]any); len(p) != 0 {
		t.Errorf("payments before a source: %v", p)
	}
	s.SetPaymentsSource(func() any { return []map[string]any{{"out_trade_no": "T1", "amount": 20000}} })
	if p, _ := ctlCall(t, "GET", api+"/payments", nil, 200).([]any); len(p) != 1 {
		t.Errorf("payments %v", p)
	}

	resp, err := http.Get(s.URL() + "/sim")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(page), "支付记录") {
		t.Errorf("page: %s", resp.Header.Get("Content-Type"))
	}
}

func TestUnknownPathsAndMethods(t *testing.T) {
	s := newSim(t, nil)
	resp, err := http.Get(s.WeChatBase() + "/cgi-bin/not/a/thing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown API: HTTP %d", resp.StatusCode)
	}
	wantCode(t, "GET on a POST API", httpGet(t, withToken(s.WeChatBase(), "/cgi-bin/message/custom/send", mpToken(t, s))), errRequirePOST)
	wantCode(t, "bad JSON", httpPost(t, withToken(s.WeChatBase(), "/cgi-bin/message/custom/send", mpToken(t, s)), "not an object"), errDataFormat)

	resp, err = http.Get(s.PayBase() + "/v3/certificates")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("pay before MountPay: HTTP %d", resp.StatusCode)
	}
	s.MountPay(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "pay sees "+r.URL.Path)
	}))
	resp, err = http.Get(s.PayBase() + "/v3/certificates")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "pay sees /v3/certificates" {
		t.Errorf("mounted pay: %q", b)
	}
}
