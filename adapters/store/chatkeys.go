package store

import (
	"context"
	"crypto/rand"
	"strconv"
	"time"

	"gorm.io/gorm"

	"github.com/tacklegate/tacklegate/rental"
)

// Retention of conversations: crypto-shredding.
//
// Messages are evidence: chat_messages and chat_media are append-only, and
// the database refuses UPDATE and DELETE on them (migration 00020), so a
// retention policy cannot delete old messages without breaking what makes
// them evidence. Instead each conversation opened since migration 00051
// has a key of its own (random, 256 bits) that seals its texts and media;
// the key is kept in chat_keys, wrapped (sealed) with the data key. When a
// resolved conversation passes the retention period, ShredConversations
// destroys the wrapped key. From then on:
//
//   - the sealed bytes are still there, untouched, but nobody can open them,
//     including whoever holds the data key or a backup taken afterwards;
//   - the chain still verifies: every message's content hash, metadata and
//     link are stored in the clear, so the export and the printable
//     transcript show "content destroyed on <date>" with the chain intact,
//     and a deleted or reordered message is still detected;
//   - chat_keys keeps when and why, so the purge itself is on record.
//
// Backups taken before the shredding still hold the wrapped key: the
// retention period of backups must not exceed the policy's. Conversations
// opened before migration 00051 were sealed with the data key itself and
// cannot be shredded; they are reported as kept.

type chatKeyRow struct {
	ConversationID int64 `gorm:"primaryKey;autoIncrement:false"`
	Wrapped        []byte
	CreatedAt      time.Time
	ShreddedAt     *time.Time
	Reason         string
}

func (chatKeyRow) TableName() string { return "chat_keys" }

func chatKeyAD(conv int64) []byte { return []byte("chatkey\x00" + strconv.FormatInt(conv, 10)) }

// newChatKey makes and stores the key of a new conversation.
func (tx *BridgeTx) newChatKey(conv int64) error {
	key := make([]byte, 32)
	rand.Read(key) //nolint:errcheck // crypto/rand never fails on Linux
	row := chatKeyRow{ConversationID: conv, Wrapped: tx.s.seal(key, chatKeyAD(conv)), CreatedAt: tx.now}
	if err := tx.g.Create(&row).Error; err != nil {
		return err
	}
	s, err := newSealer(key)
	if err != nil {
		return err
	}
	tx.keys()[conv] = s
	return nil
}

func (tx *BridgeTx) keys() map[int64]*sealer {
	if tx.convKeys == nil {
		tx.convKeys = map[int64]*sealer{}
	}
	return tx.convKeys
}

// convSealer is the sealer of a conversation's content: its own key, or
// the data key for conversations from before chat_keys. Appending to a
// shredded conversation is refused.
func (tx *BridgeTx) convSealer(conv rental.ConversationID) (*sealer, error) {
	if s, ok := tx.keys()[int64(conv)]; ok {
		return s, nil
	}
	m, err := tx.db.chatSealers(tx.g, tx.s, []int64{int64(conv)})
	if err != nil {
		return nil, err
	}
	s := m[int64(conv)]
	if s == nil {
		return nil, rental.Errorf("store.convSealer", rental.KindConflict, "会话 #%s 的内容已按保留期限销毁 (conversation shredded)", rental.ConversationCode(conv))
	}
	tx.keys()[int64(conv)] = s
	return s, nil
}

