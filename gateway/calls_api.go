package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/wecom"
	"github.com/tacklegate/tacklegate/media"
	"github.com/tacklegate/tacklegate/rental"
)

// MountCalls mounts the call routes on the rooms of m (the Manager whose
// Config.Hooks are c.MediaHooks()). It needs Options.Identity.
func (s *Server) MountCalls(c *Calls, m *media.Manager) {
	if s.auth == nil {
		panic("gateway: MountCalls needs Options.Identity (the routes check roles)")
	}
	c.mgr = m
	c.key = s.auth.derive("tacklegate room tokens v1") // the key rooms.go checks room tokens with
	c.ttl = 2 * time.Hour
	if s.opts.Rooms != nil && s.opts.Rooms.TokenTTL > 0 {
		c.ttl = s.opts.Rooms.TokenTTL
	}
	h := &callHandlers{c: c, s: s}
	s.api("POST", "/calls", customers, h.start)
	s.api("GET", "/calls", signedIn, h.list)
	s.api("GET", "/calls/:id", signedIn, h.get)
	s.api("POST", "/calls/:id/join", signedIn, h.join)
	s.api("POST", "/calls/:id/decline", signedIn, h.decline)
	s.api("POST", "/calls/:id/cancel", signedIn, h.cancel)
	s.api("POST", "/calls/:id/end", signedIn, h.end)
	s.api("POST", "/calls/:id/rate", customers, h.rate)
	s.api("POST", "/calls/:id/rate-with-token", anyone, h.rateWithToken)
	s.api("POST", "/staff/calls", staffOnly, h.staffStart)
}

type callHandlers struct {
	c *Calls
	s *Server
}

// callView is a call as the API shows it.
type callView struct {
	ID           int64      `json:"id"`
	RoomID       string     `json:"room_id"`
	Kind         string     `json:"kind"`
	Purpose      string     `json:"purpose,omitempty"`
	Source       string     `json:"source"`
	EntryID      string     `json:"entry_id,omitempty"`
	MemberID     int64      `json:"member_id,omitempty"`
	Conversation string     `json:"conversation,omitempty"` // "A7"
	OrderID      string     `json:"order_id,omitempty"`
	Staff        string     `json:"staff,omitempty"`
	State        string     `json:"state"`
	StateName    string     `json:"state_name"`
	StartedAt    time.Time  `json:"started_at"`
	AnsweredAt   *time.Time `json:"answered_at,omitempty"`
	EndedAt      *time.Time `json:"ended_at,omitempty"`
	EndedReason  string     `json:"ended_reason,omitempty"`
	DurationSec  int        `json:"duration_seconds,omitempty"`
	Rating       int        `json:"rating,omitempty"`
}

func viewCall(c store.Call) callView {
	v := callView{ID: c.ID, RoomID: c.RoomID, Kind: c.Kind, Purpose: c.Purpose, Source: c.Source, EntryID: c.EntryID,
		MemberID: int64(c.MemberID), OrderID: c.OrderID, Staff: c.Staff, State: c.State, StateName: store.CallStateName(c.State),
		StartedAt: c.StartedAt, AnsweredAt: c.AnsweredAt, EndedAt: c.EndedAt, EndedReason: c.EndedReason,
		DurationSec: int(c.Duration() / time.Second), Rating: c.Rating}
	if c.Conversation != 0 {
		v.Conversation = rental.ConversationCode(c.Conversation)
	}
	return v
}

type startAnswer struct {
	CallID  int64  `json:"call_id"`
	RoomID  string `json:"room_id"`
	Kind    string `json:"kind"`
	Token   string `json:"token"`
	RoomURL string `json:"room_url"`
}

// callPurposes: "inspection" is a video inspection whose side (pickup or
// return) the customer did not say, as a quick-help button starts it.
var callPurposes = map[string]bool{"": true, "guidance": true, "inspection": true, "inspection_pickup": true, "inspection_return": true, "other": true}

func callKind(k string) (string, error) {
	switch k {
	case "", "video":
		return "video", nil
	case "voice":
		return "voice", nil
	}
	return "", rental.Errorf("calls.kind", rental.KindInvalid, "kind 须为 video 或 voice (kind must be video or voice)")
}

