package gateway

import (
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/rental"
)

// MountBridge adds the conversation routes: the staff console's reads
// (lists, transcripts, media; the console itself comes later) and the
// owner's transcript export. The identity routes must be mounted
// (Options.Identity): these routes check roles with them.
func (s *Server) MountBridge(b *Bridge) {
	if s.auth == nil {
		panic("gateway: MountBridge needs Options.Identity (the routes check roles)")
	}
	h := &bridgeHandlers{b: b}
	s.api("GET", "/staff/conversations", staffOnly, h.list)
	s.api("GET", "/staff/conversations/:id", staffOnly, h.transcript)
	s.api("GET", "/staff/conversations/:id/media/:seq", staffOnly, h.media)
	s.api("GET", "/owner/conversations/:id/export", ownerOnly, h.export)
}

// MountChat adds the customer's in-app chat (/api/v1/chat…) and the staff
// console's actions (/api/v1/staff/conversations/:id/…, /staff/duty) on
// the bridge; p (optional) is the staff presence.
func (s *Server) MountChat(b *Bridge, p *Presence) {
	if s.auth == nil {
		panic("gateway: MountChat needs Options.Identity (the routes check roles)")
	}
	s.mountChat(b, p)
	s.mountStaffConsole(b, p)
}

type bridgeHandlers struct{ b *Bridge }

type chatDeliveryView struct {
	Status    rental.DeliveryStatus `json:"status"`
	Reason    string                `json:"reason,omitempty"`
	Recipient string                `json:"recipient,omitempty"`
	At        *time.Time            `json:"at,omitempty"`
}

func chatDeliveryOf(d rental.Delivery) *chatDeliveryView {
	if d.Status == rental.DeliveryNone {
		return nil
	}
	v := &chatDeliveryView{Status: d.Status, Reason: d.Reason, Recipient: d.Recipient}
	if !d.At.IsZero() {
		at := d.At
		v.At = &at
	}
	return v
}

type chatMessageView struct {
	Seq         int                  `json:"seq"`
	Direction   rental.ChatDirection `json:"direction"`
	Kind        rental.ChatKind      `json:"kind"`
	Author      string               `json:"author"`
	Text        string               `json:"text,omitempty"`
	MediaType   string               `json:"media_type,omitempty"`
	MediaSize   int64                `json:"media_size,omitempty"`
	MediaSHA256 string               `json:"media_sha256,omitempty"`
	MediaURL    string               `json:"media_url,omitempty"`
	Media       []byte               `json:"media_base64,omitempty"` // export only
	VoiceFormat string               `json:"voice_format,omitempty"`
	DurationMS  int64                `json:"duration_ms,omitempty"`
	CreatedAt   time.Time            `json:"created_at"`
	ToCustomer  *chatDeliveryView    `json:"to_customer,omitempty"`
	ToStaff     *chatDeliveryView    `json:"to_staff,omitempty"`
	// Chain fields, in the export.
	Upstream    string `json:"upstream,omitempty"`
	ContentHash string `json:"content_sha256,omitempty"`
	PrevLink    string `json:"prev_link,omitempty"`
	Link        string `json:"link,omitempty"`
	Unreadable  bool   `json:"unreadable,omitempty"`
	Shredded    bool   `json:"shredded,omitempty"` // content destroyed by the retention policy
}

func chatMessageOf(m rental.ChatMessage, export bool) chatMessageView {
	v := chatMessageView{
		Seq: m.Seq, Direction: m.Direction, Kind: m.Kind, Author: m.Author, Text: m.Text,
		MediaType: m.MediaType, MediaSize: m.MediaSize, MediaSHA256: m.MediaHash, VoiceFormat: m.VoiceFormat,
		DurationMS: m.Duration.Milliseconds(), CreatedAt: m.CreatedAt,
		ToCustomer: chatDeliveryOf(m.ToCustomer), ToStaff: chatDeliveryOf(m.ToStaff),
	}
	if m.MediaSize > 0 {
		v.MediaURL = "/api/v1/staff/conversations/" + strconv.FormatInt(int64(m.ConversationID), 10) + "/media/" + strconv.Itoa(m.Seq)
	}
	if export {
		v.Media, v.Upstream, v.ContentHash, v.PrevLink, v.Link, v.Unreadable = m.Media, m.Upstream, m.ContentHash, m.PrevLink, m.Link, m.Unreadable
		v.Shredded = m.Shredded
	}
	return v
}

