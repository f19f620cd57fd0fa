package gateway

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/tacklegate/tacklegate/adapters/sms"
	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/adapters/wechat"
	"github.com/tacklegate/tacklegate/adapters/wechat/msgcrypt"
	"github.com/tacklegate/tacklegate/adapters/wecom"
	"github.com/tacklegate/tacklegate/adapters/wxsim"
	"github.com/tacklegate/tacklegate/media"
	"github.com/tacklegate/tacklegate/rental"
)

// callsEnv is bridgeEnv with video rooms and the call flow: the gateway
// over HTTP with /ws, the simulator, the bridge, the outbox worker with the
// call handlers, and the call flow's event and timeout job.
type callsEnv struct {
	*bridgeEnv
	calls *Calls
	rooms *media.Manager
	base  string

	runMu  sync.Mutex
	stopFn func()
}

func newCallsEnv(t *testing.T, tg storetest.Target, staff []string, tune func(*CallsOptions), mediaTune ...func(*media.Config)) *callsEnv {
	t.Helper()
	ctx := context.Background()
	cfg := wxsim.DefaultConfig()
	cfg.Rules.WeComPerUserMinute = 1000
	sim, err := wxsim.Start(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	be := newBridgeClients(t, sim, cfg)
	be.dbURL = tg.Fresh(t)
	be.db = be.openDB()
	for _, s := range staff {
		userID, name, _ := strings.Cut(s, ":")
		if _, err := be.db.SaveStaff(ctx, userID, name, true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := SeedOwner(ctx, be.db, "owner", "fishing-shop-2026"); err != nil {
		t.Fatal(err)
	}
	co := CallsOptions{DB: be.db, WeCom: be.wk, PublicURL: "http://shop.example", Poll: 20 * time.Millisecond, Logger: slogTo(&syncBuffer{})}
	if tune != nil {
		tune(&co)
	}
	calls, err := NewCalls(co)
	if err != nil {
		t.Fatal(err)
	}
	mc := media.Config{IncludeLoopback: true, Hooks: calls.MediaHooks(), EmptyRoomGrace: 10 * time.Second}
	for _, f := range mediaTune {
		f(&mc)
	}
	rooms, err := media.NewManager(mc)
	if err != nil {
		t.Fatal(err)
	}
	mp, _ := msgcrypt.New(cfg.Token, cfg.EncodingAESKey, cfg.AppID)
	wcr, _ := msgcrypt.New(cfg.WeComToken, cfg.WeComAESKey, cfg.CorpID)
	be.srv, _ = newTestServer(t, Options{
		BodyLimit: 1 << 20,
		Callbacks: &Callbacks{WeChat: mp, WeCom: wcr, WeComCorpID: cfg.CorpID, WeComAgentID: cfg.AgentID,
			MaxSkew: 5 * time.Minute, Inbound: be.db, Now: sim.Clock().Now},
		Identity: &Identity{DB: be.db, DataKey: bridgeKey, WeChat: be.wc, WeCom: be.wk, SMS: sms.NewLogSender(slogTo(&syncBuffer{})),
			SMSLimits: DefaultSMSLimits, OwnerUsername: "owner"},
		Rooms: &Rooms{Manager: rooms},
	})
	be.opts = BridgeOptions{DB: be.db, WeChat: be.wc, WeCom: be.wk, Now: sim.Clock().Now, Poll: 10 * time.Millisecond,
		BaseDelay: 20 * time.Millisecond, Logger: be.srv.logger, Video: calls.Video}
	if be.bridge, err = NewBridge(be.opts); err != nil {
		t.Fatal(err)
	}
	be.srv.MountBridge(be.bridge)
	be.srv.MountCalls(calls, rooms)
	e := &callsEnv{bridgeEnv: be, calls: calls, rooms: rooms}
	e.base = startHTTP(t, be.srv)
	t.Cleanup(rooms.Close) // before the server stops: sockets end first
	sim.SetPushURL(e.base + "/callbacks/wechat")
	sim.SetWeComCallbackURL(e.base + "/callbacks/wecom")
	e.run(true)
	t.Cleanup(e.stop)
	return e
}

// newBridgeClients is the part of newBridgeEnvOn that makes the clients.
func newBridgeClients(t *testing.T, sim *wxsim.Simulator, cfg wxsim.Config) *bridgeEnv {
	t.Helper()
	wc, wk := simClients(t, sim, cfg)
	return &bridgeEnv{t: t, sim: sim, wc: wc, wk: wk}
}

// run starts the bridge, the outbox worker and, with callsJob, the call
// flow's job.
func (e *callsEnv) run(callsJob bool) {
	e.runMu.Lock()
	defer e.runMu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	handlers := e.bridge.Handlers()
	maps.Copy(handlers, e.calls.Handlers())
	w := &store.OutboxWorker{DB: e.db, Handlers: handlers, Poll: 10 * time.Millisecond, BaseDelay: 30 * time.Millisecond, Lease: 2 * time.Second, Logger: e.opts.Logger}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); e.bridge.Run(ctx) }()
	go func() { defer wg.Done(); w.Run(ctx) }()
	if callsJob {
		wg.Add(1)
		go func() { defer wg.Done(); e.calls.Run(ctx) }()
	}
	e.stopFn = func() { cancel(); wg.Wait() }
}

func (e *callsEnv) stop() {
	e.runMu.Lock()
	defer e.runMu.Unlock()
	if e.stopFn != nil {
		e.stopFn()
		e.stopFn = nil
	}
}

func (e *callsEnv) login(openID string) string {
	e.t.Helper()
	var out struct {
		Tokens Tokens `json:"tokens"`
	}
	if st := postAuth(e.t, e.base+"/api/v1/auth/wechat", "", map[string]string{"code": e.sim.Login(openID)}, &out); st != 200 {
		e.t.Fatalf("customer login: %d", st)
	}
	return out.Tokens.AccessToken
}

// staffLogin signs a staff member in the way the room page does: the WeCom
// OAuth code the textcard's link carries.
func (e *callsEnv) staffLogin(userID string) string {
	e.t.Helper()
	code, err := e.sim.OAuthCode(userID)
	if err != nil {
		e.t.Fatal(err)
	}
	var out struct {
		Tokens Tokens `json:"tokens"`
	}
	if st := postAuth(e.t, e.base+"/api/v1/auth/wecom", "", map[string]string{"code": code}, &out); st != 200 {
		e.t.Fatalf("staff login: %d", st)
	}
	return out.Tokens.AccessToken
}

func (e *callsEnv) call(id int64) store.Call {
	e.t.Helper()
	c, err := e.db.Call(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *callsEnv) waitState(id int64, state string) store.Call {
	e.t.Helper()
	var c store.Call
	bridgeEventually(e.t, "call "+strconv.FormatInt(id, 10)+" "+state, func() bool {
		c = e.call(id)
		return c.State == state
	})
	return c
}

// dial opens the room's signaling with a room token and reads "joined".
func (e *callsEnv) dial(roomToken string) *websocket.Conn {
	e.t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.base, "http")+"/ws?token="+url.QueryEscape(roomToken), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { ws.Close() })
	readSignal(e.t, ws, "joined")
	return ws
}

