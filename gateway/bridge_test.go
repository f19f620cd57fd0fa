package gateway

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/sms"
	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/adapters/wechat"
	"github.com/tacklegate/tacklegate/adapters/wechat/msgcrypt"
	"github.com/tacklegate/tacklegate/adapters/wecom"
	"github.com/tacklegate/tacklegate/adapters/wxsim"
	"github.com/tacklegate/tacklegate/rental"
)

// bridgeEnv is a gateway with the bridge, real clients and a real SQLite
// store, talking to the simulator over HTTP in both directions: the
// simulator pushes customers' and staff members' messages to the gateway's
// callbacks, the bridge's processor and an outbox worker run as serve runs
// them.
type bridgeEnv struct {
	t      *testing.T
	sim    *wxsim.Simulator
	dbURL  string
	db     *store.DB
	srv    *Server
	wc     *wechat.Client
	wk     *wecom.Client
	opts   BridgeOptions
	bridge *Bridge
	base   string // the gateway's http://host:port

	mu      sync.Mutex
	running context.CancelFunc
	done    chan struct{}
}

var bridgeKey = []byte("0123456789abcdef0123456789abcdef")

// staff are "userid:name", registered in that order (assignment breaks
// ties by registration order).
func newBridgeEnv(t *testing.T, staff []string, tune func(*BridgeOptions)) *bridgeEnv {
	t.Helper()
	return newBridgeEnvOn(t, storetest.Target{Name: "sqlite"}, staff, tune)
}

// newBridgeEnvOn is newBridgeEnv on a chosen database.
func newBridgeEnvOn(t *testing.T, tg storetest.Target, staff []string, tune func(*BridgeOptions)) *bridgeEnv {
	t.Helper()
	return newBridgeEnvWith(t, tg, staff, tune, nil)
}

// newBridgeEnvWith is newBridgeEnvOn with mount, called before the server
// answers and the bridge runs: to mount more routes and set e.opts.
func newBridgeEnvWith(t *testing.T, tg storetest.Target, staff []string, tune func(*BridgeOptions), mount func(e *bridgeEnv)) *bridgeEnv {
	t.Helper()
	ctx := context.Background()
	cfg := wxsim.DefaultConfig()
	cfg.Rules.WeComPerUserMinute = 1000 // the per-member limit is not what these tests are about
	sim, err := wxsim.Start(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	wc, err := wechat.New(wechat.Config{AppID: cfg.AppID, AppSecret: cfg.AppSecret, APIBase: sim.WeChatBase(), Now: sim.Clock().Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wc.Close() })
	wk, err := wecom.New(wecom.Config{CorpID: cfg.CorpID, Secret: cfg.CorpSecret, AgentID: cfg.AgentID, APIBase: sim.WeComBase(), Now: sim.Clock().Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wk.Close() })
	e := &bridgeEnv{t: t, sim: sim, dbURL: tg.Fresh(t), wc: wc, wk: wk}
	e.db = e.openDB()
	for _, s := range staff {
		userID, name, _ := strings.Cut(s, ":")
		if _, err := e.db.SaveStaff(ctx, userID, name, true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := SeedOwner(ctx, e.db, "owner", "fishing-shop-2026"); err != nil {
		t.Fatal(err)
	}
	mp, _ := msgcrypt.New(cfg.Token, cfg.EncodingAESKey, cfg.AppID)
	wcr, _ := msgcrypt.New(cfg.WeComToken, cfg.WeComAESKey, cfg.CorpID)
	e.srv, _ = newTestServer(t, Options{
		Callbacks: &Callbacks{WeChat: mp, WeCom: wcr, WeComCorpID: cfg.CorpID, WeComAgentID: cfg.AgentID,
			MaxSkew: 5 * time.Minute, Inbound: e.db, Now: sim.Clock().Now},
		Identity: &Identity{DB: e.db, DataKey: bridgeKey, WeChat: wc, WeCom: wk, SMS: sms.NewLogSender(slogTo(&syncBuffer{})),
			SMSLimits: DefaultSMSLimits, OwnerUsername: "owner"},
	})
	e.opts = BridgeOptions{DB: e.db, WeChat: wc, WeCom: wk, Now: sim.Clock().Now, Poll: 10 * time.Millisecond, BaseDelay: 20 * time.Millisecond,
		Logger: e.srv.logger}
	if tune != nil {
		tune(&e.opts)
	}
	if e.bridge, err = NewBridge(e.opts); err != nil {
		t.Fatal(err)
	}
	e.srv.MountBridge(e.bridge)
	if mount != nil {
		mount(e)
	}
	base := startHTTP(t, e.srv)
	e.base = base
	sim.SetPushURL(base + "/callbacks/wechat")
	sim.SetWeComCallbackURL(base + "/callbacks/wecom")
	e.start(e.db)
	t.Cleanup(e.stop)
	return e
}

func (e *bridgeEnv) openDB() *store.DB {
	e.t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, e.dbURL, store.Options{CreateDir: true})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		e.t.Fatal(err)
	}
	if err := db.UseDataKey(ctx, bridgeKey); err != nil {
		e.t.Fatal(err)
	}
	return db
}

// start runs a bridge processor and an outbox worker on db, as serve does.
func (e *bridgeEnv) start(db *store.DB) {
	e.mu.Lock()
	defer e.mu.Unlock()
	o := e.opts
	o.DB = db
	b, err := NewBridge(o)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	w := &store.OutboxWorker{DB: db, Handlers: b.Handlers(), Poll: 10 * time.Millisecond, BaseDelay: 30 * time.Millisecond, Lease: 2 * time.Second, Logger: o.Logger}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); b.Run(ctx) }()
	go func() { defer wg.Done(); w.Run(ctx) }()
	go func() { wg.Wait(); close(done) }()
	e.running, e.done = cancel, done
}

