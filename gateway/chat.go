package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/rental"
)

// The in-app chat: customers write from the customer page (text, photos,
// voice notes) into the same conversation as their WeChat messages. A
// message is filed by the bridge's own rules (customerMessage) in one
// transaction, synchronously: it is sealed and chained, assigned, and
// forwarded to staff in WeCom through the outbox exactly like a WeChat
// one. While the customer's last message came from the app, replies are
// read there (pushed over /ws) rather than sent as WeChat messages
// (deliverToCustomer), so the 48-hour window does not apply to them.

const (
	chatAppUpstream  = "app:" // upstream prefix of in-app messages: "app:<member>:<client id>"
	chatAppRecipient = "app"
	chatAppDelivered = "顾客在小程序内聊天，已在聊天页送达"

	chatMaxText          = 2000 // characters
	chatMaxImage         = 10 << 20
	chatMaxVoice         = 2 << 20
	chatMaxVoiceDuration = 60 * time.Second
)

// chatImageTypes are the photos accepted, by sniffed type.
var chatImageTypes = map[string]bool{"image/jpeg": true, "image/png": true, "image/gif": true, "image/webp": true}

// chatUpload is a message read from a request: JSON {text, client_id} or a
// multipart form with "file" (a photo or a voice note), "duration_ms" for
// voice, and "client_id".
type chatUpload struct {
	Kind      rental.ChatKind
	Text      string
	Media     []byte
	MediaType string
	Duration  time.Duration
	VoiceFmt  string
	ClientID  string
}

// readChatUpload parses and checks a message; every refusal says what is
// wrong in Chinese first.
func readChatUpload(c *fiber.Ctx, op string) (chatUpload, error) {
	var u chatUpload
	if strings.HasPrefix(c.Get(fiber.HeaderContentType), fiber.MIMEMultipartForm) {
		fh, err := c.FormFile("file")
		if err != nil {
			return u, rental.Wrap(op, rental.KindInvalid, "请以 multipart 表单上传图片或语音（字段 file） (upload the photo or voice note as multipart field \"file\")", err)
		}
		u.ClientID = strings.TrimSpace(c.FormValue("client_id"))
		declared := fh.Header.Get("Content-Type")
		limit := int64(chatMaxImage)
		if strings.HasPrefix(declared, "audio/") || strings.HasPrefix(declared, "video/webm") {
			limit = chatMaxVoice
		}
		if fh.Size > limit {
			return u, rental.Errorf(op, rental.KindInvalid, "文件太大：图片最大 %d MB，语音最大 %d MB (file too large)", chatMaxImage>>20, chatMaxVoice>>20)
		}
		data, err := readFormFile(fh, limit)
		if err != nil {
			return u, rental.Wrap(op, rental.KindInvalid, "无法读取上传的文件 (cannot read the upload)", err)
		}
		if int64(len(data)) > limit {
			return u, rental.Errorf(op, rental.KindInvalid, "文件太大：图片最大 %d MB，语音最大 %d MB (file too large)", chatMaxImage>>20, chatMaxVoice>>20)
		}
		if len(data) == 0 {
			return u, rental.Errorf(op, rental.KindInvalid, "上传的文件是空的 (empty file)")
		}
		u.Media = data
		if sniffed := http.DetectContentType(data); chatImageTypes[sniffed] {
			u.Kind, u.MediaType = rental.ChatImage, sniffed
			return u, nil
		}
		vt, vf, ok := chatVoiceType(data)
		if !ok {
			return u, rental.Errorf(op, rental.KindInvalid, "只能发送 JPEG/PNG/GIF/WebP 图片或语音（WebM/Ogg/MP4/AMR/MP3） (only photos or voice notes)")
		}
		if len(data) > chatMaxVoice {
			return u, rental.Errorf(op, rental.KindInvalid, "语音太大，最大 %d MB (voice note too large)", chatMaxVoice>>20)
		}
		u.Kind, u.MediaType, u.VoiceFmt = rental.ChatVoice, vt, vf
		if d, ok := rental.AMRDuration(data); ok {
			u.Duration = d
		} else {
			ms, err := strconv.ParseInt(c.FormValue("duration_ms"), 10, 64)
			if err != nil || ms <= 0 {
				return u, rental.Errorf(op, rental.KindInvalid, "语音需要时长 duration_ms（毫秒） (voice notes need duration_ms)")
			}
			u.Duration = time.Duration(ms) * time.Millisecond
		}
		if u.Duration > chatMaxVoiceDuration+time.Second {
			return u, rental.Errorf(op, rental.KindInvalid, "语音最长 %d 秒 (voice notes are at most %d s)", int(chatMaxVoiceDuration/time.Second), int(chatMaxVoiceDuration/time.Second))
		}
		return u, nil
	}
	var in struct {
		Text     *string `json:"text"`
		ClientID string  `json:"client_id"`
	}
	if err := body(c, &in); err != nil {
		return u, err
	}
	if in.Text == nil {
		return u, rental.Errorf(op, rental.KindInvalid, "请发送 {\"text\": …} 或上传图片/语音 (send text, or a photo or voice note)")
	}
	text := strings.TrimSpace(*in.Text)
	switch {
	case text == "":
		return u, rental.Errorf(op, rental.KindInvalid, "消息不能为空 (text is empty)")
	case !utf8.ValidString(text):
		return u, rental.Errorf(op, rental.KindInvalid, "消息不是有效的 UTF-8 (text is not UTF-8)")
	case utf8.RuneCountInString(text) > chatMaxText:
		return u, rental.Errorf(op, rental.KindInvalid, "消息太长，最多 %d 字 (text longer than %d characters)", chatMaxText, chatMaxText)
	}
	u.Kind, u.Text, u.ClientID = rental.ChatText, text, strings.TrimSpace(in.ClientID)
	return u, nil
}

