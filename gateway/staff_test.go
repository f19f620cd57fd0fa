package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/fasthttp/websocket"
	"strings"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/wxsim"
	"github.com/tacklegate/tacklegate/rental"
)

// hoursExcluding returns support hours of one hour that do not include
// now (Shanghai), and how customers are told when they start.
func hoursExcluding(now time.Time) (*rental.OpeningHours, string) {
	local := now.In(rental.Shanghai())
	h := rental.EveryDay(13*60, 14*60)
	when := "今天 13:00"
	if local.Hour() >= 12 {
		h, when = rental.EveryDay(6*60, 7*60), "明天 6:00"
	}
	return &h, when
}

// TestPresenceHoursAndHeartbeats: outside support hours with nobody seen,
// customers are told when staff are back (GET /api/v1/presence and the
// auto-reply) and the conversation waits; a console heartbeat over /ws
// makes the staff member online (customers get a live presence event) and
// the next message reaches them; /off in WeCom takes them offline.
func TestPresenceHoursAndHeartbeats(t *testing.T) {
	hours, when := hoursExcluding(time.Now())
	e := newChatEnv(t, []string{"laowang:老王"}, hours, nil)
	if local := e.sim.Clock().Now().In(rental.Shanghai()); local.Hour() == 12 || local.Hour() == 6 || local.Hour() == 13 {
		t.Skip("too close to the chosen hours' edge") // hoursExcluding used the wall clock
	}
	st, p := e.call("GET", "/api/v1/presence", "", nil)
	if st != 200 || p["status"] != "offline" || p["staff_online"] != float64(0) || !strings.Contains(p["text"].(string), "客服已下班，"+when+" 后回复") ||
		p["expected_reply_seconds"].(float64) <= 0 {
		t.Fatalf("presence out of hours: %d %v", st, p)
	}
	const openID = "o-night"
	e.named(openID, "夜钓老张")
	custWS := e.connect(e.customerToken(openID))
	custWS.wait("presence", func(ev map[string]any) bool { return dig(ev, "presence", "status") == "offline" })

	e.customer(openID, "晚上能还竿吗")
	e.waitCustomer(openID, "客服已下班，"+when+" 后回复")
	e.settled()
	if got := e.liveConversation(e.memberOf(openID)); got.Assignee != "" {
		t.Errorf("assigned out of hours to %q", got.Assignee)
	}
	if n := bridgeCount(e.inboxTexts("laowang"), "晚上能还竿吗"); n != 0 {
		t.Error("forwarded to staff nobody saw")
	}

	// The console's heartbeat: online.
	staffWS := e.connect(e.staffToken("laowang"))
	staffWS.send(map[string]string{"type": "heartbeat"})
	custWS.wait("presence", func(ev map[string]any) bool { return dig(ev, "presence", "status") == "online" })
	st, p = e.call("GET", "/api/v1/presence", "", nil)
	if st != 200 || p["status"] != "online" || p["text"] != "客服在线，通常 2 分钟内回复" || p["expected_reply_seconds"] != float64(120) || p["staff_online"] != float64(1) {
		t.Fatalf("presence with a heartbeat: %v", p)
	}
	e.customer(openID, "人呢")
	e.waitInbox("laowang", "晚上能还竿吗") // the queued message comes along
	e.waitInbox("laowang", "人呢")
	staffWS.wait("message", hasMessage("人呢"))

	// The heartbeat expires: offline again, out of hours.
	e.sim.Advance(2 * time.Minute)
	custWS.wait("presence", func(ev map[string]any) bool { return dig(ev, "presence", "status") == "offline" })

	// WeCom activity counts too; /off ends it.
	e.staff("laowang", "马上回复您")
	e.waitCustomer(openID, "马上回复您")
	bridgeEventually(t, "activity to count", func() bool {
		_, p := e.call("GET", "/api/v1/presence", "", nil)
		return p["status"] == "online"
	})
	e.staff("laowang", "/off")
	e.waitInbox("laowang", "已下班")
	bridgeEventually(t, "/off to count", func() bool {
		_, p := e.call("GET", "/api/v1/presence", "", nil)
		return p["status"] == "offline"
	})
}

