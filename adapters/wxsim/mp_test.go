package wxsim

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func code2session(t *testing.T, s *Simulator, code string) wxResp {
	t.Helper()
	return httpGet(t, fmt.Sprintf("%s/sns/jscode2session?appid=%s&secret=%s&js_code=%s&grant_type=authorization_code",
		s.WeChatBase(), s.cfg.AppID, s.cfg.AppSecret, code))
}

func TestCode2Session(t *testing.T) {
	s := newSim(t, nil)
	s.AddCustomer(Customer{OpenID: "oUnion", UnionID: "uUnion"})

	code := s.Login("oUnion")
	r := code2session(t, s, code)
	if r.str("openid") != "oUnion" || r.str("unionid") != "uUnion" || len(r.str("session_key")) != 24 {
		t.Fatalf("jscode2session: %v", r)
	}
	wantCode(t, "second use", code2session(t, s, code), errCodeUsed)
	wantCode(t, "unknown code", code2session(t, s, "nope"), errInvalidCode)

	plain := s.Login("oNew") // created on first login, no unionid
	if r := code2session(t, s, plain); r.str("openid") != "oNew" || r["unionid"] != nil {
		t.Fatalf("new customer: %v", r)
	}

	late := s.Login("oUnion")
	s.Advance(5 * time.Minute)
	wantCode(t, "expired code", code2session(t, s, late), errInvalidCode)

	fresh := s.Login("oUnion")
	wrong := httpGet(t, fmt.Sprintf("%s/sns/jscode2session?appid=%s&secret=bad&js_code=%s&grant_type=authorization_code",
		s.WeChatBase(), s.cfg.AppID, fresh))
	wantCode(t, "wrong secret", wrong, errInvalidAppSecret)
	if r := code2session(t, s, fresh); r.str("openid") != "oUnion" {
		t.Errorf("code rejected by a bad-secret call should still work: %v", r)
	}
}

func TestPhoneNumber(t *testing.T) {
	s := newSim(t, nil)
	tok := mpToken(t, s)
	u := withToken(s.WeChatBase(), "/wxa/business/getuserphonenumber", tok)

	code, err := s.PhoneCode(DemoCustomerOpenID, "13800001111")
	if err != nil {
		t.Fatal(err)
	}
	r := httpPost(t, u, map[string]string{"code": code})
	info, _ := r["phone_info"].(map[string]any)
	wm, _ := info["watermark"].(map[string]any)
	if r.code() != 0 || info["phoneNumber"] != "13800001111" || info["purePhoneNumber"] != "13800001111" ||
		info["countryCode"] != "86" || wm["appid"] != s.cfg.AppID || wm["timestamp"] != float64(testEpoch.Unix()) {
		t.Fatalf("phone reply: %v", r)
	}
	wantCode(t, "second use", httpPost(t, u, map[string]string{"code": code}), errInvalidCode)

	hk, _ := s.PhoneCode(DemoCustomerOpenID, "+852 51234567")
	r = httpPost(t, u, map[string]string{"code": hk})
	info, _ = r["phone_info"].(map[string]any)
	if info["phoneNumber"] != "+85251234567" || info["purePhoneNumber"] != "51234567" || info["countryCode"] != "852" {
		t.Errorf("foreign number: %v", info)
	}

	late, _ := s.PhoneCode(DemoCustomerOpenID, "13800001111")
	s.Advance(5*time.Minute + time.Second)
	wantCode(t, "expired", httpPost(t, u, map[string]string{"code": late}), errInvalidCode)
	if _, err := s.PhoneCode("oNobody", "1"); err == nil {
		t.Error("PhoneCode for an unknown customer succeeded")
	}
}

