package store

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tacklegate/tacklegate/rental"
)

// The conversations of the message bridge: rows, reads for the staff and
// owner APIs, and the transcript with its chain. Writes happen in
// bridge.go, inside the transactions that also mark callbacks processed and
// enqueue the sends they cause.

type conversationRow struct {
	ID              int64 `gorm:"primaryKey"`
	MemberID        int64
	OpenID          string `gorm:"column:openid"`
	CustomerChannel string
	State           string
	Assignee        string
	PrevID          *int64
	Tags            string
	OpenedAt        time.Time
	AssignedAt      *time.Time
	ResolvedAt      *time.Time
	ResolvedBy      string
	LastCustomerAt  *time.Time
	LastStaffAt     *time.Time
	AwayReplyAt     *time.Time
	QueuedNoticeAt  *time.Time
	RatingAskedAt   *time.Time
	Rating          int
	RatedAt         *time.Time
	MsgCount        int
	LastLink        string
	CustomerLease   *time.Time
	StaffLease      *time.Time
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

func (conversationRow) TableName() string { return "conversations" }

type chatMessageRow struct {
	ID             int64 `gorm:"primaryKey"`
	ConversationID int64
	Seq            int
	Direction      string
	Kind           string
	Author         string
	Upstream       *string
	Body           []byte
	MediaType      string
	MediaSize      int64
	MediaHash      string
	VoiceFormat    string
	DurationMS     int64 `gorm:"column:duration_ms"`
	CreatedAt      time.Time
	ContentHash    string
	PrevLink       string
	Link           string
}

func (chatMessageRow) TableName() string { return "chat_messages" }

type chatMediaRow struct {
	MessageID int64 `gorm:"primaryKey;autoIncrement:false"`
	Data      []byte
}

func (chatMediaRow) TableName() string { return "chat_media" }

type chatDeliveryRow struct {
	MessageID int64  `gorm:"primaryKey;autoIncrement:false"`
	Side      string `gorm:"primaryKey"`
	Status    string
	Reason    string
	Recipient string
	Tries     int
	UpdatedAt time.Time
}

func (chatDeliveryRow) TableName() string { return "chat_deliveries" }

type staffDutyRow struct {
	UserID              string `gorm:"column:userid;primaryKey"`
	OnDuty              bool
	CurrentConversation *int64
	UpdatedAt           time.Time
}

func (staffDutyRow) TableName() string { return "staff_duty" }

type bridgeSentRow struct {
	Key    string `gorm:"primaryKey"`
	SentAt time.Time
}

func (bridgeSentRow) TableName() string { return "bridge_sent" }

// Delivery sides.
const (
	SideCustomer = "customer" // to the customer in WeChat
	SideStaff    = "staff"    // to staff in WeCom
)

func chatTimePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func chatTimeVal(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func (r conversationRow) conversation() rental.Conversation {
	c := rental.Conversation{
		ID: rental.ConversationID(r.ID), MemberID: rental.MemberID(r.MemberID), OpenID: r.OpenID,
		State: rental.ConversationState(r.State), Assignee: r.Assignee, CustomerChannel: r.CustomerChannel,
		OpenedAt: r.OpenedAt.UTC(), AssignedAt: chatTimeVal(r.AssignedAt), ResolvedAt: chatTimeVal(r.ResolvedAt), ResolvedBy: r.ResolvedBy,
		LastCustomerAt: chatTimeVal(r.LastCustomerAt), LastStaffAt: chatTimeVal(r.LastStaffAt),
		AwayReplyAt: chatTimeVal(r.AwayReplyAt), QueuedNoticeAt: chatTimeVal(r.QueuedNoticeAt),
		RatingAskedAt: chatTimeVal(r.RatingAskedAt), Rating: r.Rating, RatedAt: chatTimeVal(r.RatedAt),
		Head: rental.ConversationHead{Count: r.MsgCount, Link: r.LastLink},
	}
	if r.PrevID != nil {
		c.PrevID = rental.ConversationID(*r.PrevID)
	}
	if r.Tags != "" {
		json.Unmarshal([]byte(r.Tags), &c.Tags) //nolint:errcheck // written by us; a bad value reads as no tags
	}
	return c
}

func chatChannel(ch string) string {
	if ch == "" {
		return rental.CustomerViaWeChat
	}
	return ch
}

// conversationUpdates are the mutable columns of a conversation (the chain
// head moves only in append).
func conversationUpdates(c *rental.Conversation, now time.Time) map[string]any {
	tags := ""
	if len(c.Tags) > 0 {
		b, _ := json.Marshal(c.Tags)
		tags = string(b)
	}
	return map[string]any{
		"openid": c.OpenID, "customer_channel": chatChannel(c.CustomerChannel), "state": string(c.State), "assignee": c.Assignee, "tags": tags,
		"assigned_at": chatTimePtr(c.AssignedAt), "resolved_at": chatTimePtr(c.ResolvedAt), "resolved_by": c.ResolvedBy,
		"last_customer_at": chatTimePtr(c.LastCustomerAt), "last_staff_at": chatTimePtr(c.LastStaffAt),
		"away_reply_at": chatTimePtr(c.AwayReplyAt), "queued_notice_at": chatTimePtr(c.QueuedNoticeAt),
		"rating_asked_at": chatTimePtr(c.RatingAskedAt), "rating": c.Rating, "rated_at": chatTimePtr(c.RatedAt),
		"updated_at": now.UTC(),
	}
}

// chatAD binds a sealed body or media to its conversation and position:
// moved elsewhere, it no longer opens.
func chatAD(conv rental.ConversationID, seq int, part string) []byte {
	return []byte("chat\x00" + strconv.FormatInt(int64(conv), 10) + "\x00" + strconv.Itoa(seq) + "\x00" + part)
}

// chatMessage turns a row into a message, opening the body and, when media
// is given, the media. A seal that does not open marks the message
// Unreadable instead of failing, so that the chain check can say where.
func (r chatMessageRow) chatMessage(s *sealer, media []byte, withMedia bool) rental.ChatMessage {
	m := rental.ChatMessage{
		ID: rental.ChatMessageID(r.ID), ConversationID: rental.ConversationID(r.ConversationID), Seq: r.Seq,
		Direction: rental.ChatDirection(r.Direction), Kind: rental.ChatKind(r.Kind), Author: r.Author,
		MediaType: r.MediaType, MediaSize: r.MediaSize, MediaHash: r.MediaHash, VoiceFormat: r.VoiceFormat,
		Duration: time.Duration(r.DurationMS) * time.Millisecond, CreatedAt: r.CreatedAt.UTC(),
		ContentHash: r.ContentHash, PrevLink: r.PrevLink, Link: r.Link,
	}
	if r.Upstream != nil {
		m.Upstream = *r.Upstream
	}
	if s == nil {
		// The conversation's key was destroyed by retention (chatkeys.go):
		// the content is gone for good; hashes and links remain.
		m.Shredded = true
		return m
	}
	if r.Body != nil {
		text, err := s.open(r.Body, chatAD(m.ConversationID, m.Seq, "body"))
		if err != nil {
			m.Unreadable = true
		}
		m.Text = string(text)
	}
	if withMedia && r.MediaSize > 0 {
		if media == nil {
			m.Unreadable = true // the media row is gone
		} else if data, err := s.open(media, chatAD(m.ConversationID, m.Seq, "media")); err != nil {
			m.Unreadable = true
		} else {
			m.Media = data
		}
	}
	return m
}

func (r chatDeliveryRow) delivery() rental.Delivery {
	return rental.Delivery{Status: rental.DeliveryStatus(r.Status), Reason: r.Reason, Recipient: r.Recipient, Tries: r.Tries, At: r.UpdatedAt.UTC()}
}

// loadMessages reads the messages a query selects, in conversation and seq
// order, with their deliveries and, if asked, their media.
func (db *DB) loadMessages(g *gorm.DB, q *gorm.DB, withMedia bool) ([]rental.ChatMessage, error) {
	s, err := db.sealerFor("store.loadMessages")
	if err != nil {
		return nil, err
	}
	var rows []chatMessageRow
	if err := q.Order("conversation_id, seq").Find(&rows).Error; err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, nil
	}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	media := map[int64][]byte{}
	if withMedia {
		var mrows []chatMediaRow
		if err := g.Where("message_id IN ?", ids).Find(&mrows).Error; err != nil {
			return nil, err
		}
		for _, m := range mrows {
			media[m.MessageID] = m.Data
		}
	}
	var drows []chatDeliveryRow
	if err := g.Where("message_id IN ?", ids).Find(&drows).Error; err != nil {
		return nil, err
	}
	type key struct {
		id   int64
		side string
	}
	deliveries := map[key]rental.Delivery{}
	for _, d := range drows {
		deliveries[key{d.MessageID, d.Side}] = d.delivery()
	}
	var convs []int64
	for _, r := range rows {
		if len(convs) == 0 || convs[len(convs)-1] != r.ConversationID {
			convs = append(convs, r.ConversationID)
		}
	}
	sealers, err := db.chatSealers(g, s, convs)
	if err != nil {
		return nil, err
	}
	out := make([]rental.ChatMessage, len(rows))
	for i, r := range rows {
		out[i] = r.chatMessage(sealers[r.ConversationID], media[r.ID], withMedia)
		out[i].ToCustomer = deliveries[key{r.ID, SideCustomer}]
		out[i].ToStaff = deliveries[key{r.ID, SideStaff}]
	}
	return out, nil
}

// Conversation reads one conversation.
func (db *DB) Conversation(ctx context.Context, id rental.ConversationID) (rental.Conversation, error) {
	var row conversationRow
	err := db.Gorm.WithContext(ctx).Where("id = ?", id).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return rental.Conversation{}, rental.Errorf("store.Conversation", rental.KindNotFound, "没有会话 #%s (no such conversation)", rental.ConversationCode(id))
	}
	if err != nil {
		return rental.Conversation{}, classify("store.Conversation", err)
	}
	return row.conversation(), nil
}

