package gateway

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/rental"
)

// The staff console's actions (the H5 page at /staff). Each runs the same
// bridge code as the WeCom command it mirrors (bridge.Console), so a reply
// from the console is sealed, chained and sent through the outbox exactly
// like one written in WeCom, and assignment, the queue and the notices to
// colleagues behave the same. The acting staff member's own WeCom notices
// are left out: the console shows the outcome.

type staffHandlers struct {
	b        *Bridge
	presence *Presence
}

func (s *Server) mountStaffConsole(b *Bridge, p *Presence) {
	h := &staffHandlers{b: b, presence: p}
	s.api("POST", "/staff/conversations/:id/messages", staffOnly, h.reply)
	s.api("POST", "/staff/conversations/:id/take", staffOnly, h.take)
	s.api("POST", "/staff/conversations/:id/close", staffOnly, h.close)
	s.api("POST", "/staff/conversations/:id/transfer", staffOnly, h.transfer)
	s.api("POST", "/staff/conversations/:id/tags", staffOnly, h.tags)
	s.api("POST", "/staff/conversations/:id/notes", staffOnly, h.notes)
	s.api("POST", "/staff/conversations/:id/read", staffOnly, h.read)
	s.api("POST", "/staff/duty", staffOnly, h.duty)
	s.api("GET", "/staff/presence", staffOnly, h.staffPresence)
	s.api("GET", "/staff/login", anyone, s.staffLoginURL)
}

// staffLoginURL: GET /api/v1/staff/login?redirect=/staff — the WeCom OAuth
// link that brings a staff member back to the console with ?code= (the
// console goes there when opened inside WeCom without a session).
func (s *Server) staffLoginURL(c *fiber.Ctx) error {
	cb := s.opts.Callbacks
	if cb == nil || cb.WeComCorpID == "" {
		return rental.Errorf("staff.login", rental.KindUnavailable, "企业微信未开通 (WeCom is off)")
	}
	back := c.Query("redirect", "/staff")
	if !strings.HasPrefix(back, "/") || strings.HasPrefix(back, "//") {
		return rental.Errorf("staff.login", rental.KindInvalid, "redirect 必须是本站路径 (redirect must be a path on this site)")
	}
	return c.JSON(fiber.Map{"url": WeComOAuthURL(cb.WeComOAuthBase, cb.WeComCorpID, cb.WeComAgentID, c.BaseURL()+back, "staff")})
}

// live reads the conversation of the route and checks that it is live.
func (h *staffHandlers) live(c *fiber.Ctx, op string) (rental.Conversation, error) {
	id, err := paramID(c)
	if err != nil {
		return rental.Conversation{}, err
	}
	conv, err := h.b.db.Conversation(c.UserContext(), rental.ConversationID(id))
	if err != nil {
		return conv, err
	}
	if !conv.Live() {
		return conv, rental.Errorf(op, rental.KindConflict, "会话 #%s 已结束 (conversation is resolved)", conv.Code())
	}
	return conv, nil
}

// seen counts a console action as a heartbeat.
func (h *staffHandlers) seen(c *fiber.Ctx) {
	if h.presence != nil && caller(c).Role == rental.RoleStaff {
		h.presence.Heartbeat(caller(c).Subject)
	}
}

// answer returns the conversation as it now stands.
func (h *staffHandlers) answer(c *fiber.Ctx, id rental.ConversationID, extra fiber.Map) error {
	conv, err := h.b.db.Conversation(c.UserContext(), id)
	if err != nil {
		return err
	}
	m, err := h.b.db.Member(c.UserContext(), conv.MemberID)
	if err != nil {
		return err
	}
	out := fiber.Map{"conversation": (&bridgeHandlers{b: h.b}).conversationOf(conv, m)}
	for k, v := range extra {
		out[k] = v
	}
	return c.JSON(out)
}