// start: a customer calls the shop.
func (h *callHandlers) start(c *fiber.Ctx) error {
	const op = "calls.start"
	var in struct {
		Kind    string          `json:"kind"`
		EntryID string          `json:"entry_id"`
		OrderID json.RawMessage `json:"order_id"`
		Purpose string          `json:"purpose"`
	}
	if err := body(c, &in); err != nil {
		return err
	}
	kind, err := callKind(in.Kind)
	if err != nil {
		return err
	}
	if !callPurposes[in.Purpose] {
		return rental.Errorf(op, rental.KindInvalid, "purpose 须为 guidance、inspection、inspection_pickup、inspection_return 或 other (unknown purpose %q)", in.Purpose)
	}
	if len(in.EntryID) > 64 || len(in.OrderID) > 64 {
		return rental.Errorf(op, rental.KindInvalid, "entry_id 或 order_id 过长 (at most 64 characters)")
	}
	member, err := h.s.CustomerMember(c)
	if err != nil {
		return err
	}
	if h.c.o.Allowed != nil && !h.c.o.Allowed(member, kind) {
		return rental.Errorf(op, rental.KindForbidden, "视频帮助还没有向您开放，请先在“客服”里留言 (video help is not on for this customer yet)")
	}
	orderID := strings.Trim(string(in.OrderID), `" `)
	if orderID != "" && orderID != "null" {
		// Only one's own order: another customer's is "not found".
		n, perr := strconv.ParseInt(orderID, 10, 64)
		if perr != nil || n <= 0 {
			return rental.Errorf(op, rental.KindInvalid, "order_id 无效 (order_id must be an order id)")
		}
		o, err := h.c.db.Order(c.UserContext(), rental.OrderID(n))
		if err != nil {
			return err
		}
		if o.MemberID != member.ID {
			return rental.Errorf(op, rental.KindNotFound, "找不到这个订单 (no such order)")
		}
	} else {
		orderID = ""
	}
	p := caller(c)
	room, err := h.c.openRoom(kind)
	if err != nil {
		return err
	}
	tok, err := h.c.token(room, p, rental.CustomerLabel(member), kind == "voice")
	if err != nil {
		h.c.closeRoom(room)
		return err
	}
	call := &store.Call{RoomID: room, Kind: kind, Purpose: in.Purpose, Source: CallSourceQuickHelp, EntryID: strings.Clone(in.EntryID),
		MemberID: member.ID, OrderID: orderID, State: store.CallRinging, StartedAt: h.c.now()}
	err = h.c.db.InBridgeTx(c.UserContext(), func(tx *store.BridgeTx) error {
		rung, conv, err := ringWhom(tx, member.ID)
		if err != nil {
			return err
		}
		call.Rung, call.Conversation = rung, conv
		var out []store.OutboxMessage
		if len(rung) > 0 && h.c.o.WeCom != nil {
			// The key names the call ("{call}" becomes its id).
			out = append(out, store.OutboxMessage{Kind: KindCallRing, Key: KindCallRing + ":{call}", Payload: []byte("{}")})
		}
		return tx.CreateCall(call, out...)
	})
	if err != nil {
		h.c.closeRoom(room)
		return err
	}
	if len(call.Rung) == 0 {
		h.c.log.Warn("a customer is calling and nobody is on duty", "call", call.ID)
	}
	return c.JSON(startAnswer{CallID: call.ID, RoomID: room, Kind: kind, Token: tok, RoomURL: roomPath(room, tok)})
}

// ringWhom: the staff member of the customer's live conversation if they
// are on duty, else everyone on duty.
func ringWhom(tx *store.BridgeTx, member rental.MemberID) ([]string, rental.ConversationID, error) {
	var conv rental.ConversationID
	assignee := ""
	live, err := tx.LiveConversation(member)
	if err != nil && rental.ErrorKind(err) != rental.KindNotFound {
		return nil, 0, err
	}
	if live != nil {
		conv, assignee = live.ID, live.Assignee
	}
	loads, err := tx.StaffLoads()
	if err != nil {
		return nil, 0, err
	}
	var onDuty []string
	for _, l := range loads {
		if !l.OnDuty {
			continue
		}
		if l.UserID == assignee {
			return []string{assignee}, conv, nil
		}
		onDuty = append(onDuty, l.UserID)
	}
	return onDuty, conv, nil
}

