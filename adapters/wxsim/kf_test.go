package wxsim

import (
	"context"
	"encoding/xml"
	"net/http"
	"testing"
	"time"

	"github.com/silenceper/wechat/v2/util"
)

// kfNotice is a decrypted kf_msg_or_event callback.
type kfNotice struct {
	Event    string `xml:"Event"`
	Token    string `xml:"Token"`
	OpenKfID string `xml:"OpenKfId"`
}

func lastKFNotice(t *testing.T, s *Simulator, g *gateway) kfNotice {
	t.Helper()
	reqs := g.requests()
	if len(reqs) == 0 {
		t.Fatal("no callback")
	}
	rc := reqs[len(reqs)-1]
	var env struct {
		Encrypt string `xml:"Encrypt"`
	}
	if err := xml.Unmarshal(rc.body, &env); err != nil {
		t.Fatal(err)
	}
	q := rc.query
	if q.Get("msg_signature") != util.Signature(s.cfg.WeComToken, q.Get("timestamp"), q.Get("nonce"), env.Encrypt) {
		t.Fatal("bad msg_signature")
	}
	_, plain, err := util.DecryptMsg(s.cfg.CorpID, env.Encrypt, s.cfg.WeComAESKey)
	if err != nil {
		t.Fatal(err)
	}
	var n kfNotice
	if err := xml.Unmarshal(plain, &n); err != nil || n.Event != "kf_msg_or_event" || n.Token == "" || n.OpenKfID != DemoOpenKfID {
		t.Fatalf("notice %s: %v", plain, err)
	}
	return n
}

type kfSync struct {
	code       int
	nextCursor string
	hasMore    int
	list       []map[string]any
}

func syncMsg(t *testing.T, s *Simulator, tok string, body map[string]any) kfSync {
	t.Helper()
	r := httpPost(t, withToken(s.WeComBase(), "/cgi-bin/kf/sync_msg", tok), body)
	out := kfSync{code: r.code(), nextCursor: r.str("next_cursor")}
	if hm, ok := r["has_more"].(float64); ok {
		out.hasMore = int(hm)
	}
	items, _ := r["msg_list"].([]any)
	for _, it := range items {
		out.list = append(out.list, it.(map[string]any))
	}
	return out
}

func kfText(to, content string) map[string]any {
	return map[string]any{"touser": to, "open_kfid": DemoOpenKfID, "msgtype": "text", "text": map[string]string{"content": content}}
}

func TestKFMessagesAndWindow(t *testing.T) {
	g := newGateway(t, answer(""))
	s := newSim(t, func(c *Config) { c.WeComCallbackURL = g.srv.URL })
	ctx := context.Background()
	tok := wecomToken(t, s)
	const ext = "wmCustomerA"

	if _, err := s.KFCustomerSends(ctx, DemoOpenKfID, ext, TextMessage("浮漂有货吗")); err != nil {
		t.Fatal(err)
	}
	notice := lastKFNotice(t, s, g)
	page := syncMsg(t, s, tok, map[string]any{"token": notice.Token, "open_kfid": DemoOpenKfID})
	if page.code != 0 || page.hasMore != 0 || len(page.list) != 1 {
		t.Fatalf("sync %+v", page)
	}
	m := page.list[0]
	if m["origin"] != float64(3) || m["external_userid"] != ext || m["msgtype"] != "text" ||
		m["text"].(map[string]any)["content"] != "浮漂有货吗" || m["msgid"] == "" {
		t.Fatalf("message %v", m)
	}
	if again := syncMsg(t, s, tok, map[string]any{"cursor": page.nextCursor}); len(again.list) != 0 || again.hasMore != 0 {
		t.Errorf("after the cursor: %+v", again)
	}

	send := func(content string) int {
		return httpPost(t, withToken(s.WeComBase(), "/cgi-bin/kf/send_msg", tok), kfText(ext, content)).code()
	}
	for i := range 5 {
		if c := send("有的"); c != 0 {
			t.Fatalf("send %d: %d", i+1, c)
		}
	}
	if c := send("第六条"); c != 95001 {
		t.Fatalf("sixth send: %d, want 95001", c)
	}
	if _, err := s.KFCustomerSends(ctx, DemoOpenKfID, ext, TextMessage("好的")); err != nil {
		t.Fatal(err)
	}
	if c := send("再回一条"); c != 0 {
		t.Fatalf("after the customer wrote again: %d", c)
	}
	wantCode(t, "unknown customer", httpPost(t, withToken(s.WeComBase(), "/cgi-bin/kf/send_msg", tok), kfText("wmNobody", "x")), 40096)
	body := kfText(ext, "x")
	body["open_kfid"] = "wkNope"
	wantCode(t, "unknown open_kfid", httpPost(t, withToken(s.WeComBase(), "/cgi-bin/kf/send_msg", tok), body), 95004)
	body = kfText(ext, "dup")
	body["msgid"] = "reply-1"
	wantCode(t, "client msgid", httpPost(t, withToken(s.WeComBase(), "/cgi-bin/kf/send_msg", tok), body), 0)
	wantCode(t, "duplicate msgid", httpPost(t, withToken(s.WeComBase(), "/cgi-bin/kf/send_msg", tok), body), errInvalidParamWeCom)

	s.Advance(48 * time.Hour)
	tok = wecomToken(t, s)
	if c := send("太晚了"); c != 95002 {
		t.Fatalf("after 48 h: %d, want 95002", c)
	}
	if info, _ := s.KFSession(DemoOpenKfID, ext); info.State != KFStateEnded || len(info.Delivered) != 7 {
		t.Errorf("session %+v", info)
	}
	wantCode(t, "expired sync token", httpPost(t, withToken(s.WeComBase(), "/cgi-bin/kf/sync_msg", tok), map[string]any{"token": notice.Token}), 95007)
}

