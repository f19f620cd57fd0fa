package gateway

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/adapters/wxsim"
	"github.com/tacklegate/tacklegate/gateway/assistant"
	"github.com/tacklegate/tacklegate/rental"
)

// TestBridgeStaffCommands walks the WeCom commands: /list, /take (taking
// over from a colleague), plain text to the current conversation, #A7 to
// another, /note, /video, unknown commands, /close with the rating, the
// next message opening a new conversation that goes back to the same staff
// member, and /off handing conversations on.
func TestBridgeStaffCommands(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) { testBridgeCommands(t, tg) })
	}
}

func testBridgeCommands(t *testing.T, tg storetest.Target) {
	e := newBridgeEnvOn(t, tg, []string{"laowang:老王", "xiaoli:小李"}, nil)
	zhang := e.named("o-zhang", "张伟")
	li := e.named("o-li", "李娜")

	e.customer("o-zhang", "鱼线断了，能换吗")
	e.waitInbox("laowang", "鱼线断了") // first of two idle staff
	a := e.liveConversation(zhang.ID)
	e.customer("o-li", "周六有船竿吗")
	e.waitInbox("xiaoli", "周六有船竿吗") // the least loaded
	b := e.liveConversation(li.ID)
	if a.Assignee != "laowang" || b.Assignee != "xiaoli" {
		t.Fatalf("assignment: %s → %s, %s → %s", a.Code(), a.Assignee, b.Code(), b.Assignee)
	}

	e.staff("laowang", "/list")
	list := e.waitInbox("laowang", "你的会话")
	if !strings.Contains(list, "#"+a.Code()+" 张伟") || !strings.Contains(list, "鱼线断了") || !strings.Contains(list, "同事处理中：1") {
		t.Errorf("/list: %q", list)
	}

	e.staff("xiaoli", "/take "+a.Code())
	took := e.waitInbox("xiaoli", "已接待")
	if !strings.Contains(took, "鱼线断了") {
		t.Errorf("/take shows no history: %q", took)
	}
	e.waitInbox("laowang", "已由小李接手")
	e.staff("xiaoli", "可以换，带上旧线来店里")
	e.waitCustomer("o-zhang", "带上旧线来店里")
	e.staff("xiaoli", "#"+b.Code()+" 有的，周六上午来")
	e.waitCustomer("o-li", "周六上午来")
	e.staff("xiaoli", "周六早上七点开门")
	e.waitCustomer("o-li", "七点开门") // #A… made b current

	e.staff("xiaoli", "#"+a.Code())
	e.waitInbox("xiaoli", "当前会话：[#"+a.Code())
	e.staff("xiaoli", "/note 老顾客，上次也断过线")
	e.waitInbox("xiaoli", "记下备注")
	e.staff("xiaoli", "/video")
	e.waitInbox("xiaoli", "视频通话暂未开通")
	e.staff("xiaoli", "/dance")
	unknown := e.waitInbox("xiaoli", "未知命令 /dance")
	if !strings.Contains(unknown, "/take A7") {
		t.Errorf("unknown command without the help: %q", unknown)
	}
	e.staff("xiaoli", "/help")
	bridgeEventually(t, "the help", func() bool { return bridgeCount(e.inboxTexts("xiaoli"), "可用命令") >= 2 })

	// /close asks for a rating; "5" is the rating, not a new conversation.
	e.staff("xiaoli", "/close "+a.Code())
	e.waitInbox("xiaoli", "已结束会话 [#"+a.Code())
	e.waitCustomer("o-zhang", "请为本次服务打分")
	e.customer("o-zhang", "5")
	e.waitCustomer("o-zhang", "感谢您的评分（5 分）")
	e.waitInbox("xiaoli", "顾客评分：5 分")
	e.settled()
	closed, _ := e.db.Conversation(context.Background(), a.ID)
	if closed.State != rental.ConversationResolved || closed.Rating != 5 || closed.ResolvedBy != "xiaoli" {
		t.Errorf("closed conversation: %+v", closed)
	}
	if all, _ := e.db.Conversations(context.Background(), store.ConversationFilter{Member: zhang.ID}); len(all) != 1 {
		t.Errorf("the rating opened a conversation: %d conversations", len(all))
	}
	if n := bridgeCount(e.inboxTexts("xiaoli"), "] 5"); n != 0 {
		t.Error("the rating was forwarded as a message")
	}

	// Writing again opens a new conversation, back to the same staff member.
	e.customer("o-zhang", "还想问下鱼钩")
	e.waitInbox("xiaoli", "还想问下鱼钩")
	c := e.liveConversation(zhang.ID)
	if c.ID == a.ID || c.PrevID != a.ID || c.Assignee != "xiaoli" {
		t.Errorf("new conversation %+v after %s", c, a.Code())
	}

	// /off: the next message goes to the colleague on duty.
	e.staff("xiaoli", "/off")
	off := e.waitInbox("xiaoli", "已下班")
	if !strings.Contains(off, "2 个会话") {
		t.Errorf("/off: %q", off)
	}
	e.customer("o-li", "那我周六去")
	e.waitInbox("laowang", "那我周六去")
	if got := e.liveConversation(li.ID); got.Assignee != "laowang" {
		t.Errorf("after /off the conversation is with %q", got.Assignee)
	}
	e.staff("xiaoli", "/on")
	e.waitInbox("xiaoli", "已上班")

	// The transcript has the note, the replies and the rating, and holds.
	conv, msgs := e.transcript(a.ID)
	var note, rating bool
	for _, m := range msgs {
		note = note || (m.Direction == rental.ChatNote && m.Text == "老顾客，上次也断过线")
		rating = rating || (m.Direction == rental.ChatIn && m.Text == "5")
	}
	if !note || !rating {
		t.Errorf("transcript lacks the note (%v) or the rating (%v)", note, rating)
	}
	if brk := conv.VerifyChain(msgs); brk != nil {
		t.Error(brk)
	}
	if bridgeCount(e.customerTexts("o-zhang"), "老顾客") != 0 {
		t.Error("an internal note reached the customer")
	}
}

