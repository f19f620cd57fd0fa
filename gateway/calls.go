package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/wecom"
	"github.com/tacklegate/tacklegate/media"
	"github.com/tacklegate/tacklegate/rental"
)

// The call flow: a video or voice call between a customer and the shop,
// on top of the media rooms.
//
//   - A customer starts one (POST /api/v1/calls, from a quick-help entry):
//     a room opens, the call is recorded as ringing and the staff member
//     assigned to the customer's conversation, else everyone on duty, gets
//     a WeCom textcard that opens the room page.
//   - Staff start one (POST /api/v1/staff/calls, or /video in WeCom): the
//     customer gets the invitation as a message of their conversation, so
//     it goes out through the bridge with WeChat's rules and stays in the
//     transcript.
//   - The rooms tell the call what happens: a second person joining answers
//     it; when fewer than two are left (a hang-up, or a network that did
//     not come back within the reconnect grace) it has ended and the room
//     closes. Decline and cancel close the room too.
//   - A call still ringing after RingTimeout is missed; a job finds those
//     in the database, so a restart does not lose the timeout.
//
// Every change is a conditional update on the row: a timeout racing an
// answer cannot both win, and an illegal change is a conflict naming the
// state the call is in.

// Outbox kinds of the call flow. Payloads are JSON.
const (
	// KindCallRing sends the ringing textcard to staff. The key ends in
	// the call's id.
	KindCallRing = "call.ring"
	// KindCallNotice sends staff a text about a call (missed). Payload:
	// bridgeNotice.
	KindCallNotice = "call.notice"
)

// Sources of a call.
const (
	CallSourceQuickHelp = "quick_help"
	CallSourceCommand   = "staff_command"
	CallSourceConsole   = "console"
)

// CallsWeCom is what the call flow needs of the WeCom client.
type CallsWeCom interface {
	SendTextCard(ctx context.Context, touser []string, card wecom.TextCard) (wecom.SendResult, error)
	SendText(ctx context.Context, touser []string, content string) (wecom.SendResult, error)
}

var _ CallsWeCom = (*wecom.Client)(nil)

// CallsOptions configure the call flow. DB is required.
type CallsOptions struct {
	DB *store.DB
	// WeCom rings staff; nil: staff are not rung (WeCom is off) and a
	// customer's call can only be answered from the staff console.
	WeCom CallsWeCom
	// PublicURL is the base of the room links sent out.
	PublicURL string
	// StaffLink turns a room link into the link of the staff textcard: the
	// WeCom OAuth link around it (WeComOAuthLink), so that the page opens
	// signed in. Default: the room link itself.
	StaffLink func(roomURL string) string
	// StaffTokenLinks puts a room token for each staff member into their
	// card's link instead (one card each), for setups where WeCom's OAuth
	// is not available: the demo's simulator. The link then admits whoever
	// holds it, like the /video links the bridge sends staff.
	StaffTokenLinks bool
	// Allowed, when set, says whether a customer may start a call of this
	// kind (the video_help feature flag); nil: everyone may.
	Allowed func(m rental.Member, kind string) bool
	// RingTimeout: a call nobody answered by then is missed (default 45 s).
	RingTimeout time.Duration
	// Poll is how often the timeout job looks (default 1 s).
	Poll time.Duration
	// CallTimeout bounds one upstream call (default 20 s).
	CallTimeout time.Duration
	Logger      *slog.Logger
	// Now is the wall clock of the call times (default time.Now).
	Now func() time.Time
}

// Calls is the call flow: the routes (Server.MountCalls), the media hooks
// (MediaHooks), the outbox handlers (Handlers) and the timeout job (Run).
type Calls struct {
	o   CallsOptions
	db  *store.DB
	log *slog.Logger

	// Set by MountCalls.
	mgr *media.Manager
	key []byte
	ttl time.Duration

	events chan func(context.Context)

	mu      sync.Mutex
	running bool
	present map[string]map[string]media.ParticipantInfo // room → participant id → who
}