func TestKFSyncPaging(t *testing.T) {
	s := newSim(t, nil)
	ctx := context.Background()
	tok := wecomToken(t, s)
	for _, txt := range []string{"一", "二", "三"} {
		if _, err := s.KFCustomerSends(ctx, DemoOpenKfID, "wmPager", TextMessage(txt)); err != nil {
			t.Fatal(err)
		}
	}
	s.KFInjectEmptyPage()
	first := syncMsg(t, s, tok, map[string]any{"limit": 2})
	if len(first.list) != 0 || first.hasMore != 1 {
		t.Fatalf("injected empty page: %+v", first)
	}
	second := syncMsg(t, s, tok, map[string]any{"limit": 2, "cursor": first.nextCursor})
	third := syncMsg(t, s, tok, map[string]any{"limit": 2, "cursor": second.nextCursor})
	if len(second.list) != 2 || second.hasMore != 1 || len(third.list) != 1 || third.hasMore != 0 ||
		third.list[0]["text"].(map[string]any)["content"] != "三" {
		t.Fatalf("pages %+v / %+v", second, third)
	}
	wantCode(t, "garbled cursor", httpPost(t, withToken(s.WeComBase(), "/cgi-bin/kf/sync_msg", tok), map[string]any{"cursor": "%%%"}), errInvalidParamWeCom)
	wantCode(t, "unknown token", httpPost(t, withToken(s.WeComBase(), "/cgi-bin/kf/sync_msg", tok), map[string]any{"token": "ENCnope"}), 95007)
}

func TestKFServiceStates(t *testing.T) {
	s := newSim(t, nil)
	ctx := context.Background()
	tok := wecomToken(t, s)
	const ext = "wmStates"
	post := func(path string, body map[string]any) wxResp {
		return httpPost(t, withToken(s.WeComBase(), path, tok), body)
	}
	trans := func(state int, servicer string) wxResp {
		return post("/cgi-bin/kf/service_state/trans", map[string]any{"open_kfid": DemoOpenKfID, "external_userid": ext, "service_state": state, "servicer_userid": servicer})
	}
	onEvent := func(code, content string) int {
		return post("/cgi-bin/kf/send_msg_on_event", map[string]any{"code": code, "msgtype": "text", "text": map[string]string{"content": content}}).code()
	}

	if _, err := s.KFCustomerSends(ctx, DemoOpenKfID, ext, TextMessage("人工")); err != nil {
		t.Fatal(err)
	}
	if st := post("/cgi-bin/kf/service_state/get", map[string]any{"open_kfid": DemoOpenKfID, "external_userid": ext}); st["service_state"] != float64(0) {
		t.Fatalf("state %v", st)
	}
	if _, err := s.KFSetServicerStatus(ctx, "ahua", false); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "servicer not receiving", trans(3, "ahua"), 95014)
	wantCode(t, "not a member", trans(3, "ghost"), 95014)

	taken := trans(3, "laowang")
	wantCode(t, "0→3", taken, 0)
	if taken.str("msg_code") == "" {
		t.Fatal("no msg_code on entering 3")
	}
	if st := post("/cgi-bin/kf/service_state/get", map[string]any{"open_kfid": DemoOpenKfID, "external_userid": ext}); st["servicer_userid"] != "laowang" {
		t.Errorf("state %v", st)
	}
	wantCode(t, "send_msg in state 3", post("/cgi-bin/kf/send_msg", kfText(ext, "x")), 95018)
	wantCode(t, "3→2", trans(2, ""), 95016)
	if c := onEvent(taken.str("msg_code"), "老王为您服务"); c != 0 {
		t.Fatalf("send_msg_on_event: %d", c)
	}
	if c := onEvent(taken.str("msg_code"), "again"); c != errInvalidCode {
		t.Errorf("reused code: %d", c)
	}

	if _, err := s.KFServicerSends(ctx, "laowang", DemoOpenKfID, ext, "鱼竿已备好"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.KFServicerSends(ctx, "xiaoli", DemoOpenKfID, ext, "not mine"); err == nil {
		t.Error("a servicer who does not own the session replied")
	}
	page := syncMsg(t, s, tok, map[string]any{})
	var servicerMsgs, statusEvents int
	for _, m := range page.list {
		if m["origin"] == float64(5) && m["servicer_userid"] == "laowang" {
			servicerMsgs++
		}
		if ev, _ := m["event"].(map[string]any); ev["event_type"] == "servicer_status_change" {
			statusEvents++
		}
	}
	if servicerMsgs != 1 || statusEvents != 1 {
		t.Errorf("sync list %v", page.list)
	}

	end := trans(4, "")
	wantCode(t, "3→4", end, 0)
	if c := onEvent(end.str("msg_code"), "感谢咨询"); c != 0 {
		t.Errorf("end code: %d", c)
	}
	wantCode(t, "4→2", trans(2, ""), 95016)

	// A new message from the customer starts a new session in state 0.
	if _, err := s.KFCustomerSends(ctx, DemoOpenKfID, ext, TextMessage("还在吗")); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "0→1", trans(1, ""), 0)
	wantCode(t, "send_msg in state 1", post("/cgi-bin/kf/send_msg", kfText(ext, "机器人回复")), 0)
	queued := trans(2, "")
	wantCode(t, "1→2", queued, 0)
	wantCode(t, "2→3", trans(3, "xiaoli"), 0)
	if c := onEvent(queued.str("msg_code"), "排队中"); c != errInvalidCode {
		t.Errorf("queue code after the session left the pool: %d", c)
	}
}