type chatConversationView struct {
	ID             rental.ConversationID    `json:"id"`
	Code           string                   `json:"code"`
	State          rental.ConversationState `json:"state"`
	Customer       memberView               `json:"customer"`
	CustomerLabel  string                   `json:"customer_label"`
	Assignee       string                   `json:"assignee,omitempty"`
	PrevID         rental.ConversationID    `json:"prev_id,omitempty"`
	Tags           []string                 `json:"tags,omitempty"`
	OpenedAt       time.Time                `json:"opened_at"`
	ResolvedAt     *time.Time               `json:"resolved_at,omitempty"`
	LastCustomerAt *time.Time               `json:"last_customer_at,omitempty"`
	WindowOpen     bool                     `json:"window_open"` // WeChat's 48-hour reply window, as far as we know
	Rating         int                      `json:"rating,omitempty"`
	Waiting        int                      `json:"waiting_for_staff,omitempty"`
	Unread         int                      `json:"unread"` // customer messages the caller has not read (lists only)
	Last           *chatMessageView         `json:"last,omitempty"`
}

func bridgeTimePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (h *bridgeHandlers) conversationOf(c rental.Conversation, m rental.Member) chatConversationView {
	return chatConversationView{
		ID: c.ID, Code: c.Code(), State: c.State, Customer: view(m), CustomerLabel: rental.CustomerLabel(m),
		Assignee: c.Assignee, PrevID: c.PrevID, Tags: c.Tags, OpenedAt: c.OpenedAt,
		ResolvedAt: bridgeTimePtr(c.ResolvedAt), LastCustomerAt: bridgeTimePtr(c.LastCustomerAt), WindowOpen: c.WindowOpen(h.b.now()),
		Rating: c.Rating,
	}
}

// list: GET /api/v1/staff/conversations?live=1&mine=1&before=ID&limit=N,
// newest first; the next page starts before the last id of this one.
func (h *bridgeHandlers) list(c *fiber.Ctx) error {
	f := store.ConversationFilter{Live: c.QueryBool("live", false), Limit: c.QueryInt("limit", 20)}
	if f.Limit < 1 || f.Limit > 100 {
		f.Limit = 20
	}
	if c.QueryBool("mine", false) {
		f.Assignee = caller(c).Subject
	}
	if v := c.Query("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return rental.Errorf("bridge.list", rental.KindInvalid, "before 应为会话编号 (before must be a conversation id)")
		}
		f.Before = rental.ConversationID(n)
	}
	list, err := h.b.db.Conversations(c.UserContext(), f)
	if err != nil {
		return err
	}
	ids := make([]rental.ConversationID, len(list))
	for i, s := range list {
		ids[i] = s.ID
	}
	unread, err := h.b.db.Unread(c.UserContext(), caller(c).Subject, ids)
	if err != nil {
		return err
	}
	out := make([]chatConversationView, len(list))
	for i, s := range list {
		out[i] = h.conversationOf(s.Conversation, s.Customer)
		out[i].Waiting, out[i].Unread = s.Waiting, unread[s.ID]
		if s.Last != nil {
			lv := chatMessageOf(*s.Last, false)
			out[i].Last = &lv
		}
	}
	next := ""
	if len(list) == f.Limit && len(list) > 0 {
		next = strconv.FormatInt(int64(list[len(list)-1].ID), 10)
	}
	return c.JSON(fiber.Map{"conversations": out, "next_before": next})
}

func (h *bridgeHandlers) conversationParam(c *fiber.Ctx) (rental.ConversationID, error) {
	id, err := paramID(c)
	return rental.ConversationID(id), err
}