func TestReplyWindow(t *testing.T) {
	s := newSim(t, nil)
	tok := mpToken(t, s)
	send := func() int {
		return httpPost(t, withToken(s.WeChatBase(), "/cgi-bin/message/custom/send", tok), textMsg(DemoCustomerOpenID, "您好")).code()
	}
	typing := func() int {
		return httpPost(t, withToken(s.WeChatBase(), "/cgi-bin/message/custom/typing", tok),
			map[string]string{"touser": DemoCustomerOpenID, "command": "Typing"}).code()
	}
	customerWrites := func(m Message) {
		t.Helper()
		if _, err := s.CustomerSends(context.Background(), DemoCustomerOpenID, m); err != nil {
			t.Fatal(err)
		}
	}
	sendN := func(what string, n int, then int) {
		t.Helper()
		for i := range n {
			if got := send(); got != 0 {
				t.Fatalf("%s: send %d: errcode %d", what, i+1, got)
			}
		}
		if got := send(); got != then {
			t.Fatalf("%s: send %d: errcode %d, want %d", what, n+1, got, then)
		}
	}

	if got := send(); got != errReplyTimeLimit {
		t.Fatalf("before any customer message: %d, want 45015", got)
	}
	if got := typing(); got != errReplyTimeLimit {
		t.Fatalf("typing before any customer message: %d, want 45015", got)
	}

	customerWrites(TextMessage("鱼竿还有吗"))
	if got := typing(); got != 0 {
		t.Fatalf("typing in window: %d", got)
	}
	sendN("after a text", 5, errReplyCountLimit)

	s.Advance(time.Hour)
	customerWrites(ImageMessage(nil)) // resets to 5, not 5 + leftovers
	sendN("after an image", 5, errReplyCountLimit)

	customerWrites(TextMessage("再问一下"))
	_ = send()
	s.Advance(48*time.Hour - time.Second)
	tok = mpToken(t, s) // the old one expired long ago
	if got := send(); got != 0 {
		t.Fatalf("1 s before the 48 h deadline: %d", got)
	}
	s.Advance(time.Second)
	if got := send(); got != errReplyTimeLimit {
		t.Fatalf("at the 48 h deadline: %d, want 45015", got)
	}

	customerWrites(EnterSession("order-42"))
	sendN("after user_enter_tempsession", 2, errReplyCountLimit)
	customerWrites(EnterSession("order-42"))
	s.Advance(time.Minute)
	if got := send(); got != errReplyTimeLimit {
		t.Fatalf("enter window after 1 min: %d, want 45015", got)
	}

	// An enter event inside a 48-hour window does not shorten it.
	customerWrites(TextMessage("在吗"))
	customerWrites(EnterSession(""))
	s.Advance(time.Hour)
	if got := send(); got != 0 {
		t.Fatalf("48 h window after an enter event: %d", got)
	}

	wantCode(t, "unknown openid", httpPost(t, withToken(s.WeChatBase(), "/cgi-bin/message/custom/send", tok), textMsg("oNobody", "x")), errInvalidOpenID)
	if got := len(s.Delivered(DemoCustomerOpenID)); got != 5+5+2+2+1 {
		t.Errorf("delivered %d messages, want 15", got)
	}
}

func TestCustomSendContent(t *testing.T) {
	s := newSim(t, nil)
	tok := mpToken(t, s)
	img := upload(t, withToken(s.WeChatBase(), "/cgi-bin/media/upload", tok)+"&type=image", "rod.png", placeholder("image"))
	mediaID := img.str("media_id")
	if _, err := s.CustomerSends(context.Background(), DemoCustomerOpenID, TextMessage("hi")); err != nil {
		t.Fatal(err)
	}
	u := withToken(s.WeChatBase(), "/cgi-bin/message/custom/send", tok)
	cases := []struct {
		name string
		body map[string]any
		code int
	}{
		{"empty text", textMsg(DemoCustomerOpenID, ""), errEmptyContent},
		{"bad media", map[string]any{"touser": DemoCustomerOpenID, "msgtype": "image", "image": map[string]string{"media_id": "nope"}}, errInvalidMediaID},
		{"bad msgtype", map[string]any{"touser": DemoCustomerOpenID, "msgtype": "video"}, errInvalidMsgType},
		{"image", map[string]any{"touser": DemoCustomerOpenID, "msgtype": "image", "image": map[string]string{"media_id": mediaID}}, 0},
		{"link", map[string]any{"touser": DemoCustomerOpenID, "msgtype": "link", "link": map[string]string{"title": "租赁须知", "description": "d", "url": "https://example.com/x", "thumb_url": ""}}, 0},
		{"page", map[string]any{"touser": DemoCustomerOpenID, "msgtype": "miniprogrampage", "miniprogrampage": map[string]string{"title": "订单", "pagepath": "pages/order?id=1", "thumb_media_id": mediaID}}, 0},
		{"page without thumb", map[string]any{"touser": DemoCustomerOpenID, "msgtype": "miniprogrampage", "miniprogrampage": map[string]string{"title": "订单", "pagepath": "pages/order"}}, errInvalidMediaID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.name, httpPost(t, u, tc.body), tc.code) })
	}
	d := s.Delivered(DemoCustomerOpenID)
	if len(d) != 3 || d[0].MsgType != "image" || string(d[0].Media) != string(placeholder("image")) ||
		d[1].Link == nil || d[1].Link.Title != "租赁须知" || d[2].Page == nil || d[2].Page.PagePath != "pages/order?id=1" {
		t.Fatalf("deliveries: %+v", d)
	}
	resp, err := http.Get(d[0].MediaURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); string(b) != string(placeholder("image")) {
		t.Error("delivered image not retrievable from MediaURL")
	}
	if c, _ := s.Customer(DemoCustomerOpenID); c.WindowLeft != 2 {
		t.Errorf("window left %d, want 2 (failed sends must not count)", c.WindowLeft)
	}
}