// staffStart: a staff member calls the customer of a conversation. The
// invitation is a message of the conversation, delivered by the bridge.
func (h *callHandlers) staffStart(c *fiber.Ctx) error {
	const op = "calls.staffStart"
	var in struct {
		Conversation json.RawMessage `json:"conversation"`
		Kind         string          `json:"kind"`
		Purpose      string          `json:"purpose"`
		OrderID      string          `json:"order_id"`
	}
	if err := body(c, &in); err != nil {
		return err
	}
	kind, err := callKind(in.Kind)
	if err != nil {
		return err
	}
	if !callPurposes[in.Purpose] {
		return rental.Errorf(op, rental.KindInvalid, "unknown purpose %q", in.Purpose)
	}
	ref := strings.Trim(string(in.Conversation), `" `)
	convID, ok := rental.ParseConversationCode(ref)
	if !ok {
		return rental.Errorf(op, rental.KindInvalid, "conversation 须为会话编号，如 \"A7\" 或 7 (conversation must be a code like \"A7\" or an id)")
	}
	p := caller(c)
	conv, err := h.c.db.Conversation(c.UserContext(), convID)
	if err != nil {
		return err
	}
	if !conv.Live() {
		return rental.Errorf(op, rental.KindConflict, "会话 #%s 已结束，无法发起通话 (conversation is resolved)", conv.Code())
	}
	room, err := h.c.openRoom(kind)
	if err != nil {
		return err
	}
	custTok, staffTok, err := h.c.tokensFor(c.UserContext(), room, conv.MemberID, p.Subject, kind == "voice")
	if p.Role == rental.RoleOwner && err == nil {
		staffTok, err = h.c.token(room, p, "店主", kind == "voice")
	}
	if err != nil {
		h.c.closeRoom(room)
		return err
	}
	staff := p.Subject
	if p.Role == rental.RoleOwner {
		staff = ""
	}
	call := &store.Call{RoomID: room, Kind: kind, Purpose: in.Purpose, Source: CallSourceConsole, MemberID: conv.MemberID,
		Conversation: conv.ID, OrderID: strings.Clone(in.OrderID), Staff: staff, Rung: []string{"customer"}, State: store.CallRinging, StartedAt: h.c.now()}
	err = h.c.db.InBridgeTx(c.UserContext(), func(tx *store.BridgeTx) error {
		cv, err := tx.Conversation(conv.ID)
		if err != nil {
			return err
		}
		if err := tx.CreateCall(call); err != nil {
			return err
		}
		author := rental.StaffAuthor(p.Subject)
		if p.Role == rental.RoleOwner {
			author = rental.StaffAuthor("owner")
		}
		invite := rental.ChatMessage{Direction: rental.ChatOut, Kind: rental.ChatText, Author: author,
			Text:      fmt.Sprintf("店员邀请您%s，点击进入：%s", callKindName(kind), h.c.o.PublicURL+roomPath(room, custTok)),
			CreatedAt: h.c.now(), ToCustomer: rental.Delivery{Status: rental.DeliveryStored}}
		if err := tx.Append(cv, &invite); err != nil {
			return err
		}
		flush, _ := json.Marshal(bridgeFlush{Conversation: cv.ID})
		return tx.Enqueue(KindBridgeToCustomer, fmt.Sprintf("%s:%d:call%d:%d", KindBridgeToCustomer, cv.ID, call.ID, invite.ID), flush)
	})
	if err != nil {
		h.c.closeRoom(room)
		return err
	}
	return c.JSON(startAnswer{CallID: call.ID, RoomID: room, Kind: kind, Token: staffTok, RoomURL: roomPath(room, staffTok)})
}