func (e *callsEnv) textcards(userID string) []*wxsim.TextCard {
	var out []*wxsim.TextCard
	for _, d := range e.sim.StaffInbox(userID) {
		if d.MsgType == "textcard" && d.TextCard != nil {
			out = append(out, d.TextCard)
		}
	}
	return out
}

type startOut struct {
	CallID  int64  `json:"call_id"`
	RoomID  string `json:"room_id"`
	Kind    string `json:"kind"`
	Token   string `json:"token"`
	RoomURL string `json:"room_url"`
}

// TestCustomerCallRingsStaffAnsweredEndedRated: a customer's video call
// from a quick-help entry rings the staff member of their conversation in
// WeCom with a textcard to the room page; that staff member signs in with
// the OAuth code, joins, and the call is answered; the customer hangs up
// and it has ended; the customer rates it once. Illegal changes are
// conflicts naming the state.
func TestCustomerCallRingsStaffAnsweredEndedRated(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) { testCustomerCall(t, tg) })
	}
}

func testCustomerCall(t *testing.T, tg storetest.Target) {
	e := newCallsEnv(t, tg, []string{"laowang:老王", "xiaoli:小李"}, nil)
	zhang := e.named("o-zhang", "张伟")
	e.staff("xiaoli", "/on")
	e.waitInbox("xiaoli", "已上班")
	e.customer("o-zhang", "鱼线怎么装？")
	e.waitInbox("laowang", "鱼线怎么装")
	cust := e.login("o-zhang")

	var bad map[string]any
	if st := postAuth(t, e.base+"/api/v1/calls", cust, map[string]any{"kind": "hologram"}, &bad); st != 400 {
		t.Errorf("unknown kind: %d %v", st, bad)
	}
	var s startOut
	before := time.Now().UTC()
	if st := postAuth(t, e.base+"/api/v1/calls", cust, map[string]any{"kind": "video", "entry_id": "teach-line", "purpose": "guidance"}, &s); st != 200 {
		t.Fatalf("start: %d", st)
	}
	if s.CallID == 0 || !strings.HasPrefix(s.RoomID, "r-") || s.Token == "" || s.RoomURL != "/room/"+s.RoomID+"?t="+url.QueryEscape(s.Token) {
		t.Fatalf("start answer: %+v", s)
	}
	c := e.call(s.CallID)
	if c.State != store.CallRinging || c.MemberID != zhang.ID || c.Source != CallSourceQuickHelp || c.EntryID != "teach-line" ||
		c.Kind != "video" || c.StartedAt.Before(before.Add(-time.Second)) || len(c.Rung) != 1 || c.Rung[0] != "laowang" {
		t.Fatalf("call row: %+v", c)
	}

	// The assigned staff member (not the colleague on duty) gets the card.
	bridgeEventually(t, "the ringing textcard", func() bool { return len(e.textcards("laowang")) == 1 })
	card := e.textcards("laowang")[0]
	if card.URL != "http://shop.example/room/"+s.RoomID || !strings.Contains(card.Title, "视频") ||
		!strings.Contains(card.Description, "张伟") || !strings.Contains(card.Description, "使用指导") || card.BtnTxt != "接听" {
		t.Errorf("textcard: %+v", card)
	}
	if n := len(e.textcards("xiaoli")); n != 0 {
		t.Errorf("the colleague was rung too (%d cards)", n)
	}

	// The customer waits in the room; the staff member opens the link.
	custWS := e.dial(s.Token)
	if st := e.call(s.CallID).State; st != store.CallRinging {
		t.Fatalf("one person in the room: %s", st)
	}
	staffTok := e.staffLogin("laowang")
	var joined struct {
		Token string `json:"token"`
	}
	if st := postAuth(t, e.base+"/api/v1/rooms/"+s.RoomID+"/join", staffTok, nil, &joined); st != 200 {
		t.Fatalf("staff join: %d", st)
	}
	staffWS := e.dial(joined.Token)
	readSignal(t, custWS, "participant-joined")
	c = e.waitState(s.CallID, store.CallAnswered)
	if c.Staff != "laowang" || c.AnsweredAt == nil || c.AnsweredAt.Before(c.StartedAt) {
		t.Errorf("answered: %+v", c)
	}

	// Declining an answered call is a conflict that names the state.
	var conflict errJSON
	if st := postAuth(t, e.base+"/api/v1/calls/"+strconv.FormatInt(s.CallID, 10)+"/decline", staffTok, nil, &conflict); st != 409 ||
		!strings.Contains(conflict.Error.Message, "通话中") {
		t.Errorf("decline while answered: %d %+v", st, conflict)
	}
	// Rating before the end is fine only once; rate after.
	custWS.WriteJSON(media.Signal{Type: "leave"}) //nolint:errcheck
	c = e.waitState(s.CallID, store.CallEnded)
	if c.EndedAt == nil || c.EndedAt.Before(*c.AnsweredAt) || c.EndedReason != "left" {
		t.Errorf("ended: %+v", c)
	}
	readSignal(t, staffWS, "room-closed") // one hang-up ends the call for both

	id := strconv.FormatInt(s.CallID, 10)
	if st := postAuth(t, e.base+"/api/v1/calls/"+id+"/rate", cust, map[string]int{"score": 9}, nil); st != 400 {
		t.Errorf("score 9: %d", st)
	}
	other := e.login("o-other")
	if st := postAuth(t, e.base+"/api/v1/calls/"+id+"/rate", other, map[string]int{"score": 1}, nil); st != 404 {
		t.Errorf("another customer rates the call: %d", st)
	}
	// A room token rates only its own call, and only a customer's.
	if st := postAuth(t, e.base+"/api/v1/calls/"+id+"/rate-with-token", "", map[string]any{"token": joined.Token, "score": 1}, nil); st != 401 {
		t.Errorf("rating with the staff member's token: %d", st)
	}
	if st := postAuth(t, e.base+"/api/v1/calls/"+id+"/rate-with-token", "", map[string]any{"token": s.Token + "x", "score": 1}, nil); st != 401 {
		t.Errorf("rating with a forged token: %d", st)
	}
	var view callView
	if st := postAuth(t, e.base+"/api/v1/calls/"+id+"/rate", cust, map[string]int{"score": 5}, &view); st != 200 || view.Rating != 5 {
		t.Errorf("rate: %d %+v", st, view)
	}
	if st := postAuth(t, e.base+"/api/v1/calls/"+id+"/rate", cust, map[string]int{"score": 4}, nil); st != 409 {
		t.Errorf("second rating: %d", st)
	}
	if c := e.call(s.CallID); c.Rating != 5 || c.RatedAt == nil || c.Duration() <= 0 {
		t.Errorf("rated: %+v", c)
	}
	// A finished call cannot be joined again; another customer's is not there.
	if st := postAuth(t, e.base+"/api/v1/calls/"+s.RoomID+"/join", cust, nil, &conflict); st != 409 || !strings.Contains(conflict.Error.Message, "已结束") {
		t.Errorf("joining an ended call: %d %+v", st, conflict)
	}
	if st := postAuth(t, e.base+"/api/v1/calls/"+id+"/join", other, nil, nil); st != 404 {
		t.Errorf("another customer joins: %d", st)
	}
	// The customer sees their call by room id; staff see it in the list.
	if st := getAuth(t, e.base+"/api/v1/calls/"+s.RoomID, cust, &view); st != 200 || view.State != "ended" || view.StateName != "已结束" {
		t.Errorf("GET by room: %d %+v", st, view)
	}
	var list struct {
		Calls []callView `json:"calls"`
	}
	if st := getAuth(t, e.base+"/api/v1/calls", staffTok, &list); st != 200 || len(list.Calls) != 1 {
		t.Errorf("staff list: %d %+v", st, list)
	}
	if st := getAuth(t, e.base+"/api/v1/calls", other, &list); st != 200 || len(list.Calls) != 0 {
		t.Errorf("another customer's list: %d %+v", st, list)
	}
}