// TestBridgeWindowFallback: outside WeChat's 48-hour window a reply is not
// retried; with a subscribe consent the customer gets a subscribe message
// and the reply goes out when they come back; without one it fails. Staff
// are told either way.
func TestBridgeWindowFallback(t *testing.T) {
	e := newBridgeEnv(t, []string{"laowang:老王"}, nil)
	const openID = "o-late"
	e.named(openID, "王强")
	e.customer(openID, "卷线器有点卡")
	e.waitInbox("laowang", "卷线器有点卡")
	if err := e.sim.GrantSubscribe(openID, wxsim.DemoTemplateReturnReminder, 1); err != nil {
		t.Fatal(err)
	}

	e.sim.Advance(49 * time.Hour)
	e.staff("laowang", "卷线器修好了，随时来取")
	notice := e.waitInbox("laowang", "已通过订阅消息提醒")
	if !strings.Contains(notice, "48小时") {
		t.Errorf("staff notice: %q", notice)
	}
	var sub *wxsim.CustomerDelivery
	for _, d := range e.sim.Delivered(openID) {
		if d.Kind == "subscribe" {
			sub = &d
		}
	}
	if sub == nil || sub.TemplateID != wxsim.DemoTemplateReturnReminder || !strings.Contains(sub.Data["thing4"], "卷线器修好了") {
		t.Fatalf("subscribe message: %+v", sub)
	}
	if bridgeCount(e.customerTexts(openID), "卷线器修好了") != 0 {
		t.Fatal("a customer-service message went out after 48 hours")
	}

	// The one consent is used up: the next reply fails, and staff hear it.
	e.staff("laowang", "另外鱼线也换了新的")
	e.waitInbox("laowang", "顾客没有订阅提醒")
	e.settled()
	conv := e.liveConversation(e.memberOf(openID))
	_, msgs := e.transcript(conv.ID)
	last, prev := msgs[len(msgs)-1], msgs[len(msgs)-2]
	if prev.ToCustomer.Status != rental.DeliveryNotified || last.ToCustomer.Status != rental.DeliveryFailed || !strings.Contains(last.ToCustomer.Reason, "48小时") {
		t.Errorf("statuses: %+v / %+v", prev.ToCustomer, last.ToCustomer)
	}

	// The customer comes back: the announced reply goes out, the failed
	// one does not.
	e.customer(openID, "好的我下午来")
	e.waitCustomer(openID, "卷线器修好了，随时来取")
	e.settled()
	if bridgeCount(e.customerTexts(openID), "鱼线也换了") != 0 {
		t.Error("a failed reply was sent after all")
	}
	if n := bridgeCount(e.customerTexts(openID), "卷线器修好了"); n != 1 {
		t.Errorf("the announced reply went out %d times", n)
	}
}

