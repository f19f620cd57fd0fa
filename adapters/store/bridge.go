package store

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tacklegate/tacklegate/rental"
)

// The message bridge's persistence: the stored callbacks it processes, one
// transaction per callback (BridgeTx) in which the callback is marked
// processed together with everything it causes, and the delivery records
// the outbox handlers keep.

// InboundRef is a stored callback waiting to be processed.
type InboundRef struct {
	ID       int64
	Channel  rental.Channel
	From     string
	Kind     string
	Attempts int
	RetryAt  time.Time // zero: due now
}

// PendingInbound lists unprocessed callbacks of the channels, oldest first,
// including those waiting for a retry (so the caller can hold back later
// messages from the same sender and keep their order).
func (db *DB) PendingInbound(ctx context.Context, channels []rental.Channel, limit int) ([]InboundRef, error) {
	var rows []struct {
		ID       int64
		Channel  string
		FromUser string
		Kind     string
		Attempts int
		RetryAt  *time.Time
	}
	err := db.Gorm.WithContext(ctx).Table("inbound").Select("id, channel, from_user, kind, attempts, retry_at").
		Where("processed_at IS NULL AND channel IN ?", channels).Order("id").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, classify("store.PendingInbound", err)
	}
	out := make([]InboundRef, len(rows))
	for i, r := range rows {
		out[i] = InboundRef{ID: r.ID, Channel: rental.Channel(r.Channel), From: r.FromUser, Kind: r.Kind, Attempts: r.Attempts, RetryAt: chatTimeVal(r.RetryAt)}
	}
	return out, nil
}

// InboundFailed records a failed attempt at processing a callback; it is
// tried again from retryAt.
func (db *DB) InboundFailed(ctx context.Context, id int64, cause string, retryAt time.Time) error {
	err := db.Gorm.WithContext(ctx).Model(&inboundRow{}).Where("id = ? AND processed_at IS NULL", id).
		Updates(map[string]any{"attempts": gorm.Expr("attempts + 1"), "last_error": truncate(cause, 500), "retry_at": retryAt.UTC()}).Error
	return classify("store.InboundFailed", err)
}

// BridgeTx is one transaction of the message bridge.
type BridgeTx struct {
	db  *DB
	g   *gorm.DB
	s   *sealer
	now time.Time // the wall clock, for row bookkeeping (updated_at)
	// convKeys caches the conversations' own sealers (chatkeys.go).
	convKeys map[int64]*sealer
}

// InBridgeTx runs fn in a transaction: everything fn does commits together
// or not at all.
func (db *DB) InBridgeTx(ctx context.Context, fn func(tx *BridgeTx) error) error {
	const op = "store.InBridgeTx"
	s, err := db.sealerFor(op)
	if err != nil {
		return err
	}
	err = db.Gorm.WithContext(ctx).Transaction(func(g *gorm.DB) error {
		return fn(&BridgeTx{db: db, g: g, s: s, now: time.Now().UTC()})
	})
	return classify(op, err)
}

// ClaimInbound marks a callback processed, as the first step of the
// transaction that carries out its effects. False means it was processed
// already (by an earlier run or another instance): the caller must then do
// nothing. On PostgreSQL a concurrent claim waits for this transaction and
// then finds the row processed.
func (tx *BridgeTx) ClaimInbound(id int64) (bool, error) {
	res := tx.g.Model(&inboundRow{}).Where("id = ? AND processed_at IS NULL", id).
		Updates(map[string]any{"processed_at": tx.now, "last_error": ""})
	return res.RowsAffected == 1, res.Error
}

// ErrDuplicateMessage is returned by Append when a message with the same
// upstream id exists: the callback was handled before.
var ErrDuplicateMessage = errors.New("store: message already stored")