// Transcript reads a conversation and all its messages in order, texts
// opened, media too when withMedia. Messages whose sealed bytes do not open
// come back Unreadable: Conversation.VerifyChain reports them.
func (db *DB) Transcript(ctx context.Context, id rental.ConversationID, withMedia bool) (rental.Conversation, []rental.ChatMessage, error) {
	const op = "store.Transcript"
	c, err := db.Conversation(ctx, id)
	if err != nil {
		return c, nil, err
	}
	g := db.Gorm.WithContext(ctx)
	msgs, err := db.loadMessages(g, g.Where("conversation_id = ?", id), withMedia)
	if err != nil {
		return c, nil, classify(op, err)
	}
	return c, msgs, nil
}

// ChatMedia returns the media of one message, opened, with its type.
func (db *DB) ChatMedia(ctx context.Context, conv rental.ConversationID, seq int) ([]byte, string, error) {
	const op = "store.ChatMedia"
	g := db.Gorm.WithContext(ctx)
	msgs, err := db.loadMessages(g, g.Where("conversation_id = ? AND seq = ?", conv, seq), true)
	if err != nil {
		return nil, "", classify(op, err)
	}
	if len(msgs) == 0 || msgs[0].MediaSize == 0 {
		return nil, "", rental.Errorf(op, rental.KindNotFound, "这条消息没有图片或语音 (no media)")
	}
	if msgs[0].Shredded {
		return nil, "", rental.Errorf(op, rental.KindNotFound, "这条消息的内容已按保留期限销毁 (content destroyed by the retention policy)")
	}
	if msgs[0].Unreadable {
		return nil, "", rental.Errorf(op, rental.KindInternal, "文件已损坏 (media cannot be opened)")
	}
	return msgs[0].Media, msgs[0].MediaType, nil
}

