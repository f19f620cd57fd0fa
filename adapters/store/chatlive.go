package store

import (
	"context"
	"time"

	"gorm.io/gorm/clause"

	"github.com/tacklegate/tacklegate/rental"
)

// Reads and small writes for the in-app chat, the staff console and
// presence: outside the bridge's processing transactions, because none of
// them causes a send.

type staffReadRow struct {
	UserID         string `gorm:"column:userid;primaryKey"`
	ConversationID int64  `gorm:"primaryKey;autoIncrement:false"`
	Seq            int
	UpdatedAt      time.Time
}

func (staffReadRow) TableName() string { return "staff_reads" }

// StaffLoads lists active staff in a stable order with their duty flag
// (on unless they went off duty) and how many live conversations each has.
func (db *DB) StaffLoads(ctx context.Context) ([]rental.StaffLoad, error) {
	loads, err := staffLoads(db.Gorm.WithContext(ctx))
	return loads, classify("store.StaffLoads", err)
}

// LatestConversationOf returns the member's most recent conversation, or
// nil when they never wrote.
func (db *DB) LatestConversationOf(ctx context.Context, member rental.MemberID) (*rental.Conversation, error) {
	var rows []conversationRow
	if err := db.Gorm.WithContext(ctx).Where("member_id = ?", member).Order("id DESC").Limit(1).Find(&rows).Error; err != nil {
		return nil, classify("store.LatestConversationOf", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	c := rows[0].conversation()
	return &c, nil
}

// ChatPage reads up to limit messages of a conversation, without media, in
// order: those before seq `before` (0: the newest), or, with after > 0,
// those after seq `after` (oldest first). Internal notes only withNotes.
func (db *DB) ChatPage(ctx context.Context, conv rental.ConversationID, before, after, limit int, withNotes bool) ([]rental.ChatMessage, error) {
	const op = "store.ChatPage"
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	g := db.Gorm.WithContext(ctx)
	q := g.Model(&chatMessageRow{}).Select("id").Where("conversation_id = ?", conv)
	if !withNotes {
		q = q.Where("direction <> ?", string(rental.ChatNote))
	}
	if after > 0 {
		q = q.Where("seq > ?", after).Order("seq").Limit(limit)
	} else {
		if before > 0 {
			q = q.Where("seq < ?", before)
		}
		q = q.Order("seq DESC").Limit(limit)
	}
	var ids []int64
	if err := q.Pluck("id", &ids).Error; err != nil {
		return nil, classify(op, err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	msgs, err := db.loadMessages(g, g.Where("id IN ?", ids), false)
	return msgs, classify(op, err)
}

// MarkRead records that a staff member has read a conversation up to seq;
// it never moves back.
func (db *DB) MarkRead(ctx context.Context, userID string, conv rental.ConversationID, seq int) error {
	now := time.Now().UTC()
	row := staffReadRow{UserID: userID, ConversationID: int64(conv), Seq: seq, UpdatedAt: now}
	err := db.Gorm.WithContext(ctx).Clauses(clause.OnConflict{
		Columns: []clause.Column{{Name: "userid"}, {Name: "conversation_id"}},
		DoUpdates: clause.Set{
			{Column: clause.Column{Name: "seq"}, Value: clause.Expr{SQL: "CASE WHEN staff_reads.seq > ? THEN staff_reads.seq ELSE ? END", Vars: []any{seq, seq}}},
			{Column: clause.Column{Name: "updated_at"}, Value: now},
		},
	}).Create(&row).Error
	return classify("store.MarkRead", err)
}

// Unread counts, per conversation, the customer's messages a staff member
// has not read.
func (db *DB) Unread(ctx context.Context, userID string, convs []rental.ConversationID) (map[rental.ConversationID]int, error) {
	out := map[rental.ConversationID]int{}
	if len(convs) == 0 {
		return out, nil
	}
	var rows []struct {
		ConversationID int64
		N              int
	}
	err := db.Gorm.WithContext(ctx).Table("chat_messages AS m").
		Select("m.conversation_id, COUNT(*) AS n").
		Joins("LEFT JOIN staff_reads r ON r.conversation_id = m.conversation_id AND r.userid = ?", userID).
		Where("m.conversation_id IN ? AND m.direction = ? AND m.seq > COALESCE(r.seq, 0)", convs, string(rental.ChatIn)).
		Group("m.conversation_id").Scan(&rows).Error
	if err != nil {
		return nil, classify("store.Unread", err)
	}
	for _, r := range rows {
		out[rental.ConversationID(r.ConversationID)] = r.N
	}
	return out, nil
}

// SetDuty records a staff member going on or off duty outside a bridge
// command (the console's switch).
func (db *DB) SetDuty(ctx context.Context, userID string, on bool) error {
	return db.InBridgeTx(ctx, func(tx *BridgeTx) error { return tx.SetOnDuty(userID, on) })
}

// MessageByUpstream finds a message by its upstream id (a retried in-app
// send finds the message it stored the first time).
func (db *DB) MessageByUpstream(ctx context.Context, upstream string) (rental.ChatMessage, error) {
	const op = "store.MessageByUpstream"
	g := db.Gorm.WithContext(ctx)
	msgs, err := db.loadMessages(g, g.Where("upstream = ?", upstream), false)
	if err != nil {
		return rental.ChatMessage{}, classify(op, err)
	}
	if len(msgs) == 0 {
		return rental.ChatMessage{}, rental.Errorf(op, rental.KindNotFound, "没有这条消息 (no such message)")
	}
	return msgs[0], nil
}

// Unanswered lists live, assigned conversations whose customer has waited
// since before `before` for an answer (no staff message after their last
// one) and which were assigned before `before`: candidates for
// reassignment.
func (db *DB) Unanswered(ctx context.Context, before time.Time, limit int) ([]rental.ConversationID, error) {
	var ids []int64
	err := db.Gorm.WithContext(ctx).Model(&conversationRow{}).
		Where("state = ? AND assignee <> '' AND last_customer_at IS NOT NULL AND last_customer_at < ? AND assigned_at < ?",
			string(rental.ConversationAssigned), before.UTC(), before.UTC()).
		Where("last_staff_at IS NULL OR last_staff_at < last_customer_at").
		Order("id").Limit(limit).Pluck("id", &ids).Error
	out := make([]rental.ConversationID, len(ids))
	for i, id := range ids {
		out[i] = rental.ConversationID(id)
	}
	return out, classify("store.Unanswered", err)
}