func readFormFile(fh *multipart.FileHeader, limit int64) ([]byte, error) {
	f, err := fh.Open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit+1))
}

// chatVoiceType recognises a voice note by its bytes, whatever type the
// browser declared: its media type and format name.
func chatVoiceType(data []byte) (mediaType, format string, ok bool) {
	switch {
	case bytes.HasPrefix(data, []byte("#!AMR")):
		return "audio/amr", "amr", true
	case bytes.HasPrefix(data, []byte{0x1A, 0x45, 0xDF, 0xA3}): // EBML: WebM
		return "audio/webm", "webm", true
	case bytes.HasPrefix(data, []byte("OggS")):
		return "audio/ogg", "ogg", true
	case len(data) > 12 && string(data[4:8]) == "ftyp":
		return "audio/mp4", "mp4", true
	case bytes.HasPrefix(data, []byte("ID3")) || (len(data) > 1 && data[0] == 0xFF && data[1]&0xE0 == 0xE0):
		return "audio/mpeg", "mp3", true
	}
	return "", "", false
}

// chatClientID bounds a client's idempotency key.
func chatClientID(op, id string) (string, error) {
	if id == "" {
		return "", nil
	}
	if len(id) > 64 {
		return "", rental.Errorf(op, rental.KindInvalid, "client_id 最长 64 个字符 (client_id too long)")
	}
	for _, r := range id {
		if !(r == '-' || r == '_' || r == '.' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')) {
			return "", rental.Errorf(op, rental.KindInvalid, "client_id 只能含字母、数字和 -_. (client_id has other characters)")
		}
	}
	return id, nil
}

// AppMessage files a customer's in-app message in their conversation, as
// customerInbound files a WeChat one. A message whose Upstream was stored
// before is returned as stored (a retried send).
func (b *Bridge) AppMessage(ctx context.Context, member rental.Member, cm rental.ChatMessage) (rental.ChatMessage, error) {
	cm.Direction, cm.Author = rental.ChatIn, rental.CustomerAuthor(member.ID)
	cm.ToStaff = rental.Delivery{Status: rental.DeliveryStored}
	if cm.CreatedAt.IsZero() {
		cm.CreatedAt = b.now()
	}
	cause := "app" + strconv.FormatInt(int64(member.ID), 10) + ":" + strconv.FormatInt(time.Now().UnixNano(), 36)
	var ask *askTurn
	stored := cm
	err := b.inTx(ctx, cause, func(t *btx) error {
		ask, stored = nil, cm
		err := t.customerMessage(member, "", &stored)
		ask = t.ask
		return err
	})
	if err != nil {
		return rental.ChatMessage{}, err
	}
	if ask != nil {
		ask.cause = cause
		b.startAsk(context.WithoutCancel(ctx), ask)
	}
	if stored.ID == 0 { // a duplicate, or the rating: read what is stored
		if m, err := b.db.MessageByUpstream(ctx, cm.Upstream); err == nil {
			return m, nil
		}
	}
	return stored, nil
}