// TestCallMissedAfterTimeoutAcrossRestart: nobody answers; the timeout job
// (started only after the ringing time has passed, as after a restart)
// marks the call missed, closes the room and tells the staff member.
func TestCallMissedAfterTimeoutAcrossRestart(t *testing.T) {
	e := newCallsEnv(t, storetest.Target{Name: "sqlite"}, []string{"laowang:老王"}, func(o *CallsOptions) { o.RingTimeout = 300 * time.Millisecond })
	e.staff("laowang", "/on")
	e.waitInbox("laowang", "已上班")
	e.stop()
	e.run(false) // the call flow's job is down
	cust := e.login("o-zhang")
	var s startOut
	if st := postAuth(t, e.base+"/api/v1/calls", cust, map[string]any{"kind": "voice"}, &s); st != 200 {
		t.Fatalf("start: %d", st)
	}
	if r, ok := e.rooms.Room(s.RoomID); !ok || !r.Info().AudioOnly {
		t.Fatalf("a voice call's room is not audio-only")
	}
	ws := e.dial(s.Token)
	time.Sleep(400 * time.Millisecond) // past the ringing time, with nobody to notice
	if st := e.call(s.CallID).State; st != store.CallRinging {
		t.Fatalf("without the job: %s", st)
	}
	e.stop()
	e.run(true)
	c := e.waitState(s.CallID, store.CallMissed)
	if c.EndedReason != "timeout" || c.AnsweredAt != nil || c.EndedAt == nil || c.EndedAt.Sub(c.StartedAt) < 300*time.Millisecond {
		t.Errorf("missed: %+v", c)
	}
	readSignal(t, ws, "room-closed")
	e.waitInbox("laowang", "未接来电")
	var conflict errJSON
	if st := postAuth(t, e.base+"/api/v1/calls/"+strconv.FormatInt(s.CallID, 10)+"/cancel", cust, nil, &conflict); st != 409 ||
		!strings.Contains(conflict.Error.Message, "未接听") {
		t.Errorf("cancel a missed call: %d %+v", st, conflict)
	}
}