// load reads the call named by :id (a call id, or its room id) that the
// caller may see: a customer only their own.
func (h *callHandlers) load(c *fiber.Ctx) (store.Call, Principal, error) {
	p := caller(c)
	ref := c.Params("id")
	var call store.Call
	var err error
	if strings.HasPrefix(ref, "r-") {
		call, err = h.c.db.CallByRoom(c.UserContext(), ref)
	} else {
		id, perr := strconv.ParseInt(ref, 10, 64)
		if perr != nil || id <= 0 {
			return store.Call{}, p, rental.Errorf("calls.load", rental.KindNotFound, "找不到这个通话 (no such call)")
		}
		call, err = h.c.db.Call(c.UserContext(), id)
	}
	if err != nil {
		return store.Call{}, p, err
	}
	if p.Role == rental.RoleCustomer {
		m, err := h.s.CustomerMember(c)
		if err != nil {
			return store.Call{}, p, err
		}
		if m.ID != call.MemberID {
			return store.Call{}, p, rental.Errorf("calls.load", rental.KindNotFound, "找不到这个通话 (no such call)")
		}
	}
	return call, p, nil
}

func (h *callHandlers) get(c *fiber.Ctx) error {
	call, _, err := h.load(c)
	if err != nil {
		return err
	}
	return c.JSON(viewCall(call))
}

// list: a customer's own calls, or (staff, owner) everyone's; newest first,
// ?cursor= from next_cursor.
func (h *callHandlers) list(c *fiber.Ctx) error {
	f := store.CallFilter{Limit: c.QueryInt("limit", 20)}
	if f.Limit <= 0 || f.Limit > 100 {
		f.Limit = 20
	}
	if cur := c.Query("cursor"); cur != "" {
		n, err := strconv.ParseInt(cur, 10, 64)
		if err != nil || n <= 0 {
			return rental.Errorf("calls.list", rental.KindInvalid, "cursor 无效 (bad cursor)")
		}
		f.Before = n
	}
	if caller(c).Role == rental.RoleCustomer {
		m, err := h.s.CustomerMember(c)
		if err != nil {
			return err
		}
		f.Member = m.ID
	}
	calls, err := h.c.db.Calls(c.UserContext(), f)
	if err != nil {
		return err
	}
	out := struct {
		Calls      []callView `json:"calls"`
		NextCursor string     `json:"next_cursor,omitempty"`
	}{Calls: []callView{}}
	for _, x := range calls {
		out.Calls = append(out.Calls, viewCall(x))
	}
	if len(calls) == f.Limit {
		out.NextCursor = strconv.FormatInt(calls[len(calls)-1].ID, 10)
	}
	return c.JSON(out)
}

// callerSide reports whether p started the call (else p is the callee).
func callerSide(call store.Call, p Principal) bool {
	if call.Source == CallSourceQuickHelp {
		return p.Role == rental.RoleCustomer
	}
	return p.Role != rental.RoleCustomer
}

// join hands the caller a room token for the call (:id or the room id),
// with their name in it, while the call is ringing or answered: the room
// page asks here first and falls back to /rooms/:id/join for rooms that
// are not calls.
func (h *callHandlers) join(c *fiber.Ctx) error {
	call, p, err := h.load(c)
	if err != nil {
		return err
	}
	if call.State != store.CallRinging && call.State != store.CallAnswered {
		return rental.Errorf("calls.join", rental.KindConflict, "通话%s (call is %s)", store.CallStateName(call.State), call.State)
	}
	var name string
	switch p.Role {
	case rental.RoleCustomer:
		m, err := h.s.CustomerMember(c)
		if err != nil {
			return err
		}
		name = rental.CustomerLabel(m)
	case rental.RoleStaff:
		name = h.c.staffName(c.UserContext(), p.Subject)
	default:
		name = "店主"
	}
	tok, err := h.c.token(call.RoomID, p, name, call.Kind == "voice")
	if err != nil {
		return err
	}
	return c.JSON(startAnswer{CallID: call.ID, RoomID: call.RoomID, Kind: call.Kind, Token: tok, RoomURL: roomPath(call.RoomID, tok)})
}