// NewCalls checks the options and builds the call flow.
func NewCalls(o CallsOptions) (*Calls, error) {
	if o.DB == nil {
		return nil, rental.Errorf("gateway.NewCalls", rental.KindInvalid, "the call flow needs the database")
	}
	if o.RingTimeout <= 0 {
		o.RingTimeout = 45 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 20 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.StaffLink == nil {
		o.StaffLink = func(u string) string { return u }
	}
	o.PublicURL = strings.TrimRight(o.PublicURL, "/")
	return &Calls{o: o, db: o.DB, log: o.Logger.With("component", "calls"),
		events: make(chan func(context.Context), 1024), present: map[string]map[string]media.ParticipantInfo{}}, nil
}

// WeComOAuthLink wraps a room link in WeCom's OAuth redirect (see
// WeComOAuthURL).
func WeComOAuthLink(base, corpID string, agentID int) func(string) string {
	return func(u string) string { return WeComOAuthURL(base, corpID, agentID, u, "room") }
}

// WeComOAuthURL is WeCom's web-OAuth link (网页授权登录, scope snsapi_base)
// back to redirect: opened in WeCom, the page comes back with ?code=, which
// POST /api/v1/auth/wecom turns into a staff session. base replaces
// https://open.weixin.qq.com (the simulator's in demo and tests).
func WeComOAuthURL(base, corpID string, agentID int, redirect, state string) string {
	if base == "" {
		base = "https://open.weixin.qq.com"
	}
	q := url.Values{"appid": {corpID}, "redirect_uri": {redirect}, "response_type": {"code"},
		"scope": {"snsapi_base"}, "agentid": {strconv.Itoa(agentID)}, "state": {state}}
	return strings.TrimRight(base, "/") + "/connect/oauth2/authorize?" + q.Encode() + "#wechat_redirect"
}

func (c *Calls) now() time.Time { return c.o.Now().UTC() }

// MediaHooks are the hooks to give media.Config: the rooms report joins,
// departures and closed rooms to the call flow. Events are handled in
// order on Run's goroutine.
func (c *Calls) MediaHooks() media.Hooks {
	return media.Hooks{
		OnParticipantJoined: func(e media.ParticipantEvent) { c.post(func(ctx context.Context) { c.joined(ctx, e) }) },
		OnParticipantLeft:   func(e media.ParticipantEvent) { c.post(func(ctx context.Context) { c.left(ctx, e) }) },
		OnRoomClosed:        func(e media.RoomEvent) { c.post(func(ctx context.Context) { c.roomClosed(ctx, e) }) },
	}
}

// post queues an event for Run; without Run (shut down, or a test without
// it) the event is handled at once, so a shutdown's departures are
// recorded.
func (c *Calls) post(f func(context.Context)) {
	// Under mu, so Run cannot stop between the check and the send and
	// leave the event in a queue nobody drains.
	c.mu.Lock()
	queued := false
	if c.running {
		select {
		case c.events <- f:
			queued = true
		default:
			c.log.Warn("call events queue full; handling inline")
		}
	}
	c.mu.Unlock()
	if queued {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f(ctx)
}

// Run handles room events and turns calls that rang too long into missed
// calls, until ctx ends.
func (c *Calls) Run(ctx context.Context) {
	c.mu.Lock()
	c.running = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.running = false
		c.mu.Unlock()
		// What was queued is still handled.
		for {
			select {
			case f := <-c.events:
				f(context.WithoutCancel(ctx))
			default:
				return
			}
		}
	}()
	t := time.NewTicker(c.o.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-c.events:
			f(ctx)
		case <-t.C:
			c.ExpireRinging(ctx)
		}
	}
}

// ExpireRinging marks calls that rang longer than RingTimeout missed,
// closes their rooms and tells the staff who were rung.
func (c *Calls) ExpireRinging(ctx context.Context) int {
	due, err := c.db.RingingSince(ctx, c.now().Add(-c.o.RingTimeout), 100)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Error("cannot list ringing calls", "error", err)
		}
		return 0
	}
	n := 0
	for _, call := range due {
		if c.miss(ctx, call, c.now(), "timeout") {
			n++
			c.closeRoom(call.RoomID)
		}
	}
	return n
}

// miss records a ringing call as missed and, with the change, tells the
// staff who were rung (or the staff member who called the customer).
func (c *Calls) miss(ctx context.Context, call store.Call, at time.Time, reason string) bool {
	var out []store.OutboxMessage
	if call.Source != CallSourceQuickHelp && call.Staff != "" {
		// Staff called the customer: tell them nobody picked up.
		p, _ := json.Marshal(bridgeNotice{To: []string{call.Staff}, Text: fmt.Sprintf("%s 没有接听你的%s邀请（%s）。",
			c.customerLabel(ctx, call.MemberID), callKindName(call.Kind), call.StartedAt.In(bridgeZone).Format("15:04"))})
		out = append(out, store.OutboxMessage{Kind: KindCallNotice, Key: fmt.Sprintf("%s:missed:%d", KindCallNotice, call.ID), Payload: p})
	}
	if staff := callStaffRung(call); len(staff) > 0 {
		p, _ := json.Marshal(bridgeNotice{To: staff, Text: fmt.Sprintf("未接来电：%s 的%s无人接听（%s）。", c.customerLabel(ctx, call.MemberID),
			callKindName(call.Kind), call.StartedAt.In(bridgeZone).Format("15:04"))})
		out = append(out, store.OutboxMessage{Kind: KindCallNotice, Key: fmt.Sprintf("%s:missed-rung:%d", KindCallNotice, call.ID), Payload: p})
	}
	_, err := c.db.ChangeCall(ctx, call.ID, store.CallChange{From: []string{store.CallRinging}, To: store.CallMissed, At: at, Reason: reason, Out: out})
	if err != nil {
		if rental.ErrorKind(err) != rental.KindConflict && ctx.Err() == nil {
			c.log.Error("cannot mark a call missed", "call", call.ID, "error", err)
		}
		return false
	}
	c.log.Info("call missed", "call", call.ID, "room", call.RoomID, "reason", reason)
	return true
}