func TestPresenceAwayInHours(t *testing.T) {
	e := newChatEnv(t, []string{"laowang:老王"}, alwaysOpen(), nil)
	_, p := e.call("GET", "/api/v1/presence", "", nil)
	if p["status"] != "away" || p["expected_reply_seconds"] != float64(600) || !strings.Contains(p["text"].(string), "10 分钟") {
		t.Errorf("in hours, nobody seen: %v", p)
	}
	// Away staff are still assigned (WeCom reaches their phone).
	e.customer("o-day", "在吗")
	e.waitInbox("laowang", "在吗")
}

func TestParseSupportHours(t *testing.T) {
	for _, bad := range []string{"9-21", "21:00-09:00", "always!", "09:00-25:00"} {
		if _, err := ParseSupportHours(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	h, err := ParseSupportHours("09:00-21:00")
	if err != nil || h == nil || h[1].Open != 9*60 || h[1].Close != 21*60 {
		t.Errorf("09:00-21:00: %v %v", h, err)
	}
	if h, err := ParseSupportHours("shop"); h != nil || err != nil {
		t.Errorf("shop: %v %v", h, err)
	}
	noon := time.Date(2026, 5, 1, 4, 0, 0, 0, time.UTC) // Friday 12:00 in Shanghai
	if got := presenceWhen(noon, noon.Add(3*time.Hour)); got != "今天 15:00" {
		t.Errorf("today: %q", got)
	}
	if got := presenceWhen(noon, noon.Add(21*time.Hour)); got != "明天 9:00" {
		t.Errorf("tomorrow: %q", got)
	}
	if got := presenceWhen(noon, noon.Add(45*time.Hour)); got != "周日 9:00" {
		t.Errorf("later: %q", got)
	}
}

// TestStaffConsoleActions: the console's list with unread counts, read,
// reply, note, tags, transfer (both told), take, close and the duty
// switch; the WeCom /transfer and /tag commands; staff see changes live.
func TestStaffConsoleActions(t *testing.T) {
	e := newChatEnv(t, []string{"laowang:老王", "xiaoli:小李"}, alwaysOpen(), nil)
	const openID = "o-console"
	e.named(openID, "刘洋")
	wang := e.staffToken("laowang")
	wangWS := e.connect(wang)
	e.customer(openID, "鱼漂怎么调")
	e.waitInbox("laowang", "鱼漂怎么调")
	conv := e.liveConversation(e.memberOf(openID))
	base := fmt.Sprintf("/api/v1/staff/conversations/%d", conv.ID)
	wangWS.wait("message", hasMessage("鱼漂怎么调"))

	st, list := e.call("GET", "/api/v1/staff/conversations?live=1", wang, nil)
	if st != 200 || dig(list["conversations"].([]any)[0].(map[string]any), "unread") != float64(1) {
		t.Fatalf("list: %d %v", st, list)
	}
	if st, out := e.call("POST", base+"/read", wang, nil); st != 200 || out["read_seq"] != float64(1) {
		t.Errorf("read: %d %v", st, out)
	}
	_, list = e.call("GET", "/api/v1/staff/conversations?live=1", wang, nil)
	if u := dig(list["conversations"].([]any)[0].(map[string]any), "unread"); u != float64(0) {
		t.Errorf("unread after read: %v", u)
	}

	if st, out := e.call("POST", base+"/messages", wang, map[string]string{"text": "先调四目", "client_id": "r1"}); st != 201 {
		t.Fatalf("reply: %d %v", st, out)
	}
	e.waitCustomer(openID, "先调四目")
	if st, _ := e.call("POST", base+"/messages", wang, map[string]string{"text": "先调四目", "client_id": "r1"}); st != 201 {
		t.Errorf("retried reply: %d", st)
	}
	photo := bridgePNG(t, 9)
	if st, out := e.upload(base+"/messages", wang, "p.png", "image/png", photo, nil); st != 201 {
		t.Fatalf("photo reply: %d %v", st, out)
	}
	if st, out := e.call("POST", base+"/notes", wang, map[string]string{"text": "新手，耐心点"}); st != 201 {
		t.Errorf("note: %d %v", st, out)
	}
	if st, out := e.call("POST", base+"/tags", wang, map[string][]string{"tags": {"新手", " 鱼漂 ", "新手"}}); st != 200 || fmt.Sprint(dig(out, "conversation", "tags")) != "[新手 鱼漂]" {
		t.Errorf("tags: %d %v", st, out)
	}
	if st, _ := e.call("POST", base+"/tags", wang, map[string][]string{"tags": {strings.Repeat("长", 13)}}); st != 400 {
		t.Errorf("long tag: %d", st)
	}
	e.staff("laowang", "/tag "+conv.Code()+" 回头客")
	e.waitInbox("laowang", "标签：新手、鱼漂、回头客")

	if st, _ := e.call("POST", base+"/transfer", wang, map[string]string{"to": "nobody"}); st != 400 {
		t.Errorf("transfer to nobody: %d", st)
	}
	if st, out := e.call("POST", base+"/transfer", wang, map[string]string{"to": "小李"}); st != 200 || dig(out, "conversation", "assignee") != "xiaoli" {
		t.Fatalf("transfer: %d %v", st, out)
	}
	told := e.waitInbox("xiaoli", "由老王转给你")
	if !strings.Contains(told, "鱼漂怎么调") {
		t.Errorf("the colleague got no history: %q", told)
	}
	wangWS.wait("conversation", func(ev map[string]any) bool { return dig(ev, "conversation", "assignee") == "xiaoli" })
	if n := bridgeCount(e.inboxTexts("laowang"), "已把"); n != 0 {
		t.Error("the console's own notice went to WeCom")
	}
	// And back through WeCom.
	e.staff("xiaoli", "/transfer "+conv.Code()+" laowang")
	e.waitInbox("laowang", "由小李转给你")
	e.waitInbox("xiaoli", "已把 [#"+conv.Code())

	xiao := e.staffToken("xiaoli")
	if st, out := e.call("POST", base+"/take", xiao, nil); st != 200 || dig(out, "conversation", "assignee") != "xiaoli" {
		t.Errorf("take: %d %v", st, out)
	}
	e.waitInbox("laowang", "已由小李接手")
	if st, out := e.call("POST", base+"/close", xiao, nil); st != 200 || dig(out, "conversation", "state") != "resolved" {
		t.Errorf("close: %d %v", st, out)
	}
	e.waitCustomer(openID, "请为本次服务打分")
	if st, _ := e.call("POST", base+"/take", xiao, nil); st != 409 {
		t.Errorf("take a resolved conversation: %d", st)
	}
	if st, page := e.call("GET", base+"?limit=2", xiao, nil); st != 200 || len(page["messages"].([]any)) != 2 || page["next_before"].(float64) < 2 {
		t.Errorf("transcript page: %d %v", st, page["next_before"])
	} else if st, older := e.call("GET", fmt.Sprintf("%s?limit=2&before=%v", base, page["next_before"]), xiao, nil); st != 200 || len(older["messages"].([]any)) != 2 {
		t.Errorf("older page: %d %v", st, older)
	}
	_, msgs := e.transcript(conv.ID)
	var note bool
	for _, m := range msgs {
		note = note || (m.Direction == rental.ChatNote && m.Text == "新手，耐心点")
	}
	if !note {
		t.Error("the note is not in the transcript")
	}

	// The duty switch.
	if st, out := e.call("POST", "/api/v1/staff/duty", wang, map[string]bool{"on": false}); st != 200 || out["on_duty"] != false {
		t.Errorf("off duty: %d %v", st, out)
	}
	e.customer("o-next", "有人吗")
	e.waitInbox("xiaoli", "有人吗")
	if st, _ := e.call("POST", "/api/v1/staff/duty", wang, map[string]any{}); st != 400 {
		t.Errorf("duty without on: %d", st)
	}
	if st, out := e.call("GET", "/api/v1/staff/presence", wang, nil); st != 200 || len(out["staff"].([]any)) != 2 {
		t.Errorf("staff presence: %d %v", st, out)
	}
	// The owner reads but does not answer.
	owner := e.id.ownerLogin(t)
	if st, _ := e.call("POST", base+"/messages", owner, map[string]string{"text": "hi"}); st != 403 {
		t.Errorf("owner reply: %d", st)
	}
}

// TestReassignAfterNoReply: a customer waits past the timeout: the
// conversation moves to the other staff member on duty; both are told.
func TestReassignAfterNoReply(t *testing.T) {
	e := newChatEnv(t, []string{"laowang:老王", "xiaoli:小李"}, alwaysOpen(), func(o *BridgeOptions) { o.ReassignAfter = 5 * time.Minute })
	e.named("o-wait", "赵六")
	e.customer("o-wait", "押金退了吗")
	e.waitInbox("laowang", "押金退了吗")
	conv := e.liveConversation(e.memberOf("o-wait"))
	e.sim.Advance(6 * time.Minute)
	got := e.waitInbox("xiaoli", "已等待 6 分钟未获回复，已从老王转给你")
	if !strings.Contains(got, "押金退了吗") {
		t.Errorf("new staff member told %q", got)
	}
	e.waitInbox("laowang", "没有回复，已转给小李")
	if c := e.liveConversation(e.memberOf("o-wait")); c.Assignee != "xiaoli" || c.ID != conv.ID {
		t.Errorf("after reassignment: %+v", c)
	}
	// Answered: it stays.
	e.staff("xiaoli", "#"+conv.Code()+" 已退")
	e.waitCustomer("o-wait", "已退")
	e.sim.Advance(10 * time.Minute)
	time.Sleep(300 * time.Millisecond)
	if c := e.liveConversation(e.memberOf("o-wait")); c.Assignee != "xiaoli" {
		t.Errorf("an answered conversation moved to %q", c.Assignee)
	}
}

// TestChatRoutesRefuseAnonymousAndWrongRole walks every route of the
// environment with the chat, console and live routes mounted.
func TestChatRoutesRefuseAnonymousAndWrongRole(t *testing.T) {
	e := newChatEnv(t, []string{"laowang:老王"}, alwaysOpen(), nil)
	tokens := map[rental.Role]string{
		rental.RoleOwner:    e.id.ownerLogin(t),
		rental.RoleCustomer: e.customerToken("o-walker"),
		rental.RoleStaff:    e.staffToken("laowang"),
	}
	checked := 0
	for _, r := range e.srv.App().GetRoutes(true) {
		if !strings.HasPrefix(r.Path, "/api/v1/") || r.Method == "HEAD" {
			continue
		}
		roles, ok := e.srv.roles[r.Method+" "+r.Path]
		if !ok {
			t.Errorf("%s %s is not registered through Server.api", r.Method, r.Path)
			continue
		}
		if len(roles) == 0 {
			continue
		}
		path := strings.ReplaceAll(strings.ReplaceAll(r.Path, ":id", "1"), ":seq", "1")
		if st, out := e.call(r.Method, path, "", nil); st != 401 {
			t.Errorf("anonymous %s %s: %d %v", r.Method, r.Path, st, out)
		}
		for role, tok := range tokens {
			admitted := false
			for _, ar := range roles {
				admitted = admitted || ar == role
			}
			if !admitted {
				if st, out := e.call(r.Method, path, tok, nil); st != 403 {
					t.Errorf("%s calling %s %s: %d %v", role, r.Method, r.Path, st, out)
				}
			}
		}
		if strings.Contains(r.Path, "/chat") || strings.Contains(r.Path, "/staff/conversations/:id/") || strings.HasSuffix(r.Path, "/staff/duty") {
			checked++
		}
	}
	if checked < 12 {
		t.Errorf("only %d chat and console routes walked", checked)
	}
	// The live channel refuses a missing or forged access token before
	// the handshake, and a GET without an upgrade.
	for _, tok := range []string{"forged", tokens[rental.RoleOwner] + "x"} {
		_, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.base, "http")+"/ws?access="+tok, nil)
		if err == nil || resp == nil || resp.StatusCode != 401 {
			t.Errorf("/ws with a bad access token: %v %v", err, resp)
		}
	}
	if st, _ := httpGet(t, e.base+"/ws?access="+tokens[rental.RoleStaff]); st != 426 {
		t.Errorf("/ws without an upgrade: %d", st)
	}
}

