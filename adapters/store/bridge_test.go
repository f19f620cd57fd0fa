package store_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/rental"
)

// bridgeFixture is a member with a live conversation holding a text, an
// image and a staff reply.
type bridgeFixture struct {
	db     *store.DB
	member rental.Member
	conv   rental.Conversation
	image  []byte
}

func newBridgeFixture(t *testing.T, tg storetest.Target) *bridgeFixture {
	t.Helper()
	ctx := context.Background()
	db := migrated(t, tg)
	m, _, _, err := db.LoginWeChat(ctx, appID, "o-bridge", "")
	if err != nil {
		t.Fatal(err)
	}
	f := &bridgeFixture{db: db, member: m, image: bytes.Repeat([]byte("\x89PNG-fake-"), 50)}
	t0 := time.Date(2026, 5, 1, 8, 0, 0, 123456789, time.UTC)
	err = db.InBridgeTx(ctx, func(tx *store.BridgeTx) error {
		c := &rental.Conversation{MemberID: m.ID, OpenID: "o-bridge", State: rental.ConversationOpen, OpenedAt: t0}
		if err := tx.OpenConversation(c); err != nil {
			return err
		}
		stored := rental.Delivery{Status: rental.DeliveryStored}
		for _, msg := range []rental.ChatMessage{
			{Direction: rental.ChatIn, Kind: rental.ChatText, Author: rental.CustomerAuthor(m.ID), Upstream: "wechat:msg:1", Text: "鱼竿卡住了怎么办", CreatedAt: t0, ToStaff: stored},
			{Direction: rental.ChatIn, Kind: rental.ChatImage, Author: rental.CustomerAuthor(m.ID), Upstream: "wechat:msg:2", Media: f.image, MediaType: "image/png", CreatedAt: t0.Add(time.Second), ToStaff: stored},
			{Direction: rental.ChatOut, Kind: rental.ChatText, Author: rental.StaffAuthor("laowang"), Upstream: "wecom:msg:3", Text: "拧松再收", CreatedAt: t0.Add(time.Minute), ToCustomer: stored},
		} {
			if err := tx.Append(c, &msg); err != nil {
				return err
			}
		}
		c.LastCustomerAt = t0
		if err := c.Assign("laowang", t0); err != nil {
			return err
		}
		f.conv = *c
		return tx.SaveConversation(c)
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestConversationTranscriptChain(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := newBridgeFixture(t, tg)
			conv, msgs, err := f.db.Transcript(ctx, f.conv.ID, true)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != 3 || conv.Head.Count != 3 || conv.Assignee != "laowang" || conv.State != rental.ConversationAssigned {
				t.Fatalf("conversation %+v, %d messages", conv, len(msgs))
			}
			if msgs[0].Text != "鱼竿卡住了怎么办" || !bytes.Equal(msgs[1].Media, f.image) || msgs[1].MediaHash == "" ||
				msgs[0].ToStaff.Status != rental.DeliveryStored || msgs[2].ToCustomer.Status != rental.DeliveryStored || msgs[2].ToStaff.Status != rental.DeliveryNone {
				t.Fatalf("messages read back wrong: %+v", msgs)
			}
			if !msgs[0].CreatedAt.Equal(time.Date(2026, 5, 1, 8, 0, 0, 123456000, time.UTC)) {
				t.Errorf("time not kept to the microsecond: %v", msgs[0].CreatedAt)
			}
			if brk := conv.VerifyChain(msgs); brk != nil {
				t.Fatalf("fresh chain: %v", brk)
			}

			// Text and media are sealed at rest.
			var raw []struct {
				Body []byte
			}
			f.db.Gorm.Raw("SELECT body FROM chat_messages WHERE conversation_id = ?", conv.ID).Scan(&raw)
			for _, r := range raw {
				if bytes.Contains(r.Body, []byte("鱼竿")) || bytes.Contains(r.Body, []byte("拧松")) {
					t.Error("message text stored in clear")
				}
			}
			var media []byte
			f.db.Gorm.Raw("SELECT data FROM chat_media").Row().Scan(&media)
			if bytes.Contains(media, []byte("PNG-fake")) {
				t.Error("media stored in clear")
			}

			// The database refuses edits and deletions.
			if err := f.db.Gorm.Exec("UPDATE chat_messages SET author = 'staff:xiaoli' WHERE seq = 3").Error; err == nil {
				t.Error("a message was updated")
			}
			if err := f.db.Gorm.Exec("DELETE FROM chat_media").Error; err == nil {
				t.Error("media was deleted")
			}

			// Someone with the database's owner rights goes around the
			// triggers: the chain shows where.
			dropTriggers(t, f.db)
			mustExec(t, f.db, "UPDATE chat_messages SET author = 'staff:xiaoli' WHERE conversation_id = ? AND seq = 3", conv.ID)
			conv, msgs, _ = f.db.Transcript(ctx, conv.ID, true)
			if brk := conv.VerifyChain(msgs); brk == nil || brk.Seq != 3 || brk.Reason != rental.TranscriptRecord {
				t.Errorf("edited author: %v", brk)
			}
			mustExec(t, f.db, "UPDATE chat_messages SET author = 'staff:laowang' WHERE conversation_id = ? AND seq = 3", conv.ID)
			mustExec(t, f.db, "UPDATE chat_messages SET body = (SELECT body FROM chat_messages WHERE conversation_id = ? AND seq = 3) WHERE conversation_id = ? AND seq = 1", conv.ID, conv.ID)
			conv, msgs, _ = f.db.Transcript(ctx, conv.ID, true)
			if brk := conv.VerifyChain(msgs); brk == nil || brk.Seq != 1 || brk.Reason != rental.TranscriptUnreadable {
				t.Errorf("body moved from another message: %v", brk)
			}
			mustExec(t, f.db, "DELETE FROM chat_deliveries WHERE message_id IN (SELECT id FROM chat_messages WHERE conversation_id = ? AND seq = 2)", conv.ID)
			mustExec(t, f.db, "DELETE FROM chat_media")
			conv, msgs, _ = f.db.Transcript(ctx, conv.ID, true)
			if brk := conv.VerifyChain(msgs); brk == nil || brk.Seq != 1 {
				t.Errorf("after deleting the media the first break is still message 1: %v", brk)
			}
		})
	}
}