// AppRating stores the customer's rating of a resolved conversation given
// in the app (the WeChat way is a bare "1"–"5"): chained into the
// conversation as the customer's message, thanked, and told to staff.
func (b *Bridge) AppRating(ctx context.Context, member rental.Member, id rental.ConversationID, score int) error {
	if score < 1 || score > 5 {
		return rental.Errorf("chat.rating", rental.KindInvalid, "评分应为 1–5 (score must be 1–5)")
	}
	return b.inTx(ctx, "rate"+strconv.FormatInt(int64(id), 10), func(t *btx) error {
		conv, err := t.Conversation(id)
		if err != nil {
			return err
		}
		if conv.MemberID != member.ID {
			return rental.Errorf("chat.rating", rental.KindNotFound, "没有这个会话 (no such conversation)")
		}
		cm := rental.ChatMessage{Direction: rental.ChatIn, Kind: rental.ChatText, Author: rental.CustomerAuthor(member.ID),
			Text: strconv.Itoa(score) + " 分", Upstream: chatAppUpstream + "rating:" + strconv.FormatInt(int64(id), 10), CreatedAt: t.now}
		return t.rating(conv, &cm, score)
	})
}

type chatHandlers struct {
	s        *Server
	b        *Bridge
	presence *Presence
	flood    *failureLimiter // messages per customer per minute
}

// chatPerMinute bounds how many messages one customer sends in a minute.
const chatPerMinute = 30

// mountChat adds the customer's in-app chat routes.
func (s *Server) mountChat(b *Bridge, p *Presence) {
	h := &chatHandlers{s: s, b: b, presence: p, flood: newFailureLimiter(chatPerMinute, time.Minute)}
	s.api("GET", "/chat", customers, h.get)
	s.api("POST", "/chat/messages", customers, h.send)
	s.api("GET", "/chat/media/:seq", customers, h.media)
	s.api("POST", "/chat/rating", customers, h.rate)
	s.api("GET", "/owner/conversations/:id/transcript", ownerOnly, h.transcriptHTML)
}

// chatCustomerMessage is a message as the customer sees it: who wrote it
// (me, staff, system, assistant) but not staff's WeCom ids.
type chatCustomerMessage struct {
	ConversationID rental.ConversationID `json:"conversation_id"`
	Seq            int                   `json:"seq"`
	From           string                `json:"from"` // me | staff | system | assistant
	StaffName      string                `json:"staff_name,omitempty"`
	Kind           rental.ChatKind       `json:"kind"`
	Text           string                `json:"text,omitempty"`
	MediaType      string                `json:"media_type,omitempty"`
	MediaURL       string                `json:"media_url,omitempty"`
	DurationMS     int64                 `json:"duration_ms,omitempty"`
	CreatedAt      time.Time             `json:"created_at"`
	// Status of the customer's own messages: stored (received), sent
	// (forwarded to staff), failed.
	Status rental.DeliveryStatus `json:"status,omitempty"`
}

// staffNames caches staff names for one response.
type staffNames struct {
	db    *store.DB
	ctx   context.Context
	names map[string]string
}

func (n *staffNames) name(userID string) string {
	if v, ok := n.names[userID]; ok {
		return v
	}
	name := "店员"
	if st, err := n.db.StaffByUserID(n.ctx, userID); err == nil && st.Name != "" {
		name = st.Name
	}
	n.names[userID] = name
	return name
}

func newStaffNames(ctx context.Context, db *store.DB) *staffNames {
	return &staffNames{db: db, ctx: ctx, names: map[string]string{}}
}