// TestCallMissedWhenTheRoomEmpties: a call whose room closes before anyone
// answers (the caller never came, or left without hanging up and did not
// come back) is missed at once, and the staff rung are told.
func TestCallMissedWhenTheRoomEmpties(t *testing.T) {
	e := newCallsEnv(t, storetest.Target{Name: "sqlite"}, []string{"laowang:老王"}, nil,
		func(c *media.Config) { c.EmptyRoomGrace = 200 * time.Millisecond })
	e.staff("laowang", "/on")
	e.waitInbox("laowang", "已上班")
	cust := e.login("o-zhang")
	var s startOut
	if st := postAuth(t, e.base+"/api/v1/calls", cust, map[string]any{"kind": "video"}, &s); st != 200 {
		t.Fatalf("start: %d", st)
	}
	c := e.waitState(s.CallID, store.CallMissed)
	if c.EndedReason != "room_empty" {
		t.Errorf("missed: %+v", c)
	}
	e.waitInbox("laowang", "未接来电")
}

// TestStaffStartsCalls: from the API and from /video in WeCom, the customer
// is invited in their conversation with a link carrying their token; the
// customer declines one, the staff member cancels the other; who may do
// what is checked.
func TestStaffStartsCalls(t *testing.T) {
	e := newCallsEnv(t, storetest.Target{Name: "sqlite"}, []string{"laowang:老王"}, nil)
	e.named("o-zhang", "张伟")
	e.staff("laowang", "/on")
	e.waitInbox("laowang", "已上班")
	e.customer("o-zhang", "在吗")
	e.waitInbox("laowang", "在吗")
	cust := e.login("o-zhang")
	staffTok := e.staffLogin("laowang")
	conv := e.liveConversation(e.named("o-zhang", "张伟").ID)
	code := conv.Code()

	if st := postAuth(t, e.base+"/api/v1/staff/calls", cust, map[string]any{"conversation": code}, nil); st != 403 {
		t.Errorf("a customer uses the staff route: %d", st)
	}
	if st := postAuth(t, e.base+"/api/v1/staff/calls", staffTok, map[string]any{"conversation": "B9"}, nil); st != 400 {
		t.Errorf("bad conversation code: %d", st)
	}
	var s startOut
	if st := postAuth(t, e.base+"/api/v1/staff/calls", staffTok, map[string]any{"conversation": code, "kind": "voice"}, &s); st != 200 || s.Kind != "voice" {
		t.Fatalf("staff start: %d %+v", st, s)
	}
	invite := e.waitCustomer("o-zhang", "/room/"+s.RoomID+"?t=")
	if !strings.Contains(invite, "语音通话") || !strings.HasPrefix(invite[strings.Index(invite, "http"):], "http://shop.example/room/") {
		t.Errorf("invitation: %q", invite)
	}
	id := strconv.FormatInt(s.CallID, 10)
	if st := postAuth(t, e.base+"/api/v1/calls/"+id+"/cancel", cust, nil, nil); st != 403 {
		t.Errorf("the callee cancels: %d", st)
	}
	var view callView
	if st := postAuth(t, e.base+"/api/v1/calls/"+id+"/decline", cust, nil, &view); st != 200 || view.State != "declined" || view.EndedAt == nil {
		t.Fatalf("decline: %d %+v", st, view)
	}
	if _, ok := e.rooms.Room(s.RoomID); ok {
		t.Errorf("the declined call's room is still open")
	}

	// /video in WeCom: the same invitation, recorded as a staff command.
	e.staff("laowang", "/video")
	staffLink := e.waitInbox("laowang", "已邀请")
	e.waitCustomer("o-zhang", "店员邀请您视频通话")
	var calls struct {
		Calls []callView `json:"calls"`
	}
	bridgeEventually(t, "the /video call recorded", func() bool {
		return getAuth(t, e.base+"/api/v1/calls", staffTok, &calls) == 200 && len(calls.Calls) == 2
	})
	v := calls.Calls[0]
	if v.Source != CallSourceCommand || v.State != "ringing" || v.Staff != "laowang" || v.Conversation != code || !strings.Contains(staffLink, "/room/"+v.RoomID+"?t=") {
		t.Errorf("/video call: %+v, staff link %q", v, staffLink)
	}
	if st := postAuth(t, e.base+"/api/v1/calls/"+strconv.FormatInt(v.ID, 10)+"/cancel", staffTok, nil, &view); st != 200 || view.State != "cancelled" {
		t.Errorf("cancel: %d %+v", st, view)
	}
}