func dropTriggers(t *testing.T, db *store.DB) {
	t.Helper()
	if db.Dialect == store.Postgres {
		mustExec(t, db, "DROP TRIGGER chat_messages_no_change ON chat_messages")
		mustExec(t, db, "DROP TRIGGER chat_media_no_change ON chat_media")
		return
	}
	for _, tr := range []string{"chat_messages_no_update", "chat_messages_no_delete", "chat_media_no_update", "chat_media_no_delete"} {
		mustExec(t, db, "DROP TRIGGER "+tr)
	}
}

func mustExec(t *testing.T, db *store.DB, sql string, args ...any) {
	t.Helper()
	if err := db.Gorm.Exec(sql, args...).Error; err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func TestBridgeTxRules(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := newBridgeFixture(t, tg)
			db := f.db

			// A second live conversation for the member is refused.
			err := db.InBridgeTx(ctx, func(tx *store.BridgeTx) error {
				return tx.OpenConversation(&rental.Conversation{MemberID: f.member.ID, OpenID: "o-bridge", State: rental.ConversationOpen, OpenedAt: time.Now()})
			})
			if rental.ErrorKind(err) != rental.KindConflict {
				t.Errorf("second live conversation: %v", err)
			}
			// The same upstream message is not appended twice.
			err = db.InBridgeTx(ctx, func(tx *store.BridgeTx) error {
				c, err := tx.Conversation(f.conv.ID)
				if err != nil {
					return err
				}
				return tx.Append(c, &rental.ChatMessage{Direction: rental.ChatIn, Kind: rental.ChatText, Author: "customer:1", Upstream: "wechat:msg:1", Text: "again", CreatedAt: time.Now()})
			})
			if !errors.Is(err, store.ErrDuplicateMessage) {
				t.Errorf("duplicate upstream: %v", err)
			}

			// A callback is claimed once.
			in := &rental.Inbound{Channel: rental.ChannelWeChat, DedupeKey: "msg:99", Kind: "text", From: "o-bridge", Payload: []byte("<xml/>")}
			if _, err := db.SaveInbound(ctx, in); err != nil {
				t.Fatal(err)
			}
			if refs, _ := db.PendingInbound(ctx, []rental.Channel{rental.ChannelWeChat}, 10); len(refs) != 1 || refs[0].ID != in.ID {
				t.Fatalf("pending: %+v", refs)
			}
			if err := db.InboundFailed(ctx, in.ID, "media download: busy", time.Now().Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if refs, _ := db.PendingInbound(ctx, []rental.Channel{rental.ChannelWeChat}, 10); len(refs) != 1 || refs[0].Attempts != 1 || refs[0].RetryAt.IsZero() {
				t.Errorf("after a failure: %+v", refs)
			}
			claims := 0
			for range 2 {
				err := db.InBridgeTx(ctx, func(tx *store.BridgeTx) error {
					ok, err := tx.ClaimInbound(in.ID)
					if ok {
						claims++
					}
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			if claims != 1 {
				t.Errorf("claimed %d times", claims)
			}
			if refs, _ := db.PendingInbound(ctx, []rental.Channel{rental.ChannelWeChat}, 10); len(refs) != 0 {
				t.Errorf("still pending after the claim: %+v", refs)
			}

			// Staff are on duty until they say /off; loads count live
			// conversations.
			for _, s := range []string{"laowang", "xiaoli"} {
				if _, err := db.SaveStaff(ctx, s, s, true); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := db.SaveStaff(ctx, "gone", "离职", false); err != nil {
				t.Fatal(err)
			}
			var loads []rental.StaffLoad
			err = db.InBridgeTx(ctx, func(tx *store.BridgeTx) error {
				if err := tx.SetOnDuty("xiaoli", false); err != nil {
					return err
				}
				if err := tx.SetCurrent("laowang", f.conv.ID); err != nil {
					return err
				}
				if err := tx.SetOnDuty("laowang", true); err != nil {
					return err
				}
				var err error
				loads, err = tx.StaffLoads()
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			want := []rental.StaffLoad{{UserID: "laowang", Name: "laowang", OnDuty: true, Open: 1}, {UserID: "xiaoli", Name: "xiaoli", OnDuty: false, Open: 0}}
			if len(loads) != 2 || loads[0] != want[0] || loads[1] != want[1] {
				t.Errorf("loads %+v, want %+v", loads, want)
			}
			err = db.InBridgeTx(ctx, func(tx *store.BridgeTx) error {
				sm, err := tx.StaffMember("laowang")
				if err != nil || sm.Current != f.conv.ID || !sm.OnDuty || sm.Name != "laowang" {
					t.Errorf("staff member: %+v %v", sm, err)
				}
				_, err = tx.StaffMember("nobody")
				if rental.ErrorKind(err) != rental.KindNotFound {
					t.Errorf("unknown staff: %v", err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDeliveriesAndLeases(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := newBridgeFixture(t, tg)
			db := f.db
			waiting, err := db.WaitingMessages(ctx, f.conv.ID, store.SideStaff, 10)
			if err != nil || len(waiting) != 2 || waiting[0].Seq != 1 || !bytes.Equal(waiting[1].Media, f.image) {
				t.Fatalf("waiting for staff: %+v %v", waiting, err)
			}
			if err := db.SetDelivery(ctx, waiting[0].ID, store.SideStaff, rental.Delivery{Status: rental.DeliverySent, Recipient: "laowang"}); err != nil {
				t.Fatal(err)
			}
			if w, _ := db.WaitingMessages(ctx, f.conv.ID, store.SideStaff, 10); len(w) != 1 || w[0].Seq != 2 {
				t.Errorf("after one sent: %+v", w)
			}
			reply, _ := db.WaitingMessages(ctx, f.conv.ID, store.SideCustomer, 10)
			if len(reply) != 1 {
				t.Fatalf("waiting for the customer: %+v", reply)
			}
			if err := db.SetDelivery(ctx, reply[0].ID, store.SideCustomer, rental.Delivery{Status: rental.DeliveryHeld, Reason: "45047"}); err != nil {
				t.Fatal(err)
			}
			var released []rental.ConversationID
			err = db.InBridgeTx(ctx, func(tx *store.BridgeTx) error {
				var err error
				released, err = tx.ReleaseWaiting(f.member.ID)
				return err
			})
			if err != nil || len(released) != 1 || released[0] != f.conv.ID {
				t.Fatalf("released %v %v", released, err)
			}
			_, msgs, _ := db.Transcript(ctx, f.conv.ID, false)
			if d := msgs[2].ToCustomer; d.Status != rental.DeliveryStored || d.Tries != 1 {
				t.Errorf("released reply: %+v", d)
			}
			if d := msgs[0].ToStaff; d.Status != rental.DeliverySent || d.Recipient != "laowang" || d.Tries != 1 {
				t.Errorf("sent: %+v", d)
			}

			ok, err := db.LeaseConversation(ctx, f.conv.ID, store.SideCustomer, time.Now().Add(time.Minute))
			if err != nil || !ok {
				t.Fatalf("lease: %v %v", ok, err)
			}
			if ok, _ := db.LeaseConversation(ctx, f.conv.ID, store.SideCustomer, time.Now().Add(time.Minute)); ok {
				t.Error("a held lease was taken again")
			}
			if ok, _ := db.LeaseConversation(ctx, f.conv.ID, store.SideStaff, time.Now().Add(time.Minute)); !ok {
				t.Error("the other side's lease is independent")
			}
			if err := db.ReleaseConversation(ctx, f.conv.ID, store.SideCustomer); err != nil {
				t.Fatal(err)
			}
			if ok, _ := db.LeaseConversation(ctx, f.conv.ID, store.SideCustomer, time.Now().Add(-time.Second)); !ok {
				t.Error("a released lease could not be taken")
			}
			if ok, _ := db.LeaseConversation(ctx, f.conv.ID, store.SideCustomer, time.Now().Add(time.Minute)); !ok {
				t.Error("an expired lease could not be taken")
			}

			if sent, _ := db.WasSent(ctx, "k1"); sent {
				t.Error("unsent key reported sent")
			}
			db.InBridgeTx(ctx, func(tx *store.BridgeTx) error { return tx.MarkSent("k1") })
			db.InBridgeTx(ctx, func(tx *store.BridgeTx) error { return tx.MarkSent("k1") })
			if sent, _ := db.WasSent(ctx, "k1"); !sent {
				t.Error("sent key not remembered")
			}

			list, err := db.Conversations(ctx, store.ConversationFilter{Live: true, Assignee: "laowang"})
			if err != nil || len(list) != 1 || list[0].Last == nil || list[0].Last.Seq != 3 || list[0].Waiting != 1 || list[0].Customer.ID != f.member.ID {
				t.Errorf("list: %+v %v", list, err)
			}
			if err := db.TagConversation(ctx, f.conv.ID, []string{"鱼竿", "维修"}); err != nil {
				t.Fatal(err)
			}
			if c, _ := db.Conversation(ctx, f.conv.ID); len(c.Tags) != 2 || c.Tags[1] != "维修" {
				t.Errorf("tags: %v", c.Tags)
			}
			data, ct, err := db.ChatMedia(ctx, f.conv.ID, 2)
			if err != nil || ct != "image/png" || !bytes.Equal(data, f.image) {
				t.Errorf("media: %q %v", ct, err)
			}
			if _, _, err := db.ChatMedia(ctx, f.conv.ID, 1); rental.ErrorKind(err) != rental.KindNotFound {
				t.Errorf("media of a text: %v", err)
			}
		})
	}
}