// reply: POST /staff/conversations/:id/messages — text (JSON {text,
// client_id}) or a photo / voice note (multipart "file"). A reply to a
// resolved conversation goes to the customer's live one (opened if need
// be), as in WeCom.
func (h *staffHandlers) reply(c *fiber.Ctx) error {
	const op = "staff.reply"
	id, err := paramID(c)
	if err != nil {
		return err
	}
	if _, err := h.b.db.Conversation(c.UserContext(), rental.ConversationID(id)); err != nil {
		return err
	}
	u, err := readChatUpload(c, op)
	if err != nil {
		return err
	}
	cid, err := chatClientID(op, u.ClientID)
	if err != nil {
		return err
	}
	me := caller(c).Subject
	reply := rental.ChatMessage{Direction: rental.ChatOut, Author: rental.StaffAuthor(me), Kind: u.Kind, Text: u.Text,
		Media: u.Media, MediaType: u.MediaType, VoiceFormat: u.VoiceFmt, Duration: u.Duration,
		CreatedAt: h.b.now(), ToCustomer: rental.Delivery{Status: rental.DeliveryStored}}
	if cid != "" {
		reply.Upstream = "console:" + me + ":" + cid
	}
	var to rental.ConversationID
	err = h.b.Console(c.UserContext(), me, func(t *btx, sm store.StaffMember) error {
		r := reply
		if err := t.staffReply(sm, rental.ConversationID(id), r); err != nil {
			return err
		}
		cur, err := t.StaffMember(me)
		to = cur.Current
		return err
	})
	if err != nil {
		return err
	}
	h.seen(c)
	if to == 0 {
		to = rental.ConversationID(id)
	}
	c.Status(fiber.StatusCreated)
	return h.answer(c, to, nil)
}

// take: POST /staff/conversations/:id/take.
func (h *staffHandlers) take(c *fiber.Ctx) error {
	return h.act(c, "staff.take", func(t *btx, sm store.StaffMember, id rental.ConversationID) error { return t.take(sm, id) })
}

// close: POST /staff/conversations/:id/close — resolves it and asks the
// customer for a rating.
func (h *staffHandlers) close(c *fiber.Ctx) error {
	return h.act(c, "staff.close", func(t *btx, sm store.StaffMember, id rental.ConversationID) error { return t.closeConversation(sm, id) })
}

// act runs one console action on the route's live conversation, as the
// WeCom command would, and answers with the conversation after it.
func (h *staffHandlers) act(c *fiber.Ctx, op string, do func(*btx, store.StaffMember, rental.ConversationID) error) error {
	conv, err := h.live(c, op)
	if err != nil {
		return err
	}
	err = h.b.Console(c.UserContext(), caller(c).Subject, func(t *btx, sm store.StaffMember) error { return do(t, sm, conv.ID) })
	if err != nil {
		return err
	}
	h.seen(c)
	return h.answer(c, conv.ID, nil)
}

// transfer: POST /staff/conversations/:id/transfer {to} — to a colleague
// (WeCom userid or name); both are told.
func (h *staffHandlers) transfer(c *fiber.Ctx) error {
	const op = "staff.transfer"
	conv, err := h.live(c, op)
	if err != nil {
		return err
	}
	var in struct {
		To string `json:"to"`
	}
	if err := body(c, &in); err != nil {
		return err
	}
	err = h.b.Console(c.UserContext(), caller(c).Subject, func(t *btx, sm store.StaffMember) error {
		to, ok, err := t.findStaff(in.To)
		if err != nil {
			return err
		}
		if !ok {
			return rental.Errorf(op, rental.KindInvalid, "没有在职店员「%s」 (no active staff member %q)", in.To, in.To)
		}
		if to.WeComUserID == conv.Assignee {
			return rental.Errorf(op, rental.KindConflict, "会话已经由%s接待 (already theirs)", bridgeStaffName(to))
		}
		return t.transfer(sm, conv.ID, to.WeComUserID)
	})
	if err != nil {
		return err
	}
	h.seen(c)
	return h.answer(c, conv.ID, nil)
}

// tags: POST /staff/conversations/:id/tags {tags: [...]} — replaces them.
func (h *staffHandlers) tags(c *fiber.Ctx) error {
	id, err := paramID(c)
	if err != nil {
		return err
	}
	var in struct {
		Tags []string `json:"tags"`
	}
	if err := body(c, &in); err != nil {
		return err
	}
	err = h.b.Console(c.UserContext(), caller(c).Subject, func(t *btx, _ store.StaffMember) error {
		conv, err := t.Conversation(rental.ConversationID(id))
		if err != nil {
			return err
		}
		return t.setTags(conv, in.Tags)
	})
	if err != nil {
		return err
	}
	return h.answer(c, rental.ConversationID(id), nil)
}