// Conversation reads a conversation for update.
func (tx *BridgeTx) Conversation(id rental.ConversationID) (*rental.Conversation, error) {
	var row conversationRow
	err := tx.db.bridgeLock(tx.g.Where("id = ?", id)).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, rental.Errorf("store.BridgeTx.Conversation", rental.KindNotFound, "没有会话 #%s", rental.ConversationCode(id))
	}
	if err != nil {
		return nil, err
	}
	c := row.conversation()
	return &c, nil
}

// LiveConversation returns the member's conversation that is not resolved,
// or nil.
func (tx *BridgeTx) LiveConversation(member rental.MemberID) (*rental.Conversation, error) {
	return tx.oneConversation(tx.g.Where("member_id = ? AND state <> ?", member, string(rental.ConversationResolved)))
}

// LatestConversation returns the member's most recent conversation, or nil.
func (tx *BridgeTx) LatestConversation(member rental.MemberID) (*rental.Conversation, error) {
	return tx.oneConversation(tx.g.Where("member_id = ?", member).Order("id DESC").Limit(1))
}

func (tx *BridgeTx) oneConversation(q *gorm.DB) (*rental.Conversation, error) {
	var rows []conversationRow
	if err := tx.db.bridgeLock(q).Find(&rows).Error; err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, nil
	}
	c := rows[0].conversation()
	return &c, nil
}

// OpenConversation inserts c (its ID and empty chain head are set). The
// database keeps one live conversation per member.
func (tx *BridgeTx) OpenConversation(c *rental.Conversation) error {
	c.Head = rental.NewConversationHead()
	row := conversationRow{
		MemberID: int64(c.MemberID), OpenID: c.OpenID, State: string(c.State), OpenedAt: c.OpenedAt.UTC(),
		LastLink: c.Head.Link, CreatedAt: tx.now, UpdatedAt: tx.now,
	}
	if c.PrevID != 0 {
		row.PrevID = i64(int64(c.PrevID))
	}
	if err := tx.g.Create(&row).Error; err != nil {
		return err
	}
	c.ID = rental.ConversationID(row.ID)
	if err := tx.newChatKey(row.ID); err != nil {
		return err
	}
	return tx.SaveConversation(c)
}

// SaveConversation writes c's mutable fields (state, assignee, times,
// rating…); its chain head moves only through Append.
func (tx *BridgeTx) SaveConversation(c *rental.Conversation) error {
	return tx.g.Model(&conversationRow{}).Where("id = ?", c.ID).Updates(conversationUpdates(c, tx.now)).Error
}

// Stored reports whether a message with this upstream id exists.
func (tx *BridgeTx) Stored(upstream string) (bool, error) {
	var n int64
	err := tx.g.Model(&chatMessageRow{}).Where("upstream = ?", upstream).Count(&n).Error
	return n > 0, err
}