func customerMessageOf(m rental.ChatMessage, names *staffNames) chatCustomerMessage {
	v := chatCustomerMessage{ConversationID: m.ConversationID, Seq: m.Seq, Kind: m.Kind, Text: m.Text, MediaType: m.MediaType,
		DurationMS: m.Duration.Milliseconds(), CreatedAt: m.CreatedAt}
	switch {
	case m.Direction == rental.ChatIn:
		v.From, v.Status = "me", m.ToStaff.Status
	case m.Author == rental.SystemAuthor:
		v.From = "system"
	case m.Author == rental.AssistantAuthor:
		v.From = "assistant"
	default:
		v.From = "staff"
		if u, ok := strings.CutPrefix(m.Author, "staff:"); ok {
			v.StaffName = names.name(u)
		}
	}
	if m.MediaSize > 0 {
		v.MediaURL = "/api/v1/chat/media/" + strconv.Itoa(m.Seq) + "?conversation=" + strconv.FormatInt(int64(m.ConversationID), 10)
	}
	return v
}

type chatConversationBrief struct {
	ID             rental.ConversationID    `json:"id"`
	Code           string                   `json:"code"`
	State          rental.ConversationState `json:"state"`
	AwaitingRating bool                     `json:"awaiting_rating"`
	Rating         int                      `json:"rating,omitempty"`
	StaffName      string                   `json:"staff_name,omitempty"`
	PrevID         rental.ConversationID    `json:"prev_id,omitempty"`
	OpenedAt       time.Time                `json:"opened_at"`
}

func conversationBrief(c *rental.Conversation, names *staffNames) chatConversationBrief {
	v := chatConversationBrief{ID: c.ID, Code: c.Code(), State: c.State, Rating: c.Rating, PrevID: c.PrevID, OpenedAt: c.OpenedAt,
		AwaitingRating: c.State == rental.ConversationResolved && c.Rating == 0}
	if c.Assignee != "" {
		v.StaffName = names.name(c.Assignee)
	}
	return v
}

// member resolves the signed-in customer.
func (h *chatHandlers) member(c *fiber.Ctx) (rental.Member, error) {
	m, err := h.s.CustomerMember(c)
	if err == nil && h.presence != nil {
		h.presence.CustomerSeen(m.ID) // using the chat
	}
	return m, err
}

// ownConversation reads ?conversation= (default: the latest) and checks
// it is the customer's; nil when they never wrote.
func (h *chatHandlers) ownConversation(c *fiber.Ctx, m rental.Member) (*rental.Conversation, error) {
	const op = "chat.conversation"
	if v := c.Query("conversation"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return nil, rental.Errorf(op, rental.KindInvalid, "conversation 应为会话编号 (conversation must be an id)")
		}
		conv, err := h.b.db.Conversation(c.UserContext(), rental.ConversationID(n))
		if err != nil {
			return nil, err
		}
		if conv.MemberID != m.ID {
			return nil, rental.Errorf(op, rental.KindNotFound, "没有这个会话 (no such conversation)")
		}
		return &conv, nil
	}
	return h.b.db.LatestConversationOf(c.UserContext(), m.ID)
}

// get: GET /api/v1/chat?conversation=&before=SEQ&limit=N — the customer's
// latest conversation (or the one named) and its newest messages (or
// those before seq `before`); next_before pages further back, and
// prev_id leads to the conversation before. Presence comes along.
func (h *chatHandlers) get(c *fiber.Ctx) error {
	const op = "chat.get"
	m, err := h.member(c)
	if err != nil {
		return err
	}
	before, limit := c.QueryInt("before", 0), c.QueryInt("limit", 30)
	if before < 0 {
		return rental.Errorf(op, rental.KindInvalid, "before 应为消息序号 (before must be a seq)")
	}
	if limit < 1 || limit > 100 {
		limit = 30
	}
	out := fiber.Map{"conversation": nil, "messages": []chatCustomerMessage{}, "next_before": 0}
	if h.presence != nil {
		if p, err := h.presence.Status(c.UserContext()); err == nil {
			out["presence"] = p
		}
	}
	conv, err := h.ownConversation(c, m)
	if err != nil || conv == nil {
		if err != nil {
			return err
		}
		return c.JSON(out)
	}
	names := newStaffNames(c.UserContext(), h.b.db)
	msgs, err := h.b.db.ChatPage(c.UserContext(), conv.ID, before, 0, limit, false)
	if err != nil {
		return err
	}
	views := make([]chatCustomerMessage, len(msgs))
	for i, msg := range msgs {
		views[i] = customerMessageOf(msg, names)
	}
	out["conversation"], out["messages"] = conversationBrief(conv, names), views
	if len(msgs) == limit && msgs[0].Seq > 1 {
		out["next_before"] = msgs[0].Seq
	}
	return c.JSON(out)
}