// ConversationFilter selects conversations for lists. Lists page by id,
// newest first: pass the last ID of a page as Before to get the next.
type ConversationFilter struct {
	Live     bool   // only open and assigned ones
	Assignee string // only this staff member's ("" for all)
	Member   rental.MemberID
	Before   rental.ConversationID
	Limit    int // 1–100; 0 means 20
}

// ConversationSummary is a conversation with what a list shows of it.
type ConversationSummary struct {
	rental.Conversation
	Customer rental.Member
	Last     *rental.ChatMessage // the last message that is not an internal note, without media
	Waiting  int                 // customer messages not yet delivered to staff
}

// Conversations lists conversations, newest first.
func (db *DB) Conversations(ctx context.Context, f ConversationFilter) ([]ConversationSummary, error) {
	return db.conversations(db.Gorm.WithContext(ctx), f)
}

func (db *DB) conversations(g *gorm.DB, f ConversationFilter) ([]ConversationSummary, error) {
	const op = "store.Conversations"
	if f.Limit <= 0 || f.Limit > 100 {
		f.Limit = 20
	}
	q := g.Model(&conversationRow{})
	if f.Live {
		q = q.Where("state <> ?", string(rental.ConversationResolved))
	}
	if f.Assignee != "" {
		q = q.Where("assignee = ?", f.Assignee)
	}
	if f.Member != 0 {
		q = q.Where("member_id = ?", f.Member)
	}
	if f.Before > 0 {
		q = q.Where("id < ?", f.Before)
	}
	var rows []conversationRow
	if err := q.Order("id DESC").Limit(f.Limit).Find(&rows).Error; err != nil {
		return nil, classify(op, err)
	}
	out := make([]ConversationSummary, len(rows))
	for i, r := range rows {
		out[i].Conversation = r.conversation()
		var mr memberRow
		if err := g.Where("id = ?", r.MemberID).Take(&mr).Error; err != nil {
			return nil, classify(op, err)
		}
		out[i].Customer = mr.member()
		msgs, err := db.loadMessages(g, g.Where("conversation_id = ? AND direction <> ?", r.ID, string(rental.ChatNote)).
			Where("seq = (?)", g.Model(&chatMessageRow{}).Select("MAX(seq)").
				Where("conversation_id = ? AND direction <> ?", r.ID, string(rental.ChatNote))), false)
		if err != nil {
			return nil, classify(op, err)
		}
		if len(msgs) == 1 {
			out[i].Last = &msgs[0]
		}
		var n int64
		err = g.Model(&chatDeliveryRow{}).
			Joins("JOIN chat_messages ON chat_messages.id = chat_deliveries.message_id").
			Where("chat_messages.conversation_id = ? AND chat_deliveries.side = ? AND chat_deliveries.status = ?", r.ID, SideStaff, string(rental.DeliveryStored)).
			Count(&n).Error
		if err != nil {
			return nil, classify(op, err)
		}
		out[i].Waiting = int(n)
	}
	return out, nil
}

// TagConversation replaces a conversation's tags.
func (db *DB) TagConversation(ctx context.Context, id rental.ConversationID, tags []string) error {
	b, _ := json.Marshal(tags)
	if len(tags) == 0 {
		b = nil
	}
	res := db.Gorm.WithContext(ctx).Model(&conversationRow{}).Where("id = ?", id).
		Updates(map[string]any{"tags": string(b), "updated_at": time.Now().UTC()})
	if res.Error != nil {
		return classify("store.TagConversation", res.Error)
	}
	if res.RowsAffected == 0 {
		return rental.Errorf("store.TagConversation", rental.KindNotFound, "没有会话 #%s (no such conversation)", rental.ConversationCode(id))
	}
	return nil
}

// bridgeLock adds FOR UPDATE on PostgreSQL; SQLite's write transactions
// (BEGIN IMMEDIATE) already exclude every other writer.
func (db *DB) bridgeLock(q *gorm.DB) *gorm.DB {
	if db.Dialect == Postgres {
		return q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	return q
}