// stop stops the processor and the worker and waits for them.
func (e *bridgeEnv) stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.running != nil {
		e.running()
		<-e.done
		e.running = nil
	}
}

func (e *bridgeEnv) customer(openID, text string) {
	e.t.Helper()
	e.customerSends(openID, wxsim.TextMessage(text))
}

func (e *bridgeEnv) customerSends(openID string, m wxsim.Message) {
	e.t.Helper()
	p, err := e.sim.CustomerSends(context.Background(), openID, m)
	if err != nil || !p.Delivered() {
		e.t.Fatalf("customer %s sends %+v: %v, outcome %q", openID, m.Type, err, p.Outcome)
	}
}

func (e *bridgeEnv) staff(userID, text string) {
	e.t.Helper()
	e.staffSends(userID, wxsim.TextMessage(text))
}

func (e *bridgeEnv) staffSends(userID string, m wxsim.Message) {
	e.t.Helper()
	p, err := e.sim.StaffSends(context.Background(), userID, m)
	if err != nil || !p.Delivered() {
		e.t.Fatalf("staff %s sends %+v: %v, outcome %q", userID, m.Type, err, p.Outcome)
	}
}

// named makes the customer a member with a name, as an imported member
// would be, before their first message.
func (e *bridgeEnv) named(openID, name string) rental.Member {
	e.t.Helper()
	m, _, _, err := e.db.LoginWeChat(context.Background(), e.wc.AppID(), openID, "")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.db.Gorm.Exec("UPDATE members SET name = ? WHERE id = ?", name, m.ID).Error; err != nil {
		e.t.Fatal(err)
	}
	m.Name = name
	return m
}

// bridgeEventually waits for cond, failing with what after 15 s.
func bridgeEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// inboxTexts are the texts a staff member received.
func (e *bridgeEnv) inboxTexts(userID string) []string {
	var out []string
	for _, d := range e.sim.StaffInbox(userID) {
		if d.MsgType == "text" {
			out = append(out, d.Content)
		}
	}
	return out
}

func (e *bridgeEnv) waitInbox(userID, contains string) string {
	e.t.Helper()
	var found string
	bridgeEventually(e.t, userID+" to receive "+contains, func() bool {
		for _, s := range e.inboxTexts(userID) {
			if strings.Contains(s, contains) {
				found = s
				return true
			}
		}
		return false
	})
	return found
}

