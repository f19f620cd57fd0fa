package wxsim

import (
	"strings"
	"testing"
	"time"
)

func appText(touser string, agentid any, content string) map[string]any {
	return map[string]any{"touser": touser, "msgtype": "text", "agentid": agentid, "text": map[string]string{"content": content}}
}

func TestWeComSend(t *testing.T) {
	s := newSim(t, nil)
	u := withToken(s.WeComBase(), "/cgi-bin/message/send", wecomToken(t, s))
	cases := []struct {
		name        string
		body        map[string]any
		code        int
		invalidUser string
		inboxes     map[string]int // userid → messages received by this case
	}{
		{"agentid as number", appText("laowang", 1000002, "新消息"), 0, "", map[string]int{"laowang": 1}},
		{"agentid as string", appText("laowang", "1000002", "新消息"), 0, "", map[string]int{"laowang": 1}},
		{"wrong agentid", appText("laowang", 1000003, "x"), errInvalidAgentID, "", nil},
		{"agentid not a number", appText("laowang", "abc", "x"), errInvalidAgentID, "", nil},
		{"partial invalid, case-insensitive", appText("XiaoLi|Ghost|nobody", 1000002, "x"), 0, "ghost|nobody", map[string]int{"xiaoli": 1}},
		{"all invalid", appText("ghost|nobody", 1000002, "x"), errAllInvalidReceiver, "", nil},
		{"@all", appText("@all", 1000002, "全员"), 0, "", map[string]int{"laowang": 1, "xiaoli": 1, "ahua": 1}},
		{"party 1", map[string]any{"toparty": "1", "msgtype": "text", "agentid": 1000002, "text": map[string]string{"content": "x"}}, 0, "", map[string]int{"laowang": 1, "xiaoli": 1, "ahua": 1}},
		{"no recipients", appText("", 1000002, "x"), errInvalidParamWeCom, "", nil},
		{"empty text", appText("laowang", 1000002, ""), errEmptyContent, "", nil},
		{"markdown", map[string]any{"touser": "ahua", "msgtype": "markdown", "agentid": 1000002, "markdown": map[string]string{"content": "**新订单** 请处理"}}, 0, "", map[string]int{"ahua": 1}},
		{"markdown too long", map[string]any{"touser": "ahua", "msgtype": "markdown", "agentid": 1000002, "markdown": map[string]string{"content": strings.Repeat("鱼", 700)}}, errContentTooLong, "", nil},
		{"textcard", map[string]any{"touser": "ahua", "msgtype": "textcard", "agentid": 1000002, "textcard": map[string]string{"title": "客户来消息", "description": "<div class=\"gray\">2026-06-08</div>", "url": "https://shop.example/staff/c/1"}}, 0, "", map[string]int{"ahua": 1}},
		{"textcard without url", map[string]any{"touser": "ahua", "msgtype": "textcard", "agentid": 1000002, "textcard": map[string]string{"title": "t", "description": "d"}}, errInvalidParamWeCom, "", nil},
		{"image with bad media", map[string]any{"touser": "ahua", "msgtype": "image", "agentid": 1000002, "image": map[string]string{"media_id": "nope"}}, errInvalidMediaID, "", nil},
		{"unsimulated type", map[string]any{"touser": "ahua", "msgtype": "news", "agentid": 1000002}, errInvalidMsgType, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := map[string]int{}
			for _, id := range s.StaffUserIDs() {
				before[id] = len(s.StaffInbox(id))
			}
			r := httpPost(t, u, tc.body)
			wantCode(t, tc.name, r, tc.code)
			if tc.code != 0 {
				return
			}
			if r.str("invaliduser") != tc.invalidUser || r.str("msgid") == "" {
				t.Errorf("reply %v, want invaliduser %q", r, tc.invalidUser)
			}
			for _, id := range s.StaffUserIDs() {
				if got := len(s.StaffInbox(id)) - before[id]; got != tc.inboxes[id] {
					t.Errorf("%s received %d, want %d", id, got, tc.inboxes[id])
				}
			}
		})
	}

	long := strings.Repeat("a", 3000)
	httpPost(t, u, appText("xiaoli", 1000002, long))
	inbox := s.StaffInbox("xiaoli")
	if got := inbox[len(inbox)-1].Content; len(got) != 2048 {
		t.Errorf("long text kept %d bytes, want cut to 2048", len(got))
	}
	card := s.StaffInbox("ahua")[len(s.StaffInbox("ahua"))-1]
	if card.TextCard == nil || card.TextCard.BtnTxt != "详情" {
		t.Errorf("textcard delivery %+v", card)
	}
}

func TestWeComPerMemberLimit(t *testing.T) {
	s := newSim(t, nil)
	u := withToken(s.WeComBase(), "/cgi-bin/message/send", wecomToken(t, s))
	for i := range 32 {
		if r := httpPost(t, u, appText("laowang|xiaoli", 1000002, "第"+string(rune('A'+i))+"条")); r.code() != 0 {
			t.Fatalf("send %d: %v (excess must be dropped silently, not refused)", i+1, r)
		}
	}
	if got := len(s.StaffInbox("laowang")); got != 30 {
		t.Fatalf("laowang received %d, want 30", got)
	}
	sends := s.AppSends()
	if last := sends[len(sends)-1]; len(last.Dropped) != 2 || len(last.Delivered) != 0 {
		t.Errorf("last send: %+v", last)
	}
	s.Advance(time.Minute)
	httpPost(t, u, appText("laowang", 1000002, "a minute later"))
	if got := len(s.StaffInbox("laowang")); got != 31 {
		t.Errorf("after a minute laowang has %d, want 31", got)
	}
}