// TestCallRoutesRefuseAnonymousAndWrongRole walks the call routes the way
// TestEveryRouteRefusesAnonymousAndWrongRole walks the others.
func TestCallRoutesRefuseAnonymousAndWrongRole(t *testing.T) {
	e := newCallsEnv(t, storetest.Target{Name: "sqlite"}, []string{"laowang:老王"}, nil)
	tokens := map[rental.Role]string{rental.RoleCustomer: e.login("o-walker"), rental.RoleStaff: e.staffLogin("laowang")}
	checked := 0
	for key, roles := range e.srv.roles {
		method, path, _ := strings.Cut(key, " ")
		if !strings.Contains(path, "/calls") || len(roles) == 0 {
			continue
		}
		p := e.base + strings.ReplaceAll(path, ":id", "1")
		if st := doAuth(t, method, p, ""); st != 401 {
			t.Errorf("anonymous %s: %d", key, st)
		}
		for role, tok := range tokens {
			admitted := false
			for _, r := range roles {
				admitted = admitted || r == role
			}
			if st := doAuth(t, method, p, tok); !admitted && st != 403 {
				t.Errorf("%s calling %s: %d", role, key, st)
			}
		}
		checked++
	}
	if checked != 9 { // and the public rate-with-token
		t.Errorf("%d call routes walked, want 9", checked)
	}
}