func (e *bridgeEnv) memberOf(openID string) rental.MemberID {
	m, _, _, err := e.db.LoginWeChat(context.Background(), e.wc.AppID(), openID, "")
	if err != nil {
		e.t.Fatal(err)
	}
	return m.ID
}

// TestBridgeNobodyOnDuty: with every staff member off duty the customer
// gets an honest auto-reply, at most once an hour per conversation; the
// first staff member back on duty gets the conversation and its messages.
func TestBridgeNobodyOnDuty(t *testing.T) {
	e := newBridgeEnv(t, []string{"laowang:老王"}, nil)
	e.staff("laowang", "/off")
	e.waitInbox("laowang", "已下班")
	const openID = "o-night"
	e.customer(openID, "在吗")
	e.waitCustomer(openID, "客服暂时不在线")
	e.customer(openID, "想租一根海竿")
	e.settled()
	if n := bridgeCount(e.customerTexts(openID), "客服暂时不在线"); n != 1 {
		t.Errorf("auto-replies within the hour: %d", n)
	}
	e.sim.Advance(61 * time.Minute)
	e.customer(openID, "有人吗")
	bridgeEventually(t, "the second auto-reply", func() bool { return bridgeCount(e.customerTexts(openID), "客服暂时不在线") == 2 })
	if bridgeCount(e.inboxTexts("laowang"), "想租一根海竿") != 0 {
		t.Error("a message reached off-duty staff")
	}

	e.staff("laowang", "/on")
	on := e.waitInbox("laowang", "已上班")
	if !strings.Contains(on, "排队中的会话") {
		t.Errorf("/on: %q", on)
	}
	for _, text := range []string{"在吗", "想租一根海竿", "有人吗"} {
		e.waitInbox("laowang", text)
	}
	e.staff("laowang", "在的，海竿有三种")
	e.waitCustomer(openID, "海竿有三种")
}

// TestBridgeAllBusyQueues: when everyone on duty is at capacity the
// conversation waits in the queue, the customer is told, staff are told
// once, and closing a conversation hands the next one over.
func TestBridgeAllBusyQueues(t *testing.T) {
	e := newBridgeEnv(t, []string{"laowang:老王"}, func(o *BridgeOptions) { o.MaxOpen = 1 })
	e.customer("o-first", "第一位")
	e.waitInbox("laowang", "第一位")
	e.customer("o-second", "第二位")
	e.waitCustomer("o-second", "已为您排队")
	e.waitInbox("laowang", "新会话在排队")
	e.customer("o-second", "还在吗")
	e.settled()
	if bridgeCount(e.inboxTexts("laowang"), "新会话在排队") != 1 || bridgeCount(e.inboxTexts("laowang"), "还在吗") != 0 {
		t.Errorf("queued conversation leaked or was announced twice: %q", e.inboxTexts("laowang"))
	}
	first := e.liveConversation(e.memberOf("o-first"))
	e.staff("laowang", "/close "+first.Code())
	closed := e.waitInbox("laowang", "已结束会话")
	if !strings.Contains(closed, "已为你分配排队中的会话") {
		t.Errorf("/close did not hand the queue over: %q", closed)
	}
	e.waitInbox("laowang", "还在吗")
	e.staff("laowang", "您好，久等了")
	e.waitCustomer("o-second", "久等了")
}