func (e *bridgeEnv) customerTexts(openID string) []string {
	var out []string
	for _, d := range e.sim.Delivered(openID) {
		if d.Kind == "custom" && d.MsgType == "text" {
			out = append(out, d.Text)
		}
	}
	return out
}

func (e *bridgeEnv) waitCustomer(openID, contains string) string {
	e.t.Helper()
	var found string
	bridgeEventually(e.t, openID+" to receive "+contains, func() bool {
		for _, s := range e.customerTexts(openID) {
			if strings.Contains(s, contains) {
				found = s
				return true
			}
		}
		return false
	})
	return found
}

// settled waits until every stored callback is processed and the outbox is
// empty.
func (e *bridgeEnv) settled() {
	e.t.Helper()
	bridgeEventually(e.t, "the bridge to settle", func() bool {
		refs, err := e.db.PendingInbound(context.Background(), []rental.Channel{rental.ChannelWeChat, rental.ChannelWeCom}, 10)
		st, err2 := e.db.OutboxCounts(context.Background())
		return err == nil && err2 == nil && len(refs) == 0 && st.Pending == 0
	})
}

func bridgeCount(list []string, s string) int {
	n := 0
	for _, x := range list {
		if strings.Contains(x, s) {
			n++
		}
	}
	return n
}

func bridgePNG(t *testing.T, shade uint8) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for x := range 8 {
		for y := range 8 {
			img.Set(x, y, color.RGBA{R: shade, G: uint8(x * 16), B: uint8(y * 16), A: 0xff})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func bridgeAMR(frames int) []byte {
	b := []byte("#!AMR\n")
	for i := range frames {
		b = append(b, 0x3C)
		frame := make([]byte, 31)
		frame[0] = byte(i)
		b = append(b, frame...)
	}
	return b
}

func (e *bridgeEnv) transcript(id rental.ConversationID) (rental.Conversation, []rental.ChatMessage) {
	e.t.Helper()
	c, msgs, err := e.db.Transcript(context.Background(), id, true)
	if err != nil {
		e.t.Fatal(err)
	}
	return c, msgs
}

func (e *bridgeEnv) liveConversation(member rental.MemberID) rental.Conversation {
	e.t.Helper()
	list, err := e.db.Conversations(context.Background(), store.ConversationFilter{Live: true, Member: member})
	if err != nil || len(list) != 1 {
		e.t.Fatalf("live conversations of member %d: %d, %v", member, len(list), err)
	}
	return list[0].Conversation
}

// TestBridgeTextImageVoiceBothWays: text, image and voice from a customer
// reach the assigned staff member in WeCom; text, image and voice from the
// staff member reach the customer; everything is in the conversation,
// sealed and chained, with its delivery status.
func TestBridgeTextImageVoiceBothWays(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) { testBridgeBothWays(t, tg) })
	}
}