// Append chains m after c's head and stores it: the text and media sealed,
// a delivery record for each side whose status is set, and c's new head.
// A message whose Upstream was stored before gives ErrDuplicateMessage.
func (tx *BridgeTx) Append(c *rental.Conversation, m *rental.ChatMessage) error {
	m.ConversationID = c.ID
	if m.Upstream != "" {
		if dup, err := tx.Stored(m.Upstream); err != nil || dup {
			if dup {
				return ErrDuplicateMessage
			}
			return err
		}
	}
	head, err := m.Chain(c.Head)
	if err != nil {
		return err
	}
	cs, err := tx.convSealer(c.ID)
	if err != nil {
		return err
	}
	row := chatMessageRow{
		ConversationID: int64(c.ID), Seq: m.Seq, Direction: string(m.Direction), Kind: string(m.Kind), Author: m.Author,
		MediaType: m.MediaType, MediaSize: m.MediaSize, MediaHash: m.MediaHash, VoiceFormat: m.VoiceFormat,
		DurationMS: m.Duration.Milliseconds(), CreatedAt: m.CreatedAt, ContentHash: m.ContentHash, PrevLink: m.PrevLink, Link: m.Link,
	}
	if m.Upstream != "" {
		row.Upstream = &m.Upstream
	}
	if m.Text != "" {
		row.Body = cs.seal([]byte(m.Text), chatAD(c.ID, m.Seq, "body"))
	}
	if err := tx.g.Create(&row).Error; err != nil {
		if isUniqueViolation(err) && m.Upstream != "" {
			return ErrDuplicateMessage
		}
		return err
	}
	m.ID = rental.ChatMessageID(row.ID)
	if len(m.Media) > 0 {
		if err := tx.g.Create(&chatMediaRow{MessageID: row.ID, Data: cs.seal(m.Media, chatAD(c.ID, m.Seq, "media"))}).Error; err != nil {
			return err
		}
	}
	for side, d := range map[string]*rental.Delivery{SideCustomer: &m.ToCustomer, SideStaff: &m.ToStaff} {
		if d.Status == rental.DeliveryNone {
			continue
		}
		d.At = tx.now
		dr := chatDeliveryRow{MessageID: row.ID, Side: side, Status: string(d.Status), Reason: d.Reason, Recipient: d.Recipient, UpdatedAt: tx.now}
		if err := tx.g.Create(&dr).Error; err != nil {
			return err
		}
	}
	res := tx.g.Model(&conversationRow{}).Where("id = ? AND msg_count = ?", c.ID, c.Head.Count).
		Updates(map[string]any{"msg_count": head.Count, "last_link": head.Link, "updated_at": tx.now})
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected != 1 {
		return rental.Errorf("store.BridgeTx.Append", rental.KindConflict, "会话 #%s 同时被修改，请重试 (conversation changed concurrently)", c.Code())
	}
	c.Head = head
	return nil
}

// Member reads a member.
func (tx *BridgeTx) Member(id rental.MemberID) (rental.Member, error) {
	var row memberRow
	if err := tx.g.Where("id = ?", id).Take(&row).Error; err != nil {
		return rental.Member{}, err
	}
	return row.member(), nil
}

// Messages reads a conversation's last n messages (all when n ≤ 0), in
// order, without media.
func (tx *BridgeTx) Messages(conv rental.ConversationID, n int) ([]rental.ChatMessage, error) {
	q := tx.g.Where("conversation_id = ?", conv)
	if n > 0 {
		q = q.Where("seq > (?)", tx.g.Model(&chatMessageRow{}).Select("COALESCE(MAX(seq), 0) - ?", n).Where("conversation_id = ?", conv))
	}
	return tx.db.loadMessages(tx.g, q, false)
}

// Conversations lists conversations inside the transaction.
func (tx *BridgeTx) Conversations(f ConversationFilter) ([]ConversationSummary, error) {
	return tx.db.conversations(tx.g, f)
}

// QueuedConversations lists live conversations nobody is assigned to,
// oldest first.
func (tx *BridgeTx) QueuedConversations(limit int) ([]rental.Conversation, error) {
	var rows []conversationRow
	err := tx.g.Where("state = ?", string(rental.ConversationOpen)).Order("id").Limit(limit).Find(&rows).Error
	out := make([]rental.Conversation, len(rows))
	for i, r := range rows {
		out[i] = r.conversation()
	}
	return out, err
}

// StaffMember is a registered staff member with their bridge state.
type StaffMember struct {
	Staff
	OnDuty  bool
	Current rental.ConversationID // where plain text from the WeCom app goes; 0: none
}