// TestBridgeReplyQuota: WeChat allows five replies per customer message;
// the rest wait until the customer writes again (or opens the chat, which
// allows two more), and staff are told.
func TestBridgeReplyQuota(t *testing.T) {
	e := newBridgeEnv(t, []string{"laowang:老王"}, nil)
	const openID = "o-chatty"
	e.customer(openID, "请把租赁流程发我")
	e.waitInbox("laowang", "请把租赁流程发我")
	for i := 1; i <= 8; i++ {
		e.staff("laowang", fmt.Sprintf("第%d步", i))
	}
	e.waitInbox("laowang", "已达微信客服回复上限")
	e.settled()
	for i := 1; i <= 5; i++ {
		if n := bridgeCount(e.customerTexts(openID), fmt.Sprintf("第%d步", i)); n != 1 {
			t.Errorf("step %d delivered %d times", i, n)
		}
	}
	if bridgeCount(e.customerTexts(openID), "第6步") != 0 {
		t.Fatal("a sixth reply went through")
	}
	_, msgs := e.transcript(e.liveConversation(e.memberOf(openID)).ID)
	if d := msgs[len(msgs)-1].ToCustomer; d.Status != rental.DeliveryHeld || !strings.Contains(d.Reason, "上限") {
		t.Errorf("held reply: %+v", d)
	}
	// Opening the chat allows two replies within a minute.
	e.customerSends(openID, wxsim.EnterSession("rental-help"))
	e.waitCustomer(openID, "第7步")
	e.settled()
	if bridgeCount(e.customerTexts(openID), "第8步") != 0 {
		t.Error("more than the two replies the enter event allows")
	}
	e.customer(openID, "收到")
	e.waitCustomer(openID, "第8步")
	e.settled()
	for i := 6; i <= 8; i++ {
		if n := bridgeCount(e.customerTexts(openID), fmt.Sprintf("第%d步", i)); n != 1 {
			t.Errorf("held step %d delivered %d times", i, n)
		}
	}
}

// TestBridgeSweepResendsWhatWaited: messages whose outbox rows are gone
// (given up after hours of failures) are flushed again by the sweep.
func TestBridgeSweepResendsWhatWaited(t *testing.T) {
	e := newBridgeEnv(t, []string{"laowang:老王"}, nil)
	e.customer("o-sweep", "你好")
	e.waitInbox("laowang", "你好")
	e.stop()
	e.customer("o-sweep", "还在吗")
	o := e.opts
	o.StaleAfter = time.Nanosecond
	b, err := NewBridge(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if n := b.ProcessPending(ctx); n != 1 {
		t.Fatalf("processed %d", n)
	}
	if err := e.db.Gorm.Exec("DELETE FROM outbox").Error; err != nil {
		t.Fatal(err)
	}
	b.Sweep(ctx)
	if st, _ := e.db.OutboxCounts(ctx); st.Pending != 1 {
		t.Fatalf("sweep enqueued %d flushes, want 1", st.Pending)
	}
	e.start(e.db)
	e.waitInbox("laowang", "还在吗")
	e.settled()
	if n := bridgeCount(e.inboxTexts("laowang"), "你好"); n != 1 {
		t.Errorf("the sweep resent a delivered message: %d", n)
	}
}

// TestBridgeRestartLosesNothing: the processor and the outbox worker stop
// while messages are queued (some in flight, the upstream slow), more
// callbacks are stored meanwhile, and a new processor and worker on a new
// connection to the same database finish the job: every message once, in
// order.
func TestBridgeRestartLosesNothing(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) { testBridgeRestart(t, tg) })
	}
}