// TestOwnerTranscriptHTML: the printable transcript shows the messages
// (text escaped, photos inline) and the chain's verdict; an edit made
// around the database's triggers shows as a failed check; after retention
// the content is gone and the chain still verifies.
func TestOwnerTranscriptHTML(t *testing.T) {
	e := newChatEnv(t, []string{"laowang:老王"}, alwaysOpen(), nil)
	const openID = "o-print"
	e.named(openID, "钱多多")
	e.customer(openID, "<script>alert(1)</script> 押金呢")
	e.customerSends(openID, wxsim.ImageMessage(bridgePNG(t, 3)))
	e.waitInbox("laowang", "发来一张图片")
	e.staff("laowang", "已退回")
	e.waitCustomer(openID, "已退回")
	e.staff("laowang", "/close")
	e.waitCustomer(openID, "请为本次服务打分")
	e.settled()
	conv := e.liveOrLatest(e.memberOf(openID))
	owner := e.id.ownerLogin(t)
	get := func() (int, string, http.Header) {
		req := httptest.NewRequest("GET", fmt.Sprintf("/api/v1/owner/conversations/%d/transcript", conv), nil)
		req.Header.Set("Authorization", "Bearer "+owner)
		resp, body := do(t, e.srv, req)
		return resp.StatusCode, string(body), resp.Header
	}
	st, page, h := get()
	if st != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("transcript: %d %v", st, h)
	}
	for _, want := range []string{"哈希链校验通过", "钱多多", "&lt;script&gt;alert(1)&lt;/script&gt; 押金呢", `<img src="data:image/png;base64,`, "已退回", "老王（laowang）", "已送达"} {
		if !strings.Contains(page, want) {
			t.Errorf("transcript lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>alert") {
		t.Error("customer text not escaped")
	}

	dropChatTriggers(t, e.db)
	if err := e.db.Gorm.Exec("UPDATE chat_messages SET author = 'staff:xiaoli' WHERE conversation_id = ? AND seq = 3", conv).Error; err != nil {
		t.Fatal(err)
	}
	if _, page, _ := get(); !strings.Contains(page, "哈希链校验未通过") || !strings.Contains(page, "第 3 条") {
		t.Errorf("tampered transcript: %s", page[:min(len(page), 2000)])
	}
	if err := e.db.Gorm.Exec("UPDATE chat_messages SET author = 'staff:laowang' WHERE conversation_id = ? AND seq = 3", conv).Error; err != nil {
		t.Fatal(err)
	}
	res, err := e.db.ShredConversations(context.Background(), e.sim.Clock().Now().Add(time.Hour), "retention: 90 days", 10)
	if err != nil || len(res.Shredded) != 1 || res.Payloads == 0 {
		t.Fatalf("retention: %+v %v", res, err)
	}
	_, page, _ = get()
	if !strings.Contains(page, "哈希链校验通过") || !strings.Contains(page, "按保留期限销毁") || strings.Contains(page, "押金呢") || strings.Contains(page, "data:image/png") {
		t.Errorf("shredded transcript: %s", page[:min(len(page), 3000)])
	}
}

func TestStaffLoginURLAndChatFlood(t *testing.T) {
	e := newChatEnv(t, []string{"laowang:老王"}, alwaysOpen(), nil)
	st, out := e.call("GET", "/api/v1/staff/login?redirect=/staff", "", nil)
	u, _ := out["url"].(string)
	if st != 200 || !strings.HasPrefix(u, "https://open.weixin.qq.com/connect/oauth2/authorize?") || !strings.Contains(u, "appid="+wxsim.DefaultConfig().CorpID) ||
		!strings.Contains(u, "redirect_uri=http") || !strings.HasSuffix(u, "#wechat_redirect") {
		t.Errorf("login url: %d %v", st, out)
	}
	if st, _ := e.call("GET", "/api/v1/staff/login?redirect=//evil.example", "", nil); st != 400 {
		t.Errorf("open redirect: %d", st)
	}
	tok := e.customerToken("o-flood")
	var last int
	for i := range chatPerMinute + 1 {
		last, _ = e.call("POST", "/api/v1/chat/messages", tok, map[string]string{"text": fmt.Sprintf("第%d条", i)})
	}
	if last != 429 {
		t.Errorf("message %d: %d", chatPerMinute+1, last)
	}
}