// chatSealers returns, per conversation, the sealer of its content: its
// unwrapped key, the data key (no key row: a conversation from before
// chat_keys), or nil when the key was shredded.
func (db *DB) chatSealers(g *gorm.DB, dataKey *sealer, convs []int64) (map[int64]*sealer, error) {
	var rows []chatKeyRow
	if err := g.Where("conversation_id IN ?", convs).Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make(map[int64]*sealer, len(convs))
	for _, c := range convs {
		out[c] = dataKey
	}
	for _, r := range rows {
		if r.Wrapped == nil {
			out[r.ConversationID] = nil
			continue
		}
		key, err := dataKey.open(r.Wrapped, chatKeyAD(r.ConversationID))
		if err != nil {
			// The wrapped key was altered: a key nothing was sealed with,
			// so every message reads as Unreadable (tampering), unlike a
			// shredded key (retention).
			key = make([]byte, 32)
			rand.Read(key) //nolint:errcheck // crypto/rand never fails on Linux
		}
		s, err := newSealer(key)
		if err != nil {
			return nil, err
		}
		out[r.ConversationID] = s
	}
	return out, nil
}

// Shredding says whether and when a conversation's content was destroyed.
type Shredding struct {
	At     time.Time
	Reason string
}

// ConversationShredded reports whether the conversation's key was
// destroyed (nil: its content is readable).
func (db *DB) ConversationShredded(ctx context.Context, conv rental.ConversationID) (*Shredding, error) {
	var rows []chatKeyRow
	if err := db.Gorm.WithContext(ctx).Where("conversation_id = ? AND wrapped IS NULL", conv).Find(&rows).Error; err != nil {
		return nil, classify("store.ConversationShredded", err)
	}
	if len(rows) == 0 || rows[0].ShreddedAt == nil {
		return nil, nil
	}
	return &Shredding{At: rows[0].ShreddedAt.UTC(), Reason: rows[0].Reason}, nil
}

// RetentionResult is what one retention pass did.
type RetentionResult struct {
	Shredded []rental.ConversationID // content destroyed now
	Legacy   int                     // past the period but sealed with the data key (before chat_keys): kept
	Payloads int                     // stored WeChat/WeCom callbacks whose payload was cleared
}

// ShredConversations destroys the keys of conversations resolved before
// `before` (at most limit of them) and clears the payloads of the WeChat
// and WeCom callbacks processed before then (they hold the same texts).
func (db *DB) ShredConversations(ctx context.Context, before time.Time, reason string, limit int) (RetentionResult, error) {
	const op = "store.ShredConversations"
	var res RetentionResult
	err := db.Gorm.WithContext(ctx).Transaction(func(g *gorm.DB) error {
		var ids []int64
		err := g.Model(&conversationRow{}).
			Joins("JOIN chat_keys k ON k.conversation_id = conversations.id").
			Where("conversations.state = ? AND conversations.resolved_at < ? AND k.wrapped IS NOT NULL", string(rental.ConversationResolved), before.UTC()).
			Order("conversations.id").Limit(limit).Pluck("conversations.id", &ids).Error
		if err != nil {
			return err
		}
		now := time.Now().UTC()
		if len(ids) > 0 {
			if err := g.Model(&chatKeyRow{}).Where("conversation_id IN ?", ids).
				Updates(map[string]any{"wrapped": nil, "shredded_at": now, "reason": truncate(reason, 200)}).Error; err != nil {
				return err
			}
		}
		for _, id := range ids {
			res.Shredded = append(res.Shredded, rental.ConversationID(id))
		}
		var legacy int64
		if err := g.Model(&conversationRow{}).
			Where("state = ? AND resolved_at < ? AND NOT EXISTS (SELECT 1 FROM chat_keys k WHERE k.conversation_id = conversations.id)",
				string(rental.ConversationResolved), before.UTC()).Count(&legacy).Error; err != nil {
			return err
		}
		res.Legacy = int(legacy)
		r := g.Model(&inboundRow{}).
			Where("channel IN ? AND processed_at IS NOT NULL AND processed_at < ? AND length(payload) > 0",
				[]string{string(rental.ChannelWeChat), string(rental.ChannelWeCom)}, before.UTC()).
			Update("payload", []byte{})
		if r.Error != nil {
			return r.Error
		}
		res.Payloads = int(r.RowsAffected)
		return nil
	})
	return res, classify(op, err)
}