// send: POST /api/v1/chat/messages — text (JSON) or a photo or voice note
// (multipart). client_id makes a retry safe: the same id is stored once.
func (h *chatHandlers) send(c *fiber.Ctx) error {
	const op = "chat.send"
	m, err := h.member(c)
	if err != nil {
		return err
	}
	key := strconv.FormatInt(int64(m.ID), 10)
	if !h.flood.allowed(key) {
		return rental.Errorf(op, rental.KindRateLimited, "发送太频繁，请稍后再发（每分钟最多 %d 条） (at most %d messages a minute)", chatPerMinute, chatPerMinute)
	}
	h.flood.fail(key)
	u, err := readChatUpload(c, op)
	if err != nil {
		return err
	}
	cid, err := chatClientID(op, u.ClientID)
	if err != nil {
		return err
	}
	if cid == "" {
		cid = randomToken()[:22]
	}
	cm := rental.ChatMessage{Kind: u.Kind, Text: u.Text, Media: u.Media, MediaType: u.MediaType, VoiceFormat: u.VoiceFmt, Duration: u.Duration,
		Upstream: chatAppUpstream + strconv.FormatInt(int64(m.ID), 10) + ":" + cid}
	stored, err := h.b.AppMessage(c.UserContext(), m, cm)
	if err != nil {
		return err
	}
	names := newStaffNames(c.UserContext(), h.b.db)
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"message": customerMessageOf(stored, names)})
}

// media: GET /api/v1/chat/media/:seq?conversation= — a photo or voice note
// of the customer's conversation (not of an internal note).
func (h *chatHandlers) media(c *fiber.Ctx) error {
	const op = "chat.media"
	m, err := h.member(c)
	if err != nil {
		return err
	}
	seq, err := strconv.Atoi(c.Params("seq"))
	if err != nil || seq <= 0 {
		return rental.Errorf(op, rental.KindInvalid, "消息序号无效 (bad seq)")
	}
	conv, err := h.ownConversation(c, m)
	if err != nil {
		return err
	}
	if conv == nil {
		return rental.Errorf(op, rental.KindNotFound, "没有这条消息 (no such message)")
	}
	page, err := h.b.db.ChatPage(c.UserContext(), conv.ID, seq+1, 0, 1, true)
	if err != nil {
		return err
	}
	if len(page) != 1 || page[0].Seq != seq || page[0].Direction == rental.ChatNote {
		return rental.Errorf(op, rental.KindNotFound, "没有这条消息 (no such message)")
	}
	return sendChatMedia(c, h.b.db, conv.ID, seq)
}

// rate: POST /api/v1/chat/rating {score, conversation} — rates a resolved
// conversation (default: the latest).
func (h *chatHandlers) rate(c *fiber.Ctx) error {
	const op = "chat.rate"
	m, err := h.member(c)
	if err != nil {
		return err
	}
	var in struct {
		Score        int                   `json:"score"`
		Conversation rental.ConversationID `json:"conversation"`
	}
	if err := body(c, &in); err != nil {
		return err
	}
	id := in.Conversation
	if id == 0 {
		latest, err := h.b.db.LatestConversationOf(c.UserContext(), m.ID)
		if err != nil {
			return err
		}
		if latest == nil {
			return rental.Errorf(op, rental.KindNotFound, "还没有可评价的会话 (no conversation to rate)")
		}
		id = latest.ID
	}
	if err := h.b.AppRating(c.UserContext(), m, id, in.Score); err != nil {
		if errors.Is(err, store.ErrDuplicateMessage) {
			return rental.Errorf(op, rental.KindConflict, "已经评过分了 (already rated)")
		}
		return err
	}
	conv, err := h.b.db.Conversation(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"conversation": conversationBrief(&conv, newStaffNames(c.UserContext(), h.b.db))})
}