func (h *callHandlers) decline(c *fiber.Ctx) error {
	call, p, err := h.load(c)
	if err != nil {
		return err
	}
	if callerSide(call, p) {
		return rental.Errorf("calls.decline", rental.KindForbidden, "发起方不能拒绝自己的通话，请取消 (the caller cancels, the callee declines)")
	}
	ch := store.CallChange{From: []string{store.CallRinging}, To: store.CallDeclined, At: h.c.now(), Reason: "declined"}
	if p.Role == rental.RoleStaff {
		ch.Staff = p.Subject
	}
	return h.transition(c, call, ch)
}

func (h *callHandlers) cancel(c *fiber.Ctx) error {
	call, p, err := h.load(c)
	if err != nil {
		return err
	}
	if !callerSide(call, p) {
		return rental.Errorf("calls.cancel", rental.KindForbidden, "只有发起方可以取消，接听方请拒绝 (only the caller cancels)")
	}
	return h.transition(c, call, store.CallChange{From: []string{store.CallRinging}, To: store.CallCancelled, At: h.c.now(), Reason: "cancelled"})
}

func (h *callHandlers) end(c *fiber.Ctx) error {
	call, p, err := h.load(c)
	if err != nil {
		return err
	}
	return h.transition(c, call, store.CallChange{From: []string{store.CallAnswered}, To: store.CallEnded, At: h.c.now(),
		Reason: "hangup_" + string(p.Role)})
}

// transition applies a change asked for through the API and closes the
// room: every client in it gets "room-closed".
func (h *callHandlers) transition(c *fiber.Ctx, call store.Call, ch store.CallChange) error {
	out, err := h.c.db.ChangeCall(c.UserContext(), call.ID, ch)
	if err != nil {
		return err
	}
	h.c.closeRoom(call.RoomID)
	return c.JSON(viewCall(out))
}

func (h *callHandlers) rate(c *fiber.Ctx) error {
	call, _, err := h.load(c)
	if err != nil {
		return err
	}
	var in struct {
		Score int `json:"score"`
	}
	if err := body(c, &in); err != nil {
		return err
	}
	out, err := h.c.db.RateCall(c.UserContext(), call.ID, in.Score, h.c.now())
	if err != nil {
		return err
	}
	return c.JSON(viewCall(out))
}

// rateWithToken lets a customer who came by the invitation link (a room
// token, no session: the link opened outside the mini-program) rate the
// call: the customer's room token for the call's room is the proof.
func (h *callHandlers) rateWithToken(c *fiber.Ctx) error {
	const op = "calls.rateWithToken"
	var in struct {
		Token string `json:"token"`
		Score int    `json:"score"`
	}
	if err := body(c, &in); err != nil {
		return err
	}
	var rc roomClaims
	_, err := jwt.ParseWithClaims(in.Token, &rc, func(*jwt.Token) (any, error) { return h.c.key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithExpirationRequired(), jwt.WithIssuer("tacklegate-rooms"))
	if err != nil || rc.Role != string(rental.RoleCustomer) {
		return rental.Errorf(op, rental.KindUnauthorized, "通话链接无效或已过期 (room token invalid or expired)")
	}
	ref := c.Params("id")
	var call store.Call
	if strings.HasPrefix(ref, "r-") {
		call, err = h.c.db.CallByRoom(c.UserContext(), ref)
	} else if id, perr := strconv.ParseInt(ref, 10, 64); perr == nil {
		call, err = h.c.db.Call(c.UserContext(), id)
	} else {
		err = rental.Errorf(op, rental.KindNotFound, "找不到这个通话 (no such call)")
	}
	if err != nil {
		return err
	}
	if call.RoomID != rc.Room || !h.tokenIsMember(c.UserContext(), rc.Participant, call.MemberID) {
		return rental.Errorf(op, rental.KindForbidden, "只能评价自己的通话 (not your call)")
	}
	out, err := h.c.db.RateCall(c.UserContext(), call.ID, in.Score, h.c.now())
	if err != nil {
		return err
	}
	return c.JSON(viewCall(out))
}

// tokenIsMember: a customer participant id ("c-m-12", or "c-i-5" for one
// signed in with WeChat; see participantID) names member.
func (h *callHandlers) tokenIsMember(ctx context.Context, pid string, member rental.MemberID) bool {
	if v, ok := strings.CutPrefix(pid, "c-m-"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		return err == nil && rental.MemberID(n) == member
	}
	if v, ok := strings.CutPrefix(pid, "c-i-"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return false
		}
		m, err := h.c.db.IdentityMember(ctx, rental.IdentityID(n))
		return err == nil && m.ID == member
	}
	return false
}