func TestKFWelcomeCode(t *testing.T) {
	s := newSim(t, nil)
	ctx := context.Background()
	tok := wecomToken(t, s)
	if _, err := s.KFEnterSession(ctx, DemoOpenKfID, "wmWelcome", "shop_qr", "from=poster"); err != nil {
		t.Fatal(err)
	}
	page := syncMsg(t, s, tok, map[string]any{})
	ev, _ := page.list[0]["event"].(map[string]any)
	code, _ := ev["welcome_code"].(string)
	if ev["event_type"] != "enter_session" || ev["scene_param"] != "from=poster" || code == "" || page.list[0]["origin"] != float64(4) {
		t.Fatalf("enter_session %v", page.list)
	}
	menu := map[string]any{"code": code, "msgtype": "msgmenu", "msgmenu": map[string]any{
		"head_content": "您好，请选择：",
		"list":         []any{map[string]any{"type": "click", "click": map[string]string{"id": "101", "content": "租竿"}}},
	}}
	s.Advance(20 * time.Second)
	wantCode(t, "welcome code after 20 s", httpPost(t, withToken(s.WeComBase(), "/cgi-bin/kf/send_msg_on_event", tok), menu), errInvalidCode)

	if _, err := s.KFEnterSession(ctx, DemoOpenKfID, "wmWelcome", "", ""); err != nil {
		t.Fatal(err)
	}
	page = syncMsg(t, s, tok, map[string]any{"cursor": page.nextCursor})
	ev, _ = page.list[0]["event"].(map[string]any)
	menu["code"] = ev["welcome_code"]
	wantCode(t, "welcome menu", httpPost(t, withToken(s.WeComBase(), "/cgi-bin/kf/send_msg_on_event", tok), menu), 0)

	// Once the customer has written, entering again brings no welcome code.
	if _, err := s.KFCustomerSends(ctx, DemoOpenKfID, "wmWelcome", TextMessage("hi")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.KFEnterSession(ctx, DemoOpenKfID, "wmWelcome", "", ""); err != nil {
		t.Fatal(err)
	}
	page = syncMsg(t, s, tok, map[string]any{"cursor": page.nextCursor})
	last, _ := page.list[len(page.list)-1]["event"].(map[string]any)
	if _, has := last["welcome_code"]; has {
		t.Errorf("welcome code within 48 h of a message: %v", last)
	}
	if info, _ := s.KFSession(DemoOpenKfID, "wmWelcome"); len(info.Delivered) != 1 || info.Delivered[0].MsgType != "msgmenu" {
		t.Errorf("delivered %+v", info.Delivered)
	}
	resp, err := http.Get(s.URL() + "/sim/api/kf/" + DemoOpenKfID + "/customers/wmWelcome")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("control API session: %v %v", err, resp)
	}
	resp.Body.Close()
}