func testBridgeBothWays(t *testing.T, tg storetest.Target) {
	e := newBridgeEnvOn(t, tg, []string{"laowang:老王"}, nil)
	const openID = "o-zhang"
	member := e.named(openID, "张先生")

	e.customer(openID, "鱼竿卡住了怎么办")
	first := e.waitInbox("laowang", "鱼竿卡住了怎么办")
	conv := e.liveConversation(member.ID)
	if want := "[#" + conv.Code() + " 张先生] 鱼竿卡住了怎么办"; first != want {
		t.Errorf("staff got %q, want %q", first, want)
	}
	photo, voice := bridgePNG(t, 1), bridgeAMR(150)
	e.customerSends(openID, wxsim.ImageMessage(photo))
	e.customerSends(openID, wxsim.VoiceMessage(voice))
	bridgeEventually(t, "the photo and the voice in WeCom", func() bool {
		var img, vo bool
		for _, d := range e.sim.StaffInbox("laowang") {
			img = img || (d.MsgType == "image" && bytes.Equal(d.Media, photo))
			vo = vo || (d.MsgType == "voice" && bytes.Equal(d.Media, voice))
		}
		return img && vo
	})
	e.waitInbox("laowang", "发来一段语音（3秒）")
	e.customerSends(openID, wxsim.PageMessage("碳素鲫鱼竿 3.6米", "pages/item/item?id=12"))
	e.waitInbox("laowang", "[小程序卡片] 碳素鲫鱼竿 3.6米 pages/item/item?id=12")

	e.staff("laowang", "把竿子拧松再收线")
	e.waitCustomer(openID, "把竿子拧松再收线")
	staffPhoto := bridgePNG(t, 200)
	e.staffSends("laowang", wxsim.ImageMessage(staffPhoto))
	e.staffSends("laowang", wxsim.VoiceMessage(bridgeAMR(100)))
	bridgeEventually(t, "the staff photo in WeChat", func() bool {
		for _, d := range e.sim.Delivered(openID) {
			if d.MsgType == "image" && bytes.Equal(d.Media, staffPhoto) {
				return true
			}
		}
		return false
	})
	voiceNote := e.waitCustomer(openID, "语音")
	if !strings.Contains(voiceNote, "老王") || !strings.Contains(voiceNote, "2 秒") {
		t.Errorf("voice note text: %q", voiceNote)
	}
	e.settled()

	conv, msgs := e.transcript(conv.ID)
	if len(msgs) != 7 {
		t.Fatalf("%d messages in the conversation, want 7", len(msgs))
	}
	kinds := []rental.ChatKind{rental.ChatText, rental.ChatImage, rental.ChatVoice, rental.ChatPage, rental.ChatText, rental.ChatImage, rental.ChatVoice}
	for i, m := range msgs {
		if m.Kind != kinds[i] {
			t.Errorf("message %d is %s, want %s", i+1, m.Kind, kinds[i])
		}
		side := m.ToStaff
		if i >= 4 {
			side = m.ToCustomer
		}
		if side.Status != rental.DeliverySent {
			t.Errorf("message %d: delivery %+v", i+1, side)
		}
	}
	if !bytes.Equal(msgs[1].Media, photo) || msgs[1].MediaType != "image/png" {
		t.Errorf("customer photo stored as %q, %d bytes", msgs[1].MediaType, len(msgs[1].Media))
	}
	if !bytes.Equal(msgs[2].Media, voice) || msgs[2].VoiceFormat != "amr" || msgs[2].Duration != 3*time.Second {
		t.Errorf("customer voice stored as %q %v, %d bytes", msgs[2].VoiceFormat, msgs[2].Duration, len(msgs[2].Media))
	}
	if msgs[3].Text != "碳素鲫鱼竿 3.6米\npages/item/item?id=12" || len(msgs[3].Media) == 0 {
		t.Errorf("page card: %q with %d bytes of thumbnail", msgs[3].Text, len(msgs[3].Media))
	}
	if v := msgs[6]; v.Author != rental.StaffAuthor("laowang") || len(v.Media) == 0 || !strings.Contains(v.ToCustomer.Reason, "不支持语音") {
		t.Errorf("staff voice note: %+v", v)
	}
	if conv.Assignee != "laowang" || conv.LastCustomerAt.IsZero() {
		t.Errorf("conversation: %+v", conv)
	}
	if brk := conv.VerifyChain(msgs); brk != nil {
		t.Errorf("chain: %v", brk)
	}
	// Nothing went twice.
	if n := bridgeCount(e.customerTexts(openID), "把竿子拧松再收线"); n != 1 {
		t.Errorf("reply delivered %d times", n)
	}
	if n := bridgeCount(e.inboxTexts("laowang"), "鱼竿卡住了怎么办"); n != 1 {
		t.Errorf("customer text forwarded %d times", n)
	}
}

func TestDemoReplyTemplateIsTheSimulators(t *testing.T) {
	if DemoReplyTemplate != wxsim.DemoTemplateReturnReminder {
		t.Fatal("DefaultSubscribeNotice must use the demo mini-program's template")
	}
	data := DefaultSubscribeNotice().Data(NoticeFacts{Code: "A7", Excerpt: "一二三四五六七八九十一二三四五六七八九十一二", At: time.Date(2026, 5, 1, 1, 0, 0, 0, time.UTC)})
	if data["time2"] != "2026-05-01 09:00" || len([]rune(data["thing4"])) != 20 || data["character_string3"] != "A7" {
		t.Errorf("notice data: %v", data)
	}
}