func simClients(t *testing.T, sim *wxsim.Simulator, cfg wxsim.Config) (*wechat.Client, *wecom.Client) {
	t.Helper()
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
	return wc, wk
}

func getAuth(t *testing.T, url, token string, out any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out) //nolint:errcheck
	}
	return resp.StatusCode
}

func doAuth(t *testing.T, method, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRingingCardWithStaffTokens: without WeCom OAuth (the demo), each
// staff member rung gets a card of their own whose link carries their room
// token; opening it answers the call.
func TestRingingCardWithStaffTokens(t *testing.T) {
	e := newCallsEnv(t, storetest.Target{Name: "sqlite"}, []string{"laowang:老王", "xiaoli:小李"}, func(o *CallsOptions) { o.StaffTokenLinks = true })
	for _, s := range []string{"laowang", "xiaoli"} {
		e.staff(s, "/on")
		e.waitInbox(s, "已上班")
	}
	cust := e.login("o-zhang")
	var s startOut
	if st := postAuth(t, e.base+"/api/v1/calls", cust, map[string]any{"kind": "voice"}, &s); st != 200 {
		t.Fatalf("start: %d", st)
	}
	var cards []*wxsim.TextCard
	bridgeEventually(t, "a card for each staff member on duty", func() bool {
		cards = append(e.textcards("laowang"), e.textcards("xiaoli")...)
		return len(cards) == 2
	})
	if cards[0].URL == cards[1].URL || !strings.Contains(cards[0].Title, "语音") {
		t.Errorf("cards: %+v %+v", cards[0], cards[1])
	}
	u, err := url.Parse(cards[1].URL)
	if err != nil || u.Path != "/room/"+s.RoomID || u.Query().Get("t") == "" {
		t.Fatalf("xiaoli's link: %q", cards[1].URL)
	}
	e.dial(s.Token)
	e.dial(u.Query().Get("t"))
	if c := e.waitState(s.CallID, store.CallAnswered); c.Staff != "xiaoli" {
		t.Errorf("answered by %q", c.Staff)
	}
}

// TestRoomPageServed: /room/<id> is the page and /room/app.js its script
// (not a room called "app.js"), both with the pages' CSP.
func TestRoomPageServed(t *testing.T) {
	s := New(Options{})
	for path, want := range map[string]string{"/room/r-0123abcd": `src="/room/app.js"`, "/room/app.js": "window.__tgRoom", "/room/app.css": ".tiles"} {
		resp, err := s.App().Test(httptest.NewRequest("GET", path, nil))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Errorf("GET %s: %d, CSP %q, body %.60q", path, resp.StatusCode, resp.Header.Get("Content-Security-Policy"), b)
		}
	}
}