// transcript: GET /api/v1/staff/conversations/:id — every message, media
// by URL; with ?limit=N (and ?before=SEQ) one page, newest last, and
// next_before for the page before it.
func (h *bridgeHandlers) transcript(c *fiber.Ctx) error {
	id, err := h.conversationParam(c)
	if err != nil {
		return err
	}
	var conv rental.Conversation
	var msgs []rental.ChatMessage
	next := 0
	if c.Query("limit") != "" {
		limit, before := c.QueryInt("limit", 50), c.QueryInt("before", 0)
		if limit < 1 || limit > 200 || before < 0 {
			return rental.Errorf("bridge.transcript", rental.KindInvalid, "limit 应为 1–200，before 应为消息序号 (limit 1–200, before a seq)")
		}
		if conv, err = h.b.db.Conversation(c.UserContext(), id); err != nil {
			return err
		}
		if msgs, err = h.b.db.ChatPage(c.UserContext(), id, before, 0, limit, true); err != nil {
			return err
		}
		if len(msgs) == limit && msgs[0].Seq > 1 {
			next = msgs[0].Seq
		}
	} else if conv, msgs, err = h.b.db.Transcript(c.UserContext(), id, false); err != nil {
		return err
	}
	m, err := h.b.db.Member(c.UserContext(), conv.MemberID)
	if err != nil {
		return err
	}
	out := make([]chatMessageView, len(msgs))
	for i, msg := range msgs {
		out[i] = chatMessageOf(msg, false)
	}
	return c.JSON(fiber.Map{"conversation": h.conversationOf(conv, m), "messages": out, "next_before": next})
}

// media: GET /api/v1/staff/conversations/:id/media/:seq — the image or
// voice of one message, as stored.
func (h *bridgeHandlers) media(c *fiber.Ctx) error {
	id, err := h.conversationParam(c)
	if err != nil {
		return err
	}
	seq, err := strconv.Atoi(c.Params("seq"))
	if err != nil || seq <= 0 {
		return rental.Errorf("bridge.media", rental.KindInvalid, "消息序号无效 (bad seq)")
	}
	return sendChatMedia(c, h.b.db, id, seq)
}

// sendChatMedia answers with a message's media, opened from its seal: for
// staff and for the customer's own chat alike.
func sendChatMedia(c *fiber.Ctx, db *store.DB, id rental.ConversationID, seq int) error {
	data, ct, err := db.ChatMedia(c.UserContext(), id, seq)
	if err != nil {
		return err
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	c.Set(fiber.HeaderContentType, ct)
	c.Set(fiber.HeaderCacheControl, "private, max-age=3600")
	return c.Send(data)
}

// export: GET /api/v1/owner/conversations/:id/export — the transcript as
// evidence: every message with its media (base64), hashes and chain links,
// and whether the chain verifies (the printable page is transcript).
func (h *bridgeHandlers) export(c *fiber.Ctx) error {
	id, err := h.conversationParam(c)
	if err != nil {
		return err
	}
	conv, msgs, err := h.b.db.Transcript(c.UserContext(), id, true)
	if err != nil {
		return err
	}
	m, err := h.b.db.Member(c.UserContext(), conv.MemberID)
	if err != nil {
		return err
	}
	out := make([]chatMessageView, len(msgs))
	for i, msg := range msgs {
		out[i] = chatMessageOf(msg, true)
	}
	chain := fiber.Map{"count": conv.Head.Count, "head": conv.Head.Link, "algorithm": "link = SHA-256(prev_link ‖ content_sha256 ‖ canonical metadata v1)", "verified": true}
	if brk := conv.VerifyChain(msgs); brk != nil {
		chain["verified"] = false
		chain["break"] = fiber.Map{"index": brk.Index, "seq": brk.Seq, "reason": brk.Reason, "message": brk.Message()}
	}
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="conversation-`+conv.Code()+`.json"`)
	return c.JSON(fiber.Map{
		"conversation": h.conversationOf(conv, m), "messages": out, "chain": chain,
		"exported_at": time.Now().UTC(), "exported_by": caller(c).Subject,
	})
}