func callStaffRung(call store.Call) []string {
	var out []string
	for _, r := range call.Rung {
		if r != "customer" && r != "" {
			out = append(out, r)
		}
	}
	return out
}

func callKindName(kind string) string {
	if kind == "voice" {
		return "语音通话"
	}
	return "视频通话"
}

func (c *Calls) customerLabel(ctx context.Context, id rental.MemberID) string {
	if id == 0 {
		return "顾客"
	}
	m, err := c.db.Member(ctx, id)
	if err != nil {
		return "顾客" + strconv.FormatInt(int64(id), 10)
	}
	return rental.CustomerLabel(m)
}

func (c *Calls) closeRoom(room string) {
	if c.mgr == nil {
		return
	}
	if err := c.mgr.CloseRoom(room); err != nil && !errors.Is(err, media.ErrRoomNotFound) {
		c.log.Warn("cannot close a call's room", "room", room, "error", err)
	}
}

// joined answers a ringing call when a second person arrives.
func (c *Calls) joined(ctx context.Context, e media.ParticipantEvent) {
	c.mu.Lock()
	in := c.present[e.Room]
	if in == nil {
		in = map[string]media.ParticipantInfo{}
		c.present[e.Room] = in
	}
	in[e.Participant.ID] = e.Participant
	n := len(in)
	staff := ""
	for _, p := range in {
		if p.Role == string(rental.RoleStaff) {
			staff = staffOfParticipant(p.ID)
		}
	}
	c.mu.Unlock()
	if n < 2 {
		return
	}
	call, err := c.db.CallByRoom(ctx, e.Room)
	if err != nil || call.State != store.CallRinging {
		return // not a call's room, or answered already
	}
	ch := store.CallChange{From: []string{store.CallRinging}, To: store.CallAnswered, At: e.At}
	if call.Staff == "" {
		ch.Staff = staff
	}
	if _, err := c.db.ChangeCall(ctx, call.ID, ch); err != nil {
		if rental.ErrorKind(err) == rental.KindConflict {
			// Missed, declined or cancelled a moment before: the room is
			// closing under them.
			c.closeRoom(e.Room)
			return
		}
		c.log.Error("cannot record a call answered", "call", call.ID, "error", err)
		return
	}
	c.log.Info("call answered", "call", call.ID, "room", e.Room)
}

// staffOfParticipant is the WeCom userid in a staff participant id
// ("s-laowang"; see participantID).
func staffOfParticipant(id string) string { return strings.TrimPrefix(id, "s-") }

// left ends an answered call when fewer than two are left, and cancels a
// ringing one its caller hung up on.
func (c *Calls) left(ctx context.Context, e media.ParticipantEvent) {
	c.mu.Lock()
	in := c.present[e.Room]
	delete(in, e.Participant.ID)
	n := len(in)
	if n == 0 {
		delete(c.present, e.Room)
	}
	c.mu.Unlock()
	if e.Reason == media.ReasonClosed || e.Reason == media.ReasonShutdown {
		return // roomClosed records it
	}
	call, err := c.db.CallByRoom(ctx, e.Room)
	if err != nil {
		return
	}
	switch {
	case call.State == store.CallAnswered && n < 2:
		c.change(ctx, call, store.CallChange{From: []string{store.CallAnswered}, To: store.CallEnded, At: e.At, Reason: string(e.Reason)})
		c.closeRoom(e.Room)
	case call.State == store.CallRinging && n == 0 && (e.Reason == media.ReasonLeft || e.Reason == media.ReasonHangup):
		c.change(ctx, call, store.CallChange{From: []string{store.CallRinging}, To: store.CallCancelled, At: e.At, Reason: "caller_left"})
		c.closeRoom(e.Room)
	}
}

// roomClosed settles a call whose room closed: empty for too long, closed
// by the flow, or the server shutting down.
func (c *Calls) roomClosed(ctx context.Context, e media.RoomEvent) {
	c.mu.Lock()
	delete(c.present, e.Room)
	c.mu.Unlock()
	call, err := c.db.CallByRoom(ctx, e.Room)
	if err != nil {
		return
	}
	switch call.State {
	case store.CallRinging:
		c.miss(ctx, call, e.Closed, "room_"+e.Reason)
	case store.CallAnswered:
		c.change(ctx, call, store.CallChange{From: []string{store.CallAnswered}, To: store.CallEnded, At: e.Closed, Reason: "room_" + e.Reason})
	}
}