// notes: POST /staff/conversations/:id/notes {text} — an internal note,
// chained into the conversation, never sent to the customer.
func (h *staffHandlers) notes(c *fiber.Ctx) error {
	const op = "staff.notes"
	id, err := paramID(c)
	if err != nil {
		return err
	}
	if _, err := h.b.db.Conversation(c.UserContext(), rental.ConversationID(id)); err != nil {
		return err
	}
	u, err := readChatUpload(c, op)
	if err != nil {
		return err
	}
	if u.Kind != rental.ChatText {
		return rental.Errorf(op, rental.KindInvalid, "备注只能是文字 (notes are text)")
	}
	me := caller(c).Subject
	err = h.b.Console(c.UserContext(), me, func(t *btx, sm store.StaffMember) error {
		sm.Current = rental.ConversationID(id) // note() writes to the current conversation
		return t.note(sm, u.Text, rental.ChatMessage{Author: rental.StaffAuthor(me), CreatedAt: t.now})
	})
	if err != nil {
		return err
	}
	c.Status(fiber.StatusCreated)
	return h.answer(c, rental.ConversationID(id), nil)
}

// read: POST /staff/conversations/:id/read {seq} — the caller has read up
// to seq (default: all of it).
func (h *staffHandlers) read(c *fiber.Ctx) error {
	id, err := paramID(c)
	if err != nil {
		return err
	}
	conv, err := h.b.db.Conversation(c.UserContext(), rental.ConversationID(id))
	if err != nil {
		return err
	}
	var in struct {
		Seq int `json:"seq"`
	}
	if len(c.Body()) > 0 {
		if err := body(c, &in); err != nil {
			return err
		}
	}
	if in.Seq <= 0 || in.Seq > conv.Head.Count {
		in.Seq = conv.Head.Count
	}
	if err := h.b.db.MarkRead(c.UserContext(), caller(c).Subject, conv.ID, in.Seq); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"conversation_id": conv.ID, "read_seq": in.Seq})
}

// duty: POST /staff/duty {on} — the console's on/off duty switch, as /on
// and /off (going on duty takes queued conversations).
func (h *staffHandlers) duty(c *fiber.Ctx) error {
	var in struct {
		On *bool `json:"on"`
	}
	if err := body(c, &in); err != nil {
		return err
	}
	if in.On == nil {
		return rental.Errorf("staff.duty", rental.KindInvalid, "请给出 on: true 或 false (on is required)")
	}
	kind := rental.CmdOff
	if *in.On {
		kind = rental.CmdOn
	}
	me := caller(c).Subject
	var given []rental.ConversationID
	err := h.b.Console(c.UserContext(), me, func(t *btx, sm store.StaffMember) error {
		before, err := t.Conversations(store.ConversationFilter{Live: true, Assignee: me, Limit: 100})
		if err != nil {
			return err
		}
		if err := t.command(sm, rental.StaffCommand{Kind: kind}, rental.ChatMessage{}); err != nil {
			return err
		}
		after, err := t.Conversations(store.ConversationFilter{Live: true, Assignee: me, Limit: 100})
		had := map[rental.ConversationID]bool{}
		for _, c := range before {
			had[c.ID] = true
		}
		for _, c := range after {
			if !had[c.ID] {
				given = append(given, c.ID)
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	h.seen(c)
	if h.presence != nil {
		h.presence.check(c.UserContext())
	}
	codes := make([]string, len(given))
	for i, id := range given {
		codes[i] = rental.ConversationCode(id)
	}
	return c.JSON(fiber.Map{"on_duty": *in.On, "given": codes})
}

// staffPresence: GET /staff/presence — every colleague's state and the
// caller's own duty flag.
func (h *staffHandlers) staffPresence(c *fiber.Ctx) error {
	loads, err := h.b.db.StaffLoads(c.UserContext())
	if err != nil {
		return err
	}
	type row struct {
		UserID string `json:"userid"`
		Name   string `json:"name"`
		Status string `json:"status"`
		OnDuty bool   `json:"on_duty"`
		Open   int    `json:"open"`
	}
	out := make([]row, len(loads))
	for i, l := range loads {
		st := PresenceOnline
		if h.presence != nil {
			st = h.presence.StaffStatus(l)
		} else if !l.OnDuty {
			st = PresenceOffline
		}
		out[i] = row{UserID: l.UserID, Name: l.Name, Status: st, OnDuty: l.OnDuty, Open: l.Open}
	}
	res := fiber.Map{"staff": out, "me": caller(c).Subject}
	if h.presence != nil {
		if v, err := h.presence.Status(c.UserContext()); err == nil {
			res["presence"] = v
		}
	}
	return c.JSON(res)
}