// StaffMember reads a staff member by WeCom userid; not_found when not
// registered.
func (tx *BridgeTx) StaffMember(userID string) (StaffMember, error) {
	var row staffRow
	if err := tx.g.Where("wecom_userid = ?", userID).Take(&row).Error; err != nil {
		return StaffMember{}, classify("store.BridgeTx.StaffMember", err)
	}
	sm := StaffMember{Staff: Staff{ID: row.ID, WeComUserID: row.WeComUserID, Name: row.Name, Active: row.Active}, OnDuty: true}
	var duty []staffDutyRow
	if err := tx.g.Where("userid = ?", userID).Find(&duty).Error; err != nil {
		return sm, err
	}
	if len(duty) == 1 {
		sm.OnDuty = duty[0].OnDuty
		if duty[0].CurrentConversation != nil {
			sm.Current = rental.ConversationID(*duty[0].CurrentConversation)
		}
	}
	return sm, nil
}

func (tx *BridgeTx) upsertDuty(userID string, set map[string]any, row staffDutyRow) error {
	row.UserID, row.UpdatedAt = userID, tx.now
	set["updated_at"] = tx.now
	cols := make([]string, 0, len(set))
	for k := range set {
		cols = append(cols, k)
	}
	return tx.g.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "userid"}}, DoUpdates: clause.AssignmentColumns(cols)}).Create(&row).Error
}

// SetOnDuty records /on or /off.
func (tx *BridgeTx) SetOnDuty(userID string, on bool) error {
	var cur *int64
	var existing []staffDutyRow
	if err := tx.g.Where("userid = ?", userID).Find(&existing).Error; err != nil {
		return err
	}
	if len(existing) == 1 {
		cur = existing[0].CurrentConversation
	}
	return tx.upsertDuty(userID, map[string]any{"on_duty": on}, staffDutyRow{OnDuty: on, CurrentConversation: cur})
}

// SetCurrent makes conv the staff member's current conversation (0 clears).
func (tx *BridgeTx) SetCurrent(userID string, conv rental.ConversationID) error {
	var cur *int64
	if conv != 0 {
		cur = i64(int64(conv))
	}
	onDuty := true
	var existing []staffDutyRow
	if err := tx.g.Where("userid = ?", userID).Find(&existing).Error; err != nil {
		return err
	}
	if len(existing) == 1 {
		onDuty = existing[0].OnDuty
	}
	return tx.upsertDuty(userID, map[string]any{"current_conversation": cur}, staffDutyRow{OnDuty: onDuty, CurrentConversation: cur})
}

// StaffLoads lists active staff in a stable order with their duty flag
// (on unless they said /off) and how many live conversations each has.
func (tx *BridgeTx) StaffLoads() ([]rental.StaffLoad, error) {
	return staffLoads(tx.g)
}

func staffLoads(g *gorm.DB) ([]rental.StaffLoad, error) {
	var rows []struct {
		UserID string `gorm:"column:wecom_userid"`
		Name   string
		OnDuty *bool
		Open   int
	}
	err := g.Table("staff AS s").
		Select("s.wecom_userid, s.name, d.on_duty, (SELECT COUNT(*) FROM conversations c WHERE c.assignee = s.wecom_userid AND c.state = ?) AS open", string(rental.ConversationAssigned)).
		Joins("LEFT JOIN staff_duty d ON d.userid = s.wecom_userid").
		Where("s.active = ?", true).Order("s.id").Scan(&rows).Error
	if err != nil {
		return nil, err
	}
	out := make([]rental.StaffLoad, len(rows))
	for i, r := range rows {
		out[i] = rental.StaffLoad{UserID: r.UserID, Name: r.Name, OnDuty: r.OnDuty == nil || *r.OnDuty, Open: r.Open}
	}
	return out, nil
}