// TestCallsFollowTheVideoHelpFlag: a customer outside the video_help rollout
// is refused with a 403 and nothing is recorded; "inspection" (the quick-help
// button's purpose, side unknown) is accepted.
func TestCallsFollowTheVideoHelpFlag(t *testing.T) {
	allowed := map[string]bool{}
	var mu sync.Mutex
	e := newCallsEnv(t, storetest.Target{Name: "sqlite"}, []string{"laowang:老王"}, func(o *CallsOptions) {
		o.Allowed = func(m rental.Member, kind string) bool {
			mu.Lock()
			defer mu.Unlock()
			return allowed[m.Name]
		}
	})
	e.named("o-zhang", "张伟")
	e.named("o-li", "李娜")
	mu.Lock()
	allowed["张伟"] = true
	mu.Unlock()
	var s startOut
	if st := postAuth(t, e.base+"/api/v1/calls", e.login("o-zhang"), map[string]any{"kind": "video", "purpose": "inspection"}, &s); st != 200 {
		t.Fatalf("a customer in the rollout: %d", st)
	}
	if c := e.call(s.CallID); c.Purpose != "inspection" {
		t.Errorf("purpose recorded: %q", c.Purpose)
	}
	var refused map[string]map[string]string
	if st := postAuth(t, e.base+"/api/v1/calls", e.login("o-li"), map[string]any{"kind": "video"}, &refused); st != 403 ||
		refused["error"]["code"] != "forbidden" || !strings.Contains(refused["error"]["message"], "视频帮助") {
		t.Fatalf("a customer outside the rollout: %d %v", st, refused)
	}
	calls, err := e.db.Calls(context.Background(), store.CallFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 {
		t.Errorf("%d calls recorded, want only the allowed one", len(calls))
	}
}