func testBridgeRestart(t *testing.T, tg storetest.Target) {
	e := newBridgeEnvOn(t, tg, []string{"laowang:老王"}, nil)
	const openID = "o-restart"
	e.customer(openID, "开始")
	e.waitInbox("laowang", "开始")
	// Slow WeCom: the worker is mid-way through a backlog when it stops.
	e.sim.Faults().Set(wxsim.EndpointWeComSend, wxsim.Fault{Latency: 150 * time.Millisecond})
	for i := 1; i <= 8; i++ {
		e.customer(openID, fmt.Sprintf("消息%02d", i))
	}
	bridgeEventually(t, "a few forwarded", func() bool { return bridgeCount(e.inboxTexts("laowang"), "消息") >= 2 })
	e.stop()
	before := bridgeCount(e.inboxTexts("laowang"), "消息")
	if before >= 8 {
		t.Fatalf("everything was delivered before the stop (%d); the test proves nothing", before)
	}
	t.Logf("%d of 8 forwarded when the gateway stopped", before)
	for i := 9; i <= 12; i++ {
		e.customer(openID, fmt.Sprintf("消息%02d", i)) // stored, not processed
	}
	e.staff("laowang", "稍等，我看一下") // a reply queued while down
	e.sim.Faults().Clear(wxsim.EndpointWeComSend)

	e.start(e.openDB())
	bridgeEventually(t, "all twelve forwarded", func() bool { return bridgeCount(e.inboxTexts("laowang"), "消息") >= 12 })
	e.waitCustomer(openID, "稍等，我看一下")
	e.settled()
	var got []string
	for _, s := range e.inboxTexts("laowang") {
		if i := strings.Index(s, "消息"); i >= 0 {
			got = append(got, s[i:])
		}
	}
	if len(got) != 12 {
		t.Fatalf("forwarded %d messages, want 12 exactly once: %q", len(got), got)
	}
	for i, s := range got {
		if want := fmt.Sprintf("消息%02d", i+1); s != want {
			t.Errorf("forward %d is %q, want %q (order or duplicates)", i+1, s, want)
		}
	}
	if n := bridgeCount(e.customerTexts(openID), "稍等"); n != 1 {
		t.Errorf("reply delivered %d times", n)
	}
}

// TestBridgeSurvivesUpstreamFaults: system busy (-1), 5xx pages, tokens
// revoked early and a failing media download are all retried, and nothing
// arrives twice.
func TestBridgeSurvivesUpstreamFaults(t *testing.T) {
	e := newBridgeEnv(t, []string{"laowang:老王"}, nil)
	const openID = "o-faults"
	e.sim.Faults().Set(wxsim.EndpointWeComSend, wxsim.Fault{Errcode: -1, Times: 3})
	e.sim.Faults().Set(wxsim.EndpointMediaGet, wxsim.Fault{HTTPStatus: 502, Times: 2})
	e.sim.Faults().Set(wxsim.EndpointCustomSend, wxsim.Fault{Errcode: -1, Times: 2})
	e.sim.Faults().Set(wxsim.EndpointWeComMediaUpload, wxsim.Fault{HTTPStatus: 503, Times: 1})
	photo := bridgePNG(t, 99)
	e.customer(openID, "故障一")
	e.customerSends(openID, wxsim.ImageMessage(photo))
	e.customer(openID, "故障二")
	e.waitInbox("laowang", "故障二")
	e.sim.InvalidateTokens()
	e.staff("laowang", "回复一")
	e.staff("laowang", "回复二")
	e.waitCustomer(openID, "回复二")
	e.sim.Faults().Set("/wechat/*", wxsim.Fault{ExpireToken: true, Times: 1})
	e.staff("laowang", "回复三")
	e.waitCustomer(openID, "回复三")
	e.settled()
	for _, s := range []string{"故障一", "故障二"} {
		if n := bridgeCount(e.inboxTexts("laowang"), s); n != 1 {
			t.Errorf("%s forwarded %d times", s, n)
		}
	}
	images := 0
	for _, d := range e.sim.StaffInbox("laowang") {
		if d.MsgType == "image" {
			images++
		}
	}
	if images != 1 {
		t.Errorf("the photo reached staff %d times", images)
	}
	for _, s := range []string{"回复一", "回复二", "回复三"} {
		if n := bridgeCount(e.customerTexts(openID), s); n != 1 {
			t.Errorf("%s delivered %d times", s, n)
		}
	}
	if left := e.sim.Faults().List(); len(left) != 0 {
		t.Errorf("faults never fired: %v", left)
	}
	if dead, _ := e.db.DeadOutbox(context.Background(), "", 10); len(dead) != 0 {
		t.Errorf("dead letters: %+v", dead)
	}
	// Order survived the retries.
	got := e.inboxTexts("laowang")
	i1, i2 := indexOf(got, "故障一"), indexOf(got, "故障二")
	if i1 < 0 || i2 < i1 {
		t.Errorf("order at staff: %q", got)
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if strings.Contains(x, s) {
			return i
		}
	}
	return -1
}

