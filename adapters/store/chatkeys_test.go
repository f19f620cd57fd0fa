package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/rental"
)

// TestRetentionShredsButChainHolds: retention destroys a resolved
// conversation's key; its messages read back shredded (no text, no media)
// while the chain still verifies and still catches a deleted message;
// live conversations and newer ones are kept; an altered wrapped key
// reads as tampering, not as retention.
func TestRetentionShredsButChainHolds(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := newBridgeFixture(t, tg)
			before := time.Now().Add(time.Hour)

			// Live: kept.
			if res, err := f.db.ShredConversations(ctx, before, "test", 10); err != nil || len(res.Shredded) != 0 {
				t.Fatalf("live conversation shredded: %+v %v", res, err)
			}
			err := f.db.InBridgeTx(ctx, func(tx *store.BridgeTx) error {
				c, err := tx.Conversation(f.conv.ID)
				if err != nil {
					return err
				}
				if err := c.Resolve("laowang", time.Now().Add(-2*time.Hour)); err != nil {
					return err
				}
				return tx.SaveConversation(c)
			})
			if err != nil {
				t.Fatal(err)
			}
			if res, err := f.db.ShredConversations(ctx, time.Now().Add(-3*time.Hour), "test", 10); err != nil || len(res.Shredded) != 0 {
				t.Fatalf("resolved after the cut-off, shredded anyway: %+v %v", res, err)
			}
			res, err := f.db.ShredConversations(ctx, before, "retention: 90 days", 10)
			if err != nil || len(res.Shredded) != 1 || res.Shredded[0] != f.conv.ID {
				t.Fatalf("shred: %+v %v", res, err)
			}
			conv, msgs, err := f.db.Transcript(ctx, f.conv.ID, true)
			if err != nil || len(msgs) != 3 {
				t.Fatalf("transcript after shredding: %d, %v", len(msgs), err)
			}
			for _, m := range msgs {
				if !m.Shredded || m.Text != "" || m.Media != nil || m.Unreadable || m.ContentHash == "" {
					t.Errorf("message %d after shredding: %+v", m.Seq, m)
				}
			}
			if brk := conv.VerifyChain(msgs); brk != nil {
				t.Errorf("the chain of a shredded conversation: %v", brk)
			}
			if _, _, err := f.db.ChatMedia(ctx, f.conv.ID, 2); rental.ErrorKind(err) != rental.KindNotFound {
				t.Errorf("shredded media: %v", err)
			}
			sh, err := f.db.ConversationShredded(ctx, f.conv.ID)
			if err != nil || sh == nil || sh.Reason != "retention: 90 days" {
				t.Errorf("shredding record: %+v %v", sh, err)
			}
			// Appending to it is refused.
			err = f.db.InBridgeTx(ctx, func(tx *store.BridgeTx) error {
				c, _ := tx.Conversation(f.conv.ID)
				return tx.Append(c, &rental.ChatMessage{Direction: rental.ChatNote, Kind: rental.ChatText, Author: "staff:laowang", Text: "x", CreatedAt: time.Now()})
			})
			if rental.ErrorKind(err) != rental.KindConflict {
				t.Errorf("append to a shredded conversation: %v", err)
			}
			// A deletion still shows.
			dropTriggers(t, f.db)
			mustExec(t, f.db, "DELETE FROM chat_deliveries WHERE message_id IN (SELECT id FROM chat_messages WHERE conversation_id = ? AND seq = 2)", f.conv.ID)
			mustExec(t, f.db, "DELETE FROM chat_media")
			mustExec(t, f.db, "DELETE FROM chat_messages WHERE conversation_id = ? AND seq = 2", f.conv.ID)
			conv, msgs, _ = f.db.Transcript(ctx, f.conv.ID, true)
			if brk := conv.VerifyChain(msgs); brk == nil || brk.Reason != rental.TranscriptMissing {
				t.Errorf("deleted message in a shredded conversation: %v", brk)
			}
		})
	}
}

func TestAlteredChatKeyIsTampering(t *testing.T) {
	ctx := context.Background()
	f := newBridgeFixture(t, storetest.Target{Name: "sqlite"})
	mustExec(t, f.db, "UPDATE chat_keys SET wrapped = ? WHERE conversation_id = ?", make([]byte, 60), f.conv.ID)
	conv, msgs, err := f.db.Transcript(ctx, f.conv.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	if brk := conv.VerifyChain(msgs); brk == nil || brk.Reason != rental.TranscriptUnreadable || msgs[0].Shredded {
		t.Errorf("altered key: %v, shredded %v", brk, msgs[0].Shredded)
	}
}