func TestWeComImageMessage(t *testing.T) {
	s := newSim(t, nil)
	tok := wecomToken(t, s)
	img := upload(t, withToken(s.WeComBase(), "/cgi-bin/media/upload", tok)+"&type=image", "reel.png", placeholder("image"))
	voice := upload(t, withToken(s.WeComBase(), "/cgi-bin/media/upload", tok)+"&type=voice", "v.amr", placeholder("voice"))
	u := withToken(s.WeComBase(), "/cgi-bin/message/send", tok)
	r := httpPost(t, u, map[string]any{"touser": "ahua", "msgtype": "image", "agentid": "1000002", "image": map[string]string{"media_id": img.str("media_id")}})
	wantCode(t, "image", r, 0)
	r = httpPost(t, u, map[string]any{"touser": "ahua", "msgtype": "voice", "agentid": "1000002", "voice": map[string]string{"media_id": img.str("media_id")}})
	wantCode(t, "image media as voice", r, errInvalidMediaID)
	r = httpPost(t, u, map[string]any{"touser": "ahua", "msgtype": "voice", "agentid": "1000002", "voice": map[string]string{"media_id": voice.str("media_id")}})
	wantCode(t, "voice", r, 0)
	inbox := s.StaffInbox("ahua")
	if len(inbox) != 2 || string(inbox[0].Media) != string(placeholder("image")) || inbox[1].MsgType != "voice" {
		t.Fatalf("inbox %+v", inbox)
	}
}

func TestWeComOAuth(t *testing.T) {
	s := newSim(t, nil)
	tok := wecomToken(t, s)
	get := func(path, code string) wxResp {
		return httpGet(t, withToken(s.WeComBase(), path, tok)+"&code="+code)
	}
	code, err := s.OAuthCode("XiaoLi")
	if err != nil {
		t.Fatal(err)
	}
	if r := get("/cgi-bin/auth/getuserinfo", code); r.code() != 0 || r.str("userid") != "xiaoli" {
		t.Fatalf("getuserinfo: %v", r)
	}
	wantCode(t, "reused code", get("/cgi-bin/auth/getuserinfo", code), errInvalidCode)
	wantCode(t, "unknown code", get("/cgi-bin/auth/getuserinfo", "nope"), errInvalidCode)

	late, _ := s.OAuthCode("ahua")
	s.Advance(5 * time.Minute)
	wantCode(t, "expired code", get("/cgi-bin/auth/getuserinfo", late), errInvalidCode)

	old, _ := s.OAuthCode("ahua")
	if r := get("/cgi-bin/user/getuserinfo", old); r.str("UserId") != "ahua" {
		t.Errorf("old getuserinfo: %v", r)
	}
	if _, err := s.OAuthCode("stranger"); err == nil {
		t.Error("OAuthCode for a non-member succeeded")
	}
}

func TestQuotas(t *testing.T) {
	s := newSim(t, func(c *Config) {
		c.Quotas = map[string]Quota{
			EndpointCustomSend: {PerMinute: 2, PerDay: 3},
			EndpointWeComSend:  {PerMinute: 1},
		}
	})
	tok := mpToken(t, s)
	send := func() int {
		return httpPost(t, withToken(s.WeChatBase(), "/cgi-bin/message/custom/send", tok), textMsg("nobody", "x")).code()
	}
	got := []int{send(), send(), send()}
	if got[0] != errInvalidOpenID || got[1] != errInvalidOpenID || got[2] != errMinuteQuota {
		t.Fatalf("minute quota: %v", got)
	}
	s.Advance(time.Minute)
	if c := send(); c != errInvalidOpenID {
		t.Fatalf("next minute: %d", c)
	}
	if c := send(); c != errDailyQuota {
		t.Fatalf("day quota: %d, want 45009", c)
	}
	s.Advance(24 * time.Hour)
	tok = mpToken(t, s)
	if c := send(); c != errInvalidOpenID {
		t.Fatalf("next day: %d", c)
	}

	w := withToken(s.WeComBase(), "/cgi-bin/message/send", wecomToken(t, s))
	wantCode(t, "first WeCom send", httpPost(t, w, appText("ahua", 1000002, "x")), 0)
	wantCode(t, "WeCom over quota", httpPost(t, w, appText("ahua", 1000002, "x")), errDailyQuota)
	// /cgi-bin/token keeps its documented default only when Quotas is nil.
	s.SetQuota(EndpointToken, Quota{PerDay: 1})
	wantCode(t, "token quota", httpGet(t, s.WeChatBase()+"/cgi-bin/token?grant_type=client_credential&appid="+s.cfg.AppID+"&secret="+s.cfg.AppSecret), 0)
	wantCode(t, "token quota", httpGet(t, s.WeChatBase()+"/cgi-bin/token?grant_type=client_credential&appid="+s.cfg.AppID+"&secret="+s.cfg.AppSecret), errDailyQuota)
}