func TestSubscribeSend(t *testing.T) {
	s := newSim(t, nil)
	tok := mpToken(t, s)
	u := withToken(s.WeChatBase(), "/cgi-bin/message/subscribe/send", tok)
	valid := map[string]any{
		"thing1":            map[string]any{"value": "碳素海竿 3.6米"},
		"time2":             map[string]any{"value": "2026-06-10 18:00"},
		"character_string3": map[string]any{"value": "TG20260608-0001"},
		"thing4":            map[string]any{"value": "请按时归还"},
	}
	msg := func(tpl string, data map[string]any) map[string]any {
		return map[string]any{"touser": DemoCustomerOpenID, "template_id": tpl, "page": "pages/order/detail?id=1", "data": data}
	}
	with := func(key string, v any) map[string]any {
		d := map[string]any{}
		for k, val := range valid {
			d[k] = val
		}
		if v == nil {
			delete(d, key)
		} else {
			d[key] = map[string]any{"value": v}
		}
		return d
	}

	wantCode(t, "unknown template", httpPost(t, u, msg("tplNope", valid)), errInvalidTemplateID)
	wantCode(t, "no consent", httpPost(t, u, msg(DemoTemplateReturnReminder, valid)), errUserRefused)
	if err := s.GrantSubscribe(DemoCustomerOpenID, DemoTemplateReturnReminder, 2); err != nil {
		t.Fatal(err)
	}

	invalid := []struct {
		name string
		data map[string]any
	}{
		{"thing over 20 chars", with("thing1", strings.Repeat("鱼", 21))},
		{"time not a time", with("time2", "明天傍晚")},
		{"character_string with CJK", with("character_string3", "订单1")},
		{"missing keyword", with("thing4", nil)},
		{"extra keyword", with("thing9", "x")},
		{"empty value", with("thing1", "")},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, tc.name, httpPost(t, u, msg(DemoTemplateReturnReminder, tc.data)), errTemplateData)
		})
	}
	first := httpPost(t, u, msg(DemoTemplateReturnReminder, valid))
	second := httpPost(t, u, msg(DemoTemplateReturnReminder, with("time2", "2026年6月10日 18:00")))
	if first.code() != 0 || second.code() != 0 || first["msgid"] == nil || first["msgid"] == second["msgid"] {
		t.Fatalf("sends with consent: %v / %v", first, second)
	}
	wantCode(t, "consent used up", httpPost(t, u, msg(DemoTemplateReturnReminder, valid)), errUserRefused)

	d := s.Delivered(DemoCustomerOpenID)
	if len(d) != 2 || d[0].Kind != "subscribe" || d[0].Data["thing1"] != "碳素海竿 3.6米" || d[0].PagePath != "pages/order/detail?id=1" {
		t.Fatalf("deliveries: %+v", d)
	}
}

func TestKeywordRules(t *testing.T) {
	cases := []struct {
		keyword, value string
		ok             bool
	}{
		{"thing1", strings.Repeat("a", 20), true},
		{"thing1", strings.Repeat("a", 21), false},
		{"number2", "12.5", true},
		{"number2", "12a", false},
		{"letter3", "abc", true},
		{"letter3", "ab1", false},
		{"symbol4", "%#", true},
		{"symbol4", "%a", false},
		{"amount5", "¥128.50", true},
		{"amount5", "300元", true},
		{"amount5", "三百元", false},
		{"amount5", "12345678901", false},
		{"phone_number6", "+86-13800000000", true},
		{"phone_number6", "call me", false},
		{"car_number7", "粤B12345", true},
		{"car_number7", "粤B1234567", false},
		{"name8", "张三丰", true},
		{"name8", strings.Repeat("张", 11), false},
		{"name8", "Zhang San", true},
		{"phrase9", "已归还", true},
		{"phrase9", "returned", false},
		{"date10", "2026-06-08", true},
		{"time11", "15:01", true},
		{"time11", "2026-06-08 10:00 ~ 2026-06-09 10:00", true},
		{"time11", "soon", false},
		{"character_string12", "TG-2026_06", true},
	}
	for _, tc := range cases {
		t.Run(tc.keyword+"="+tc.value, func(t *testing.T) {
			rule, known := keywordRule(tc.keyword)
			if !known {
				t.Fatalf("keyword %s unknown", tc.keyword)
			}
			if got := rule(tc.value); got != tc.ok {
				t.Errorf("rule(%q) = %v, want %v", tc.value, got, tc.ok)
			}
		})
	}
	if _, known := keywordRule("thing"); known {
		t.Error("keyword without index accepted")
	}
}