// ReleaseWaiting makes the member's replies that wait for the customer to
// write again (held after WeChat's 5-reply limit, or announced by a
// subscribe message outside the 48-hour window) due again, and returns the
// conversations that have some.
func (tx *BridgeTx) ReleaseWaiting(member rental.MemberID) ([]rental.ConversationID, error) {
	var convs []int64
	err := tx.g.Model(&chatDeliveryRow{}).Distinct().
		Joins("JOIN chat_messages ON chat_messages.id = chat_deliveries.message_id").
		Joins("JOIN conversations ON conversations.id = chat_messages.conversation_id").
		Where("conversations.member_id = ? AND chat_deliveries.side = ? AND chat_deliveries.status IN ?",
			member, SideCustomer, []string{string(rental.DeliveryHeld), string(rental.DeliveryNotified)}).
		Pluck("chat_messages.conversation_id", &convs).Error
	if err != nil || len(convs) == 0 {
		return nil, err
	}
	sub := tx.g.Model(&chatMessageRow{}).Select("id").Where("conversation_id IN ?", convs)
	err = tx.g.Model(&chatDeliveryRow{}).
		Where("side = ? AND status IN ? AND message_id IN (?)", SideCustomer, []string{string(rental.DeliveryHeld), string(rental.DeliveryNotified)}, sub).
		Updates(map[string]any{"status": string(rental.DeliveryStored), "updated_at": tx.now}).Error
	out := make([]rental.ConversationID, len(convs))
	for i, c := range convs {
		out[i] = rental.ConversationID(c)
	}
	return out, err
}

// Waiting lists a conversation's messages due for delivery to side, in
// order, with media, at most limit.
func (tx *BridgeTx) Waiting(conv rental.ConversationID, side string, limit int) ([]rental.ChatMessage, error) {
	sub := tx.g.Model(&chatDeliveryRow{}).Select("message_id").Where("side = ? AND status = ?", side, string(rental.DeliveryStored))
	return tx.db.loadMessages(tx.g, tx.g.Where("conversation_id = ? AND id IN (?)", conv, sub).Limit(limit), true)
}

// SetDelivery records how far a message got on one side. A side that had
// no record gets one.
func (tx *BridgeTx) SetDelivery(msg rental.ChatMessageID, side string, d rental.Delivery) error {
	row := chatDeliveryRow{MessageID: int64(msg), Side: side, Status: string(d.Status), Reason: truncate(d.Reason, 500), Recipient: d.Recipient, Tries: 1, UpdatedAt: tx.now}
	return tx.g.Clauses(clause.OnConflict{
		Columns: []clause.Column{{Name: "message_id"}, {Name: "side"}},
		DoUpdates: clause.Set{
			{Column: clause.Column{Name: "status"}, Value: row.Status},
			{Column: clause.Column{Name: "reason"}, Value: row.Reason},
			{Column: clause.Column{Name: "recipient"}, Value: row.Recipient},
			{Column: clause.Column{Name: "tries"}, Value: gorm.Expr("chat_deliveries.tries + 1")},
			{Column: clause.Column{Name: "updated_at"}, Value: tx.now},
		},
	}).Create(&row).Error
}

// Enqueue adds an outbox message in this transaction: it exists exactly
// when the change that causes it commits.
func (tx *BridgeTx) Enqueue(kind, key string, payload []byte) error {
	return tx.db.enqueue(tx.g, kind, key, payload)
}

// MarkSent remembers that the send with this key went out.
func (tx *BridgeTx) MarkSent(key string) error {
	return tx.g.Clauses(clause.OnConflict{DoNothing: true}).Create(&bridgeSentRow{Key: key, SentAt: tx.now}).Error
}

// WasSent reports whether the send with this key went out before.
func (db *DB) WasSent(ctx context.Context, key string) (bool, error) {
	var n int64
	err := db.Gorm.WithContext(ctx).Model(&bridgeSentRow{}).Where("key = ?", key).Count(&n).Error
	return n > 0, classify("store.WasSent", err)
}

// LeaseConversation takes a conversation's delivery lease for one side
// until `until`, so that two outbox workers never send one conversation's
// messages at once (which could reorder or repeat them). False: someone
// else holds it.
func (db *DB) LeaseConversation(ctx context.Context, conv rental.ConversationID, side string, until time.Time) (bool, error) {
	col := "customer_lease"
	if side == SideStaff {
		col = "staff_lease"
	}
	now := time.Now().UTC()
	res := db.Gorm.WithContext(ctx).Model(&conversationRow{}).
		Where("id = ? AND ("+col+" IS NULL OR "+col+" < ?)", conv, now).
		Update(col, until.UTC())
	return res.RowsAffected == 1, classify("store.LeaseConversation", res.Error)
}