// TestBridgeExportAndRoutes: the owner's export carries every message with
// its media, hashes and links and says the chain holds; after a stored
// message is changed behind the gateway's back, it says where it breaks.
// The bridge's routes refuse anonymous callers and the wrong role.
func TestBridgeExportAndRoutes(t *testing.T) {
	e := newBridgeEnv(t, []string{"laowang:老王"}, nil)
	const openID = "o-evidence"
	e.named(openID, "陈静")
	e.customer(openID, "押金什么时候退")
	e.customerSends(openID, wxsim.ImageMessage(bridgePNG(t, 7)))
	e.waitInbox("laowang", "发来一张图片")
	e.staff("laowang", "验收完当天退")
	e.waitCustomer(openID, "验收完当天退")
	e.settled()
	conv := e.liveConversation(e.memberOf(openID))

	env := &idEnv{srv: e.srv, db: e.db, sim: e.sim}
	owner := env.ownerLogin(t)
	path := fmt.Sprintf("/api/v1/owner/conversations/%d/export", conv.ID)
	st, out := env.call(t, "GET", path, owner, nil)
	if st != 200 || dig(out, "chain", "verified") != true || len(out["messages"].([]any)) != 3 {
		t.Fatalf("export: %d %v", st, dig(out, "chain"))
	}
	msg2 := out["messages"].([]any)[1].(map[string]any)
	if msg2["media_base64"] == nil || msg2["media_sha256"] == "" || msg2["link"] == "" {
		t.Errorf("exported image: %v", msg2)
	}

	code, _ := e.sim.OAuthCode("laowang")
	staffTok := env.tokenOf(t, "POST", "/api/v1/auth/wecom", "", map[string]string{"code": code})
	st, list := env.call(t, "GET", "/api/v1/staff/conversations?live=1&mine=1", staffTok, nil)
	if st != 200 || len(list["conversations"].([]any)) != 1 || dig(list["conversations"].([]any)[0].(map[string]any), "customer_label") != "陈静" {
		t.Errorf("staff list: %d %v", st, list)
	}
	st, tr := env.call(t, "GET", fmt.Sprintf("/api/v1/staff/conversations/%d", conv.ID), staffTok, nil)
	if st != 200 || len(tr["messages"].([]any)) != 3 {
		t.Errorf("transcript: %d %v", st, tr)
	}
	req := httptest.NewRequest("GET", fmt.Sprintf("/api/v1/staff/conversations/%d/media/2", conv.ID), nil)
	req.Header.Set("Authorization", "Bearer "+staffTok)
	resp, body := do(t, e.srv, req)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || len(body) == 0 {
		t.Errorf("media: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	// Change a stored message behind the gateway's back.
	dropChatTriggers(t, e.db)
	if err := e.db.Gorm.Exec("UPDATE chat_messages SET created_at = ? WHERE conversation_id = ? AND seq = 3",
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), conv.ID).Error; err != nil {
		t.Fatal(err)
	}
	_, out = env.call(t, "GET", path, owner, nil)
	if dig(out, "chain", "verified") != false || dig(out, "chain", "break", "seq") != float64(3) || dig(out, "chain", "break", "reason") != "record_changed" {
		t.Errorf("export after tampering: %v", dig(out, "chain"))
	}

	// Every bridge route refuses anonymous callers and the wrong role.
	customer := env.customerLogin(t, "o-walker")
	roles := map[rental.Role]string{rental.RoleOwner: owner, rental.RoleStaff: staffTok, rental.RoleCustomer: customer}
	walked := 0
	for _, r := range e.srv.App().GetRoutes(true) {
		if !strings.Contains(r.Path, "/conversations") || r.Method == "HEAD" {
			continue
		}
		admitted, ok := e.srv.roles[r.Method+" "+r.Path]
		if !ok || len(admitted) == 0 {
			t.Errorf("%s %s not registered with roles", r.Method, r.Path)
			continue
		}
		p := strings.ReplaceAll(strings.ReplaceAll(r.Path, ":id", fmt.Sprint(conv.ID)), ":seq", "2")
		if st, _ := env.call(t, r.Method, p, "", nil); st != 401 {
			t.Errorf("anonymous %s %s: %d", r.Method, r.Path, st)
		}
		for role, tok := range roles {
			in := false
			for _, a := range admitted {
				in = in || a == role
			}
			if st, _ := env.call(t, r.Method, p, tok, nil); in == (st == 403) {
				t.Errorf("%s calling %s %s: %d", role, r.Method, r.Path, st)
			}
		}
		walked++
	}
	if walked != 4 {
		t.Errorf("walked %d bridge routes, want 4", walked)
	}
}

func dropChatTriggers(t *testing.T, db *store.DB) {
	t.Helper()
	for _, tr := range []string{"chat_messages_no_update", "chat_messages_no_delete", "chat_media_no_update", "chat_media_no_delete"} {
		if err := db.Gorm.Exec("DROP TRIGGER " + tr).Error; err != nil {
			t.Fatal(err)
		}
	}
}

// TestBridgeUnknownStaff: a WeCom member who is not registered staff is
// told so; nothing reaches a customer.
func TestBridgeUnknownStaff(t *testing.T) {
	e := newBridgeEnv(t, []string{"laowang:老王"}, nil)
	e.staff("ahua", "#A1 你好")
	e.waitInbox("ahua", "还不是本店登记的店员")
	e.staff("laowang", "你好")
	e.waitInbox("laowang", "还没有当前会话")
	e.staff("laowang", "#A99 你好")
	e.waitInbox("laowang", "没有会话 #A99")
	e.settled()
	if n, _ := e.db.CountChatMessages(context.Background()); n != 0 {
		t.Errorf("%d messages stored", n)
	}
}

// TestBridgeHooks: Presence overrides the /on-/off flag (the presence
// issue plugs in there) and Changed hears about every conversation that
// changed (the staff console's live updates will).
func TestBridgeHooks(t *testing.T) {
	var mu sync.Mutex
	changed := map[rental.ConversationID]int{}
	away := true
	e := newBridgeEnv(t, []string{"laowang:老王"}, func(o *BridgeOptions) {
		o.Presence = func(l rental.StaffLoad) bool { mu.Lock(); defer mu.Unlock(); return l.OnDuty && !away }
		o.Changed = func(ids []rental.ConversationID) {
			mu.Lock()
			defer mu.Unlock()
			for _, id := range ids {
				changed[id]++
			}
		}
		o.AwayText = func(time.Time) string { return "店里 8:00 开门，到时第一时间回复您。" }
	})
	e.customer("o-hooks", "明天几点开门")
	e.waitCustomer("o-hooks", "店里 8:00 开门")
	if bridgeCount(e.inboxTexts("laowang"), "明天几点开门") != 0 {
		t.Error("a staff member away by Presence got the message")
	}
	mu.Lock()
	away = false
	mu.Unlock()
	e.customer("o-hooks", "在吗")
	e.waitInbox("laowang", "明天几点开门") // assigned now, with the backlog
	e.settled()
	conv := e.liveConversation(e.memberOf("o-hooks"))
	mu.Lock()
	defer mu.Unlock()
	if changed[conv.ID] < 4 {
		t.Errorf("Changed heard %d times of %s", changed[conv.ID], conv.Code())
	}
}

// assistantDesk gives a bridge the demo knowledge base's assistant.
func assistantDesk(mode assistant.Mode) func(*BridgeOptions) {
	return func(o *BridgeOptions) {
		kb, err := assistant.New(assistant.DemoKnowledge(), assistant.Options{Now: o.Now})
		if err != nil {
			panic(err)
		}
		o.Assistant = &assistant.Desk{Assistant: kb, Policy: assistant.Policy{Mode: mode}, Records: AnswerRecords{DB: o.DB}, Now: o.Now}
	}
}

// TestBridgeAssistantNobodyOnDuty: with nobody on duty the assistant
// answers in place of the auto-reply, hands over on "转人工", and the first
// staff member back on duty gets the conversation with everything said.
func TestBridgeAssistantNobodyOnDuty(t *testing.T) {
	e := newBridgeEnv(t, []string{"laowang:老王"}, assistantDesk(assistant.ModeUnattended))
	e.staff("laowang", "/off")
	e.waitInbox("laowang", "已下班")
	const openID = "o-ai"
	e.customer(openID, "押金怎么退")
	e.waitCustomer(openID, "原路退回")
	e.settled()
	if n := bridgeCount(e.customerTexts(openID), "客服暂时不在线"); n != 0 {
		t.Errorf("the auto-reply was sent besides the assistant's answer (%d)", n)
	}

	e.customer(openID, "转人工")
	handoff := e.waitCustomer(openID, "这就为您转人工")
	if !strings.Contains(handoff, "店员暂时都不在线") {
		t.Errorf("hand-off message: %q", handoff)
	}
	e.settled()
	if n := len(e.inboxTexts("laowang")); bridgeCount(e.inboxTexts("laowang"), "押金怎么退") != 0 {
		t.Errorf("a message reached off-duty staff (%d texts)", n)
	}

	e.staff("laowang", "/on")
	on := e.waitInbox("laowang", "已上班")
	if !strings.Contains(on, "排队中的会话") {
		t.Errorf("/on: %q", on)
	}
	e.waitInbox("laowang", "押金怎么退")
	e.waitInbox("laowang", "转人工")
	conv := e.liveConversation(e.memberOf(openID))
	if conv.Assignee != "laowang" {
		t.Errorf("after /on the conversation is with %q", conv.Assignee)
	}
	_, msgs := e.transcript(conv.ID)
	var byAssistant int
	for _, m := range msgs {
		if m.Author == rental.AssistantAuthor {
			byAssistant++
		}
	}
	if byAssistant != 2 {
		t.Errorf("the transcript has %d messages by the assistant, want 2 (answer, hand-off)", byAssistant)
	}

	// A person handles it now: the assistant keeps out.
	e.staff("laowang", "您好，押金验收后原路退回")
	e.waitCustomer(openID, "您好，押金验收后原路退回")
	e.customer(openID, "押金什么时候退")
	e.waitInbox("laowang", "押金什么时候退")
	e.settled()
	if n := bridgeCount(e.customerTexts(openID), "验收通过后当场发起退款"); n != 0 {
		t.Error("the assistant answered a conversation a person handles")
	}
}

// TestBridgeAssistantFirst: in "first" mode the assistant answers while
// staff are on duty, and they get the conversation on a hand-off.
func TestBridgeAssistantFirst(t *testing.T) {
	e := newBridgeEnv(t, []string{"laowang:老王"}, assistantDesk(assistant.ModeFirst))
	const openID = "o-first-ai"
	e.customer(openID, "押金怎么退")
	e.waitCustomer(openID, "原路退回")
	e.settled()
	if bridgeCount(e.inboxTexts("laowang"), "押金怎么退") != 0 {
		t.Error("staff got a message the assistant answered")
	}
	e.customer(openID, "转人工")
	e.waitCustomer(openID, "店员马上回复您")
	e.waitInbox("laowang", "押金怎么退")
	e.waitInbox("laowang", "转人工")
	if conv := e.liveConversation(e.memberOf(openID)); conv.Assignee != "laowang" {
		t.Errorf("after the hand-off the conversation is with %q", conv.Assignee)
	}
}