func (c *Calls) change(ctx context.Context, call store.Call, ch store.CallChange) {
	if _, err := c.db.ChangeCall(ctx, call.ID, ch); err != nil {
		if rental.ErrorKind(err) != rental.KindConflict {
			c.log.Error("cannot record a call change", "call", call.ID, "to", ch.To, "error", err)
		}
		return
	}
	c.log.Info("call "+ch.To, "call", call.ID, "room", call.RoomID, "reason", ch.Reason)
}

// newRoomID makes a random room id: knowing it is part of what lets one in.
func newRoomID() string {
	var b [12]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand never fails on Linux
	return "r-" + hex.EncodeToString(b[:])
}

// openRoom opens the room of a new call: two people, audio only for a
// voice call.
func (c *Calls) openRoom(kind string) (string, error) {
	if c.mgr == nil {
		return "", rental.Errorf("calls.open", rental.KindUnavailable, "视频通话暂未开通 (video rooms are off)")
	}
	room := newRoomID()
	if _, err := c.mgr.OpenRoom(room, media.RoomOptions{AudioOnly: kind == "voice", MaxParticipants: 2}); err != nil {
		return "", err
	}
	return room, nil
}

// callClaims are a room token's claims (rooms.go checks them) and whether
// the call is voice only, so the page knows before joining whether to
// open the camera for its preview.
type callClaims struct {
	roomClaims
	Audio bool `json:"audio,omitempty"`
}

// token mints a room token (the same kind rooms.go hands out) carrying the
// participant's name, so the other side sees who they talk to.
func (c *Calls) token(room string, p Principal, name string, audioOnly bool) (string, error) {
	now := time.Now()
	claims := callClaims{roomClaims: roomClaims{Room: room, Participant: participantID(p), Name: name, Role: string(p.Role), RegisteredClaims: jwt.RegisteredClaims{
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(c.ttl)), Issuer: "tacklegate-rooms",
	}}, Audio: audioOnly}
	t, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(c.key)
	return t, rental.Wrap("calls.token", rental.KindInternal, "", err)
}

// roomPath is the page of a room with a token: relative, for the caller's
// own page; PublicURL + it for links sent out.
func roomPath(room, token string) string {
	p := "/room/" + room
	if token != "" {
		p += "?t=" + url.QueryEscape(token)
	}
	return p
}

// Video is BridgeOptions.Video: the WeCom /video command. It runs inside
// the bridge's transaction, so the call is recorded just after that
// commits (a SQLite writer cannot start a second transaction inside the
// first); the ringing timeout covers a call whose invitation was rolled
// back.
func (c *Calls) Video(ctx context.Context, conv rental.Conversation, staffUserID string) (customerURL, staffURL string, err error) {
	room, err := c.openRoom("video")
	if err != nil {
		return "", "", err
	}
	custTok, staffTok, err := c.tokensFor(ctx, room, conv.MemberID, staffUserID, false)
	if err != nil {
		c.closeRoom(room)
		return "", "", err
	}
	call := &store.Call{RoomID: room, Kind: "video", Source: CallSourceCommand, MemberID: conv.MemberID, Conversation: conv.ID,
		Staff: staffUserID, Rung: []string{"customer"}, State: store.CallRinging, StartedAt: c.now()}
	go func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := c.db.CreateCall(rctx, call); err != nil {
			c.log.Error("cannot record a /video call", "room", room, "error", err)
		}
	}()
	return c.o.PublicURL + roomPath(room, custTok), c.o.PublicURL + roomPath(room, staffTok), nil
}

// tokensFor mints the customer's and the staff member's tokens for a call
// staff start. Names are read outside any transaction (plain reads).
func (c *Calls) tokensFor(ctx context.Context, room string, member rental.MemberID, staffUserID string, audioOnly bool) (string, string, error) {
	custTok, err := c.token(room, Principal{Role: rental.RoleCustomer, Subject: "m:" + strconv.FormatInt(int64(member), 10)},
		c.customerLabel(ctx, member), audioOnly)
	if err != nil {
		return "", "", err
	}
	staffTok, err := c.token(room, Principal{Role: rental.RoleStaff, Subject: staffUserID}, c.staffName(ctx, staffUserID), audioOnly)
	return custTok, staffTok, err
}

func (c *Calls) staffName(ctx context.Context, userID string) string {
	if s, err := c.db.StaffByUserID(ctx, userID); err == nil && s.Name != "" {
		return s.Name
	}
	return "店员"
}