// ReleaseConversation gives a delivery lease back.
func (db *DB) ReleaseConversation(ctx context.Context, conv rental.ConversationID, side string) error {
	col := "customer_lease"
	if side == SideStaff {
		col = "staff_lease"
	}
	return classify("store.ReleaseConversation", db.Gorm.WithContext(ctx).Model(&conversationRow{}).Where("id = ?", conv).Update(col, nil).Error)
}

// CountChatMessages counts stored messages (tests and benchmarks).
func (db *DB) CountChatMessages(ctx context.Context) (int64, error) {
	var n int64
	err := db.Gorm.WithContext(ctx).Model(&chatMessageRow{}).Count(&n).Error
	return n, classify("store.CountChatMessages", err)
}

// WaitingMessages lists a conversation's messages due for delivery to side
// (status stored), in order, with media, at most limit.
func (db *DB) WaitingMessages(ctx context.Context, conv rental.ConversationID, side string, limit int) ([]rental.ChatMessage, error) {
	g := db.Gorm.WithContext(ctx)
	sub := g.Model(&chatDeliveryRow{}).Select("message_id").Where("side = ? AND status = ?", side, string(rental.DeliveryStored))
	msgs, err := db.loadMessages(g, g.Where("conversation_id = ? AND id IN (?)", conv, sub).Limit(limit), true)
	return msgs, classify("store.WaitingMessages", err)
}

// SetDelivery records how far a message got on one side, on its own.
func (db *DB) SetDelivery(ctx context.Context, msg rental.ChatMessageID, side string, d rental.Delivery) error {
	return db.InBridgeTx(ctx, func(tx *BridgeTx) error { return tx.SetDelivery(msg, side, d) })
}

// InboundGaveUp marks a callback processed without effect after attempts
// that cannot succeed (its content is refused as such); last_error keeps
// why, for the owner.
func (db *DB) InboundGaveUp(ctx context.Context, id int64, cause string) error {
	err := db.Gorm.WithContext(ctx).Model(&inboundRow{}).Where("id = ? AND processed_at IS NULL", id).
		Updates(map[string]any{"attempts": gorm.Expr("attempts + 1"), "last_error": truncate("gave up: "+cause, 500), "processed_at": time.Now().UTC()}).Error
	return classify("store.InboundGaveUp", err)
}

// StaleWaiting lists conversations with messages that have waited for
// delivery to side since before `before`: the bridge enqueues a flush for
// them again, in case the outbox row that should have sent them gave up.
// For the staff side only conversations with an assignee count (the others
// wait for one).
func (db *DB) StaleWaiting(ctx context.Context, side string, before time.Time, limit int) ([]rental.ConversationID, error) {
	var ids []int64
	q := db.Gorm.WithContext(ctx).Model(&chatDeliveryRow{}).Distinct().
		Joins("JOIN chat_messages ON chat_messages.id = chat_deliveries.message_id").
		Joins("JOIN conversations ON conversations.id = chat_messages.conversation_id").
		Where("chat_deliveries.side = ? AND chat_deliveries.status = ? AND chat_deliveries.updated_at < ?", side, string(rental.DeliveryStored), before.UTC())
	if side == SideStaff {
		q = q.Where("conversations.assignee <> ''")
	}
	err := q.Limit(limit).Pluck("chat_messages.conversation_id", &ids).Error
	out := make([]rental.ConversationID, len(ids))
	for i, id := range ids {
		out[i] = rental.ConversationID(id)
	}
	return out, classify("store.StaleWaiting", err)
}