// Handlers returns the outbox handlers of the call flow's kinds.
func (c *Calls) Handlers() map[string]store.Deliver {
	return map[string]store.Deliver{KindCallRing: c.deliverRing, KindCallNotice: c.deliverNotice}
}

func (c *Calls) upstream(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), c.o.CallTimeout)
}

// deliverRing sends the ringing textcard, unless the call stopped ringing
// meanwhile (a late card would ring for nothing).
func (c *Calls) deliverRing(ctx context.Context, item store.OutboxItem) error {
	id, err := strconv.ParseInt(item.Key[strings.LastIndexByte(item.Key, ':')+1:], 10, 64)
	if err != nil {
		return &store.Permanent{Err: fmt.Errorf("call.ring: bad key %q", item.Key)}
	}
	call, err := c.db.Call(ctx, id)
	if err != nil {
		if rental.ErrorKind(err) == rental.KindNotFound {
			return &store.Permanent{Err: err}
		}
		return err
	}
	to := callStaffRung(call)
	if call.State != store.CallRinging || len(to) == 0 || c.o.WeCom == nil {
		return nil
	}
	what := callKindName(call.Kind)
	desc := fmt.Sprintf(`<div class="gray">%s</div><div class="normal">%s 请求%s</div>`,
		call.StartedAt.In(bridgeZone).Format("01月02日 15:04"), c.customerLabel(ctx, call.MemberID), what)
	if call.Purpose != "" || call.EntryID != "" {
		desc += fmt.Sprintf(`<div class="highlight">%s</div>`, callPurposeName(call.Purpose, call.EntryID))
	}
	if call.OrderID != "" {
		desc += fmt.Sprintf(`<div class="normal">订单 %s</div>`, call.OrderID)
	}
	if call.Conversation != 0 {
		desc += fmt.Sprintf(`<div class="gray">会话 #%s</div>`, rental.ConversationCode(call.Conversation))
	}
	card := wecom.TextCard{Title: "📞 " + what + "来电", Description: desc, ButtonText: "接听",
		URL: c.o.StaffLink(c.o.PublicURL + roomPath(call.RoomID, ""))}
	cctx, cancel := c.upstream(ctx)
	defer cancel()
	if !c.o.StaffTokenLinks || c.key == nil {
		_, err = c.o.WeCom.SendTextCard(cctx, to, card)
		return ringErr(err)
	}
	for _, userID := range to {
		tok, err := c.token(call.RoomID, Principal{Role: rental.RoleStaff, Subject: userID}, c.staffName(ctx, userID), call.Kind == "voice")
		if err != nil {
			return err
		}
		card.URL = c.o.PublicURL + roomPath(call.RoomID, tok)
		if _, err := c.o.WeCom.SendTextCard(cctx, []string{userID}, card); err != nil {
			return ringErr(err)
		}
	}
	return nil
}

func ringErr(err error) error {
	if err != nil && !bridgeRetryable(err) {
		return &store.Permanent{Err: err}
	}
	return err
}

func callPurposeName(purpose, entry string) string {
	switch purpose {
	case "guidance":
		return "使用指导"
	case "inspection_pickup":
		return "取货验货"
	case "inspection_return":
		return "归还验货"
	}
	if entry != "" {
		return "快捷求助：" + entry
	}
	return "其他问题"
}

func (c *Calls) deliverNotice(ctx context.Context, item store.OutboxItem) error {
	var p bridgeNotice
	if err := json.Unmarshal(item.Payload, &p); err != nil {
		return &store.Permanent{Err: err}
	}
	if c.o.WeCom == nil || len(p.To) == 0 {
		return nil
	}
	cctx, cancel := c.upstream(ctx)
	defer cancel()
	_, err := c.o.WeCom.SendText(cctx, p.To, p.Text)
	if err != nil && !bridgeRetryable(err) {
		return &store.Permanent{Err: err}
	}
	return err
}
